"""Firebell: the composition root. Reads the environment (and .env), builds every part, starts
the server. Nothing else in Firebell reads the environment.

    python app.py        # serves on $PORT (default 3978) with SQLite and the example catalog
    firebell serve       # the same, once installed (`pip install .`); `firebell --help` for more
"""
from __future__ import annotations

import asyncio
import gc
import logging
import os
import time
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Mapping

from aiohttp import web

from bot.adapter import BotSettings, create_adapter
from bot.identity import Identity
from bot.routes import messages_route
from bot.teams_bot import FirebellBot
import handlers.commands  # noqa: F401  (registers every command)
from handlers.context import Configured, Context, Policy
from handlers.effects.registry import Clients
from handlers.incident.correlation import prepare as prepare_correlation
from handlers.ingest.doors import WebhookDoors, WebhookSecrets
from handlers.ingest.heartbeat import HeartbeatDoor
from handlers.reads.api import ReportEndpoints
from handlers.reads.bearer import bearer_matches, unauthorized
from handlers.reads.heartbeats import heartbeat_states
from handlers.reads.postmortem_page import postmortem_routes
from handlers.reads.status import not_configured
from handlers.reports.settings import ReportSettings
from handlers.sync.dependencies import refresh_graph
from incidents.catalog import CatalogError, load_catalog
from incidents.periods import MONTH, WEEK, ScheduleError, parse_schedule
from integrations.graph import GraphClient
from integrations.jira_tracker import JiraTracker
from integrations.mailer import Mailer
from integrations.pagerduty import PagerDutyClient
from integrations.service_urls import (DEFAULT_SERVICE_URL_HOSTS, ServiceUrlPolicy,
                                       is_loopback_host, parse_hosts)
from integrations.teams_connector import ConnectorCredentials, TeamsConnector
from observability.logs import configure_logging
from observability.metrics import CONTENT_TYPE
from scheduler.periodic import PeriodicScheduler
from scheduler.worker import OutboxWorker, RetryPolicy
from storage import outbox
from storage.db import Database

HERE = Path(__file__).resolve().parent
DEFAULT_CATALOG = HERE / "config" / "catalog.yaml"


def default_database_url() -> str:
    """A source checkout keeps its SQLite file next to app.py; an installed package (`pip install
    .`, app.py in site-packages) in the working directory."""
    home = HERE if (HERE / "pyproject.toml").exists() else Path.cwd()
    return f"sqlite:///{home / 'firebell.db'}"


log = logging.getLogger("firebell")
FIREBELL: web.AppKey["Firebell"] = web.AppKey("firebell")

# Bot Framework endpoint settings botbuilder reads from its configuration; passed through from
# the environment as-is so a deployment (or a test) can point them elsewhere.
BOT_FRAMEWORK_ENDPOINTS = (
    "TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL", "TO_BOT_FROM_CHANNEL_TOKEN_ISSUER",
    "TO_BOT_FROM_EMULATOR_OPENID_METADATA_URL", "TO_CHANNEL_FROM_BOT_LOGIN_URL",
    "TO_CHANNEL_FROM_BOT_OAUTH_SCOPE", "CHANNEL_SERVICE", "OAUTH_URL", "CALLER_ID",
    "VALIDATE_AUTHORITY",
)


@dataclass(frozen=True)
class Integrations:
    """Outside systems; an empty setting means "not configured" (skipped, and the card says so)."""
    graph_client_id: str = ""
    graph_client_secret: str = ""
    graph_tenant_id: str = ""
    graph_base_url: str = "https://graph.microsoft.com/v1.0"
    azure_authority_host: str = "https://login.microsoftonline.com"
    # Whose Teams meetings the incidents' bridges are (object id or UPN); needs Graph too.
    meeting_organizer: str = ""
    jira_url: str = ""
    jira_email: str = ""
    jira_api_token: str = ""
    smtp_host: str = ""
    smtp_port: int = 587
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_starttls: bool = True
    smtp_from: str = "firebell@localhost"
    pagerduty_api_token: str = ""
    pagerduty_api_url: str = "https://api.pagerduty.com"
    pagerduty_from_email: str = ""


@dataclass(frozen=True)
class Settings:
    port: int = 3978
    # Loopback unless a MicrosoftAppId authenticates every activity (settings_from_env).
    host: str = "127.0.0.1"
    # FIREBELL_ALLOW_ANONYMOUS=1: anonymous on a non-loopback HOST on purpose (warned about).
    allow_anonymous: bool = False
    anonymous_warning_seconds: float = 3600.0  # how often that warning repeats
    # FIREBELL_SERVICE_URL_HOSTS: the Bot Connector hosts Firebell may call with an app id.
    service_url_hosts: tuple[str, ...] = DEFAULT_SERVICE_URL_HOSTS
    database_url: str = "sqlite:///firebell.db"
    catalog_path: str = str(DEFAULT_CATALOG)
    webhooks: WebhookSecrets = field(default_factory=WebhookSecrets)
    public_base_url: str = "http://localhost:3978"
    bot: BotSettings = field(default_factory=BotSettings)
    allowed_tenants: frozenset[str] = frozenset()
    policy: Policy = field(default_factory=Policy)
    integrations: Integrations = field(default_factory=Integrations)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    run_worker: bool = True
    worker_poll_seconds: float = 1.0
    # How long a claimed outbox job is someone's: a worker that dies mid-job holds its jobs this
    # long. Longer than any one job runs (every outside call has its own, shorter, timeout).
    outbox_lease_seconds: float = 120.0
    reports: ReportSettings = field(default_factory=ReportSettings)
    api_token: str = ""                # FIREBELL_API_TOKEN; empty = /api/incidents is off
    metrics_token: str = ""            # FIREBELL_METRICS_TOKEN; empty = /metrics is open
    # Digests, reports and reminders on schedule. Off unless settings_from_env turns it on
    # (FIREBELL_SCHEDULER, default on): tests drive periodic work themselves.
    run_scheduler: bool = False
    dependency_import_minutes: float = 60
    log_level: str = "INFO"
    log_format: str = "json"
    access_log: bool = False           # ACCESS_LOG=1: one log line per HTTP request


def settings_from_env(env: Mapping[str, str]) -> Settings:
    def get(name: str, default: str = "") -> str:
        return (env.get(name) or default).strip()

    def number(name: str, default: float) -> float:
        raw = get(name)
        try:
            return float(raw) if raw else default
        except ValueError:
            raise SystemExit(f"{name} must be a number, got {raw!r}") from None

    def names(name: str) -> tuple[str, ...]:
        return tuple(x.strip() for x in get(name).split(",") if x.strip())

    public = get("PUBLIC_BASE_URL", f"http://localhost:{get('PORT', '3978')}").rstrip("/")
    bot = BotSettings(app_id=get("MicrosoftAppId"), app_password=get("MicrosoftAppPassword"),
                      app_type=get("MicrosoftAppType", "MultiTenant"),
                      tenant_id=get("MicrosoftAppTenantId"),
                      endpoints={k: env[k] for k in BOT_FRAMEWORK_ENDPOINTS if env.get(k)})
    policy = Policy(
        duplicate_window=timedelta(minutes=number("FIREBELL_DUPLICATE_WINDOW_MINUTES", 30)),
        cascade_window_before=timedelta(minutes=number("FIREBELL_CASCADE_WINDOW_MINUTES", 15)),
        cascade_window_after=timedelta(minutes=number("FIREBELL_CASCADE_LATE_ROOT_MINUTES", 5)),
        card_update_interval=timedelta(seconds=number("FIREBELL_CARD_UPDATE_SECONDS", 3)),
        public_base_url=public,
        admins=frozenset(x.lower() for x in names("FIREBELL_ADMINS")),
        teams_app_id=get("TEAMS_APP_ID"),
        trigger_email_levels=frozenset(names("FIREBELL_TRIGGER_EMAIL_LEVELS")
                                       or ("service-down", "high-error-rate")),
        postmortem_due_business_days=int(number("FIREBELL_POSTMORTEM_DUE_BUSINESS_DAYS", 5)))
    integrations = Integrations(
        graph_client_id=get("GRAPH_CLIENT_ID", bot.app_id),
        graph_client_secret=get("GRAPH_CLIENT_SECRET", bot.app_password),
        graph_tenant_id=get("GRAPH_TENANT_ID", bot.tenant_id),
        graph_base_url=get("GRAPH_BASE_URL", "https://graph.microsoft.com/v1.0"),
        azure_authority_host=get("AZURE_AUTHORITY_HOST", "https://login.microsoftonline.com"),
        meeting_organizer=get("FIREBELL_MEETING_ORGANIZER"),
        jira_url=get("JIRA_URL"), jira_email=get("JIRA_EMAIL"),
        jira_api_token=get("JIRA_API_TOKEN"),
        smtp_host=get("SMTP_HOST"), smtp_port=int(number("SMTP_PORT", 587)),
        smtp_username=get("SMTP_USERNAME"), smtp_password=get("SMTP_PASSWORD"),
        smtp_starttls=get("SMTP_STARTTLS", "true").lower() not in ("0", "false", "no", "off"),
        smtp_from=get("SMTP_FROM", "firebell@localhost"),
        pagerduty_api_token=get("PAGERDUTY_API_TOKEN"),
        pagerduty_api_url=get("PAGERDUTY_API_URL", "https://api.pagerduty.com"),
        pagerduty_from_email=get("PAGERDUTY_FROM_EMAIL"))
    def schedule(name: str, default: str, kind: str):
        try:
            return parse_schedule(get(name, default), kind)
        except ScheduleError as exc:
            raise SystemExit(f"{name}: {exc}") from None

    reports = ReportSettings(
        weekly=schedule("FIREBELL_WEEKLY_DIGEST", "mon 09:00", WEEK),
        monthly=schedule("FIREBELL_MONTHLY_REPORT", "1 09:00", MONTH),
        digest_emails=tuple(x.lower() for x in names("FIREBELL_DIGEST_EMAILS")),
        reminder_interval=timedelta(hours=number("FIREBELL_REMINDER_INTERVAL_HOURS", 24)),
        stale_after=timedelta(hours=number("FIREBELL_STALE_INCIDENT_HOURS", 4)))
    host = get("HOST", "127.0.0.1" if bot.anonymous else "0.0.0.0")
    allow_anonymous = get("FIREBELL_ALLOW_ANONYMOUS").lower() in ("1", "true", "yes", "on")
    if bot.anonymous and not is_loopback_host(host) and not allow_anonymous:
        raise SystemExit(
            f"Refusing to listen on HOST={host} without MicrosoftAppId: anyone who can reach it "
            "could act as any Teams user. Set MicrosoftAppId, or HOST=127.0.0.1, or "
            "FIREBELL_ALLOW_ANONYMOUS=1 to accept that.")
    try:
        service_url_hosts = parse_hosts(get("FIREBELL_SERVICE_URL_HOSTS",
                                            ",".join(DEFAULT_SERVICE_URL_HOSTS)))
    except ValueError as exc:
        raise SystemExit(f"FIREBELL_SERVICE_URL_HOSTS: {exc}") from None
    catalog_path = get("FIREBELL_CONFIG", str(DEFAULT_CATALOG))
    return Settings(
        port=int(number("PORT", 3978)), host=host, allow_anonymous=allow_anonymous,
        service_url_hosts=service_url_hosts,
        database_url=get("DATABASE_URL", default_database_url()),
        catalog_path=catalog_path,
        webhooks=WebhookSecrets(pagerduty=names("PAGERDUTY_WEBHOOK_SECRETS"),
                                pagerduty_v2_token=get("PAGERDUTY_V2_TOKEN"),
                                alertmanager_token=get("ALERTMANAGER_WEBHOOK_TOKEN"),
                                heartbeats=heartbeat_tokens(catalog_path, get)),
        public_base_url=public, bot=bot, integrations=integrations,
        allowed_tenants=frozenset(names("FIREBELL_ALLOWED_TENANTS")), policy=policy,
        retry=RetryPolicy(max_attempts=int(number("FIREBELL_OUTBOX_MAX_ATTEMPTS", 10))),
        run_worker=get("FIREBELL_WORKER", "on").lower() not in ("0", "off", "false", "no"),
        worker_poll_seconds=number("FIREBELL_WORKER_POLL_SECONDS", 1.0),
        outbox_lease_seconds=number("FIREBELL_OUTBOX_LEASE_SECONDS", 120.0),
        reports=reports, api_token=get("FIREBELL_API_TOKEN"),
        metrics_token=get("FIREBELL_METRICS_TOKEN"),
        run_scheduler=get("FIREBELL_SCHEDULER", "on").lower() not in ("0", "off", "false", "no"),
        dependency_import_minutes=number("FIREBELL_DEPENDENCY_IMPORT_MINUTES", 60),
        log_level=get("LOG_LEVEL", "INFO"), log_format=get("LOG_FORMAT", "json"),
        access_log=get("ACCESS_LOG", "off").lower() in ("1", "true", "yes", "on"))


def heartbeat_tokens(catalog_path: str, get) -> dict[str, str]:
    """Each heartbeat's bearer token, from the environment variable its catalog entry names
    (`token_env`). A catalog that does not load is reported, whole, when Firebell starts."""
    try:
        beats = load_catalog(catalog_path).heartbeats.values()
    except CatalogError:
        return {}
    return {b.name: get(b.token_env) for b in beats if b.token_env}


class Firebell:
    """Every part, built once from Settings. Tests build one per test, in process."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.db = Database(settings.database_url)
        self.catalog = load_catalog(settings.catalog_path)
        service_urls = ServiceUrlPolicy(anonymous=settings.bot.anonymous,
                                        hosts=settings.service_url_hosts)
        self.clients = connect_integrations(settings.integrations)
        self.clients.teams = TeamsConnector(_connector_credentials(settings.bot),
                                            service_urls=service_urls)
        heartbeat_tokens = settings.webhooks.heartbeats
        self.ctx = Context(db=self.db, catalog=self.catalog, policy=settings.policy,
                           configured=replace(configured(settings.integrations),
                                              heartbeat_tokens=frozenset(
                                                  n for n, t in heartbeat_tokens.items() if t)))
        self.webhooks = WebhookDoors(self.ctx, settings.webhooks)
        self.heartbeat_door = HeartbeatDoor(self.ctx, heartbeat_tokens)
        self.worker = OutboxWorker(self.ctx, self.clients, retry=settings.retry,
                                   poll_seconds=settings.worker_poll_seconds,
                                   lease=timedelta(seconds=settings.outbox_lease_seconds),
                                   door_saturated=self.webhooks.committer.queueing)
        self.ctx.wake_worker = self.worker.wake
        self.adapter = create_adapter(settings.bot, service_urls)
        self._anonymous_warning: asyncio.Task | None = None
        self.bot = FirebellBot(self.ctx, Identity(self.ctx), settings.allowed_tenants)
        self.periodic = PeriodicScheduler(
            self.ctx, self.clients, settings.reports,
            dependency_import_every=timedelta(minutes=settings.dependency_import_minutes))
        self.report_endpoints = ReportEndpoints(self.ctx, settings.api_token)

    def web_app(self) -> web.Application:
        app = web.Application(client_max_size=1024 * 1024,
                              middlewares=[observe_requests(self.ctx.metrics,
                                                            self.settings.access_log)])
        app[FIREBELL] = self
        app.add_routes([messages_route(self.adapter, self.bot), *self.webhooks.routes(),
                        *self.heartbeat_door.routes(),
                        *postmortem_routes(self.ctx, self.settings.api_token),
                        *self.report_endpoints.routes(),
                        web.get("/healthz", self.healthz), web.get("/readyz", self.readyz),
                        web.get("/metrics", self.metrics)])
        app.on_startup.append(self._start)
        app.on_cleanup.append(self._stop)
        return app

    async def _start(self, _app: web.Application) -> None:
        await self.db.migrate()
        await refresh_graph(self.ctx)  # the catalog's edges plus those imported before
        await prepare_correlation(self.ctx)
        # Everything built so far lives as long as the process: keep the garbage collector
        # from walking it again and again (shorter pauses on the webhook path).
        gc.collect()
        gc.freeze()
        self.webhooks.committer.start()
        if self.settings.run_worker:
            self.worker.start()
        if self.settings.run_scheduler:
            self.periodic.start()
        if self.settings.bot.anonymous and not is_loopback_host(self.settings.host):
            self._anonymous_warning = asyncio.create_task(self._warn_anonymous())
        if not self.settings.webhooks.alertmanager_token:
            log.warning("ALERTMANAGER_WEBHOOK_TOKEN is not set: /webhooks/alertmanager is open "
                        "to anyone who can reach it")
        if not self.settings.webhooks.pagerduty:
            log.warning("PAGERDUTY_WEBHOOK_SECRETS is not set: every PagerDuty delivery will be "
                        "refused with 401")
        for sentence in not_configured(self.ctx):  # said once here, not on every card
            log.warning(sentence)
        for beat in self.catalog.heartbeats.values():
            if beat.token_env and beat.name not in self.ctx.configured.heartbeat_tokens:
                log.warning("heartbeat %s: %s is not set, so POST /webhooks/heartbeat/%s is "
                            "refused (401)", beat.name, beat.token_env, beat.name)
        log.info("Firebell ready", extra={"database": self.db.dialect,
                                          "catalog": self.settings.catalog_path,
                                          "bot_auth": "anonymous" if self.settings.bot.anonymous
                                          else "jwt"})

    async def _warn_anonymous(self) -> None:
        """Anonymous on a non-loopback HOST (FIREBELL_ALLOW_ANONYMOUS=1): say so at start and
        every hour, so the log of a forgotten test set-up keeps saying it."""
        while True:
            log.warning("anonymous mode on HOST=%s (FIREBELL_ALLOW_ANONYMOUS=1): without "
                        "MicrosoftAppId anyone who can reach port %s can act as any Teams "
                        "user; Firebell answers only activities whose serviceUrl is loopback",
                        self.settings.host, self.settings.port)
            await asyncio.sleep(self.settings.anonymous_warning_seconds)

    async def _stop(self, _app: web.Application) -> None:
        if self._anonymous_warning is not None:
            self._anonymous_warning.cancel()
        await self.periodic.stop()
        await self.worker.stop()
        await self.webhooks.committer.stop()
        await self.clients.close()
        await self.db.close()

    async def healthz(self, _request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(self, _request: web.Request) -> web.Response:
        if await self.db.ping():
            return web.json_response({"status": "ready", "database": self.db.dialect})
        return web.json_response({"status": "database unreachable"}, status=503)

    async def metrics(self, request: web.Request) -> web.Response:
        token = self.settings.metrics_token
        if token and not bearer_matches(request, token):
            raise unauthorized()
        try:
            async with self.db.read() as conn:
                gauges = await outbox.depth(conn, self.ctx.now())
            m = self.ctx.metrics
            m.outbox_pending.set(gauges["pending"])
            m.outbox_oldest.set(gauges["oldest_due_seconds"])
            m.outbox_failed.set(gauges["failed"])
        except Exception:  # metrics must answer even when the database does not
            log.warning("metrics: outbox gauges unavailable")
        await self._heartbeat_gauges()
        return web.Response(body=self.ctx.metrics.render(),
                            headers={"Content-Type": CONTENT_TYPE})

    async def _heartbeat_gauges(self) -> None:
        if not self.catalog.heartbeats:
            return
        try:
            states = await heartbeat_states(self.ctx)
        except Exception:  # metrics must answer even when the database does not
            log.warning("metrics: heartbeat gauges unavailable")
            return
        for state in states:
            self.ctx.metrics.heartbeat_silence.labels(state.name).set(state.silent_seconds)
            self.ctx.metrics.heartbeat_up.labels(state.name).set(0 if state.missing else 1)


access_log = logging.getLogger("firebell.access")


def observe_requests(metrics, log_each: bool):
    """Every answer's time in the per-route histogram, and (ACCESS_LOG=1) one log line. The
    route is its pattern (`/charts/{key}.png`), so the histogram's size stays fixed; the query
    string is never logged (PagerDuty V2 carries its token there)."""
    @web.middleware
    async def observe(request: web.Request, handler):
        started, status = time.perf_counter(), 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            seconds = time.perf_counter() - started
            resource = request.match_info.route.resource
            route = resource.canonical if resource is not None else "unmatched"
            metrics.requests.labels(route, request.method, str(status)).observe(seconds)
            if log_each:
                access_log.info("%s %s %s %.1f ms", request.method, request.path, status,
                                seconds * 1000, extra={"route": route, "status": status,
                                                       "remote": request.remote})
    return observe


def configured(s: Integrations) -> Configured:
    """Which outside systems are configured (all their settings present)."""
    return Configured(
        graph=bool(s.graph_client_id and s.graph_client_secret and s.graph_tenant_id),
        jira=bool(s.jira_url and s.jira_email and s.jira_api_token),
        email=bool(s.smtp_host), pagerduty=bool(s.pagerduty_api_token),
        jira_url=s.jira_url.rstrip("/"), meeting_organizer=s.meeting_organizer)


def connect_integrations(s: Integrations) -> Clients:
    """A client for each outside system that is configured; the rest stay None."""
    on = configured(s)
    return Clients(
        graph=GraphClient(tenant_id=s.graph_tenant_id, client_id=s.graph_client_id,
                          client_secret=s.graph_client_secret, base_url=s.graph_base_url,
                          authority_host=s.azure_authority_host) if on.graph else None,
        jira=JiraTracker(s.jira_url, s.jira_email, s.jira_api_token) if on.jira else None,
        mailer=Mailer(s.smtp_host, s.smtp_port, sender=s.smtp_from,
                      username=s.smtp_username or None, password=s.smtp_password or None,
                      starttls=s.smtp_starttls) if on.email else None,
        pagerduty=PagerDutyClient(token=s.pagerduty_api_token, api_url=s.pagerduty_api_url,
                                  from_email=s.pagerduty_from_email) if on.pagerduty else None)


def _connector_credentials(bot: BotSettings) -> ConnectorCredentials:
    tenant = bot.tenant_id if bot.app_type.lower() == "singletenant" and bot.tenant_id \
        else "botframework.com"
    login = bot.endpoints.get("TO_CHANNEL_FROM_BOT_LOGIN_URL") or \
        f"https://login.microsoftonline.com/{tenant}"
    scope = bot.endpoints.get("TO_CHANNEL_FROM_BOT_OAUTH_SCOPE") or \
        "https://api.botframework.com/.default"
    if not scope.endswith("/.default"):
        scope = scope.rstrip("/") + "/.default"
    return ConnectorCredentials(bot.app_id, bot.app_password, login, scope)


def create_app(settings: Settings) -> web.Application:
    return Firebell(settings).web_app()


def load_env_file() -> None:
    """A `.env` next to app.py (or in the working directory) fills in what the environment does
    not set."""
    try:
        from dotenv import load_dotenv
    except ImportError:
        return
    load_dotenv(HERE / ".env", override=False)
    load_dotenv(Path.cwd() / ".env", override=False)


def settings_from_environment() -> Settings:
    load_env_file()
    return settings_from_env(os.environ)


def database_url_from_environment() -> str:
    """DATABASE_URL with its default, for `alembic` on the command line."""
    load_env_file()
    return (os.environ.get("DATABASE_URL") or "").strip() or default_database_url()


def serve(settings: Settings) -> None:
    try:
        import uvloop  # a faster event loop: the webhook doors are CPU-bound in a storm
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:
        pass
    configure_logging(settings.log_level, settings.log_format)
    web.run_app(create_app(settings), host=settings.host, port=settings.port,
                access_log=None, print=lambda *_: None,
                shutdown_timeout=5)


def main() -> None:
    try:
        serve(settings_from_environment())
    except CatalogError as exc:  # every problem, one per line; `firebell check-config` adds lines
        raise SystemExit(str(exc)) from None


if __name__ == "__main__":
    main()  # the same as `firebell serve`
