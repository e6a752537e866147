"""FakePagerDuty: a small, real HTTP server speaking the slice of PagerDuty's
REST API v2 that Firebell uses, plus the V3 webhooks PagerDuty sends back.

Pointing a client at it
-----------------------
::

    async with FakePagerDuty() as pd:              # 127.0.0.1:<free port>
        ana = pd.add_user("Ana Lopez", "ana@example.com")
        incident = pd.add_incident("DB down", service_id=pd.add_service("Checkout"))
        pd.enable_webhooks("http://127.0.0.1:8080/api/pagerduty", secret="s3cret")
        async with httpx.AsyncClient(base_url=pd.url, headers={
                "Authorization": f"Token token={pd.token}",
                "Accept": "application/vnd.pagerduty+json;version=2",
                "From": "ana@example.com"}) as http:
            await http.put(f"/incidents/{incident}", json={"incident": {
                "type": "incident_reference", "status": "acknowledged"}})

Wire facts reproduced (PagerDuty developer docs: REST-API/02-Authentication,
03-Versioning, 04-Rate-Limits, 09-Pagination, 13-Includes, 14-Errors;
webhooks/01-Overview, 02-Behavior, 04-Signatures)
----------------------------------------------------------------------------
* Auth: ``Authorization: Token token=<token>`` exactly; anything else -> 401
  ``{"error": {"message": "Authentication failed", "code": 2006}}``.  A
  read-only token writing -> 403 (code 2010).
* ``From: <e-mail of a PagerDuty user>`` is required on writes made with an
  *account* token (user tokens act as their user): missing -> 400 (code 2001,
  the exact wording PagerDuty uses is not documented; ours is in ``errors``),
  unknown e-mail -> 400 ``Requester User Not Found`` (code 1008).
* ``Accept: application/vnd.pagerduty+json;version=2`` pins the API version;
  PagerDuty does not require it (the token's version applies), so neither do
  we: assert it on ``requests`` if Firebell must send it.
* Errors: ``{"error": {"message", "code", "errors": [...]}}``; missing
  resources 404 ``Not Found`` (2100).  Updating a resolved incident -> 400
  ``Incident Already Resolved`` (1001); acknowledging an acknowledged one is a
  200 no-op (no webhook).
* Rate limit: 429, body ``{"error": {"message": "Rate Limit Exceeded", "code":
  2020}}``, headers ``ratelimit-limit``, ``ratelimit-remaining``,
  ``ratelimit-reset`` (seconds).  PagerDuty documents **no Retry-After**;
  ``rate_limit_next(retry_after=...)`` can add one if a test wants it.
* ``GET /oncalls``: filters ``schedule_ids[]``, ``escalation_policy_ids[]``,
  ``user_ids[]`` (the brackets matter: ``schedule_ids=X`` is ignored, so every
  on-call comes back), ``since``/``until`` (default: now; range <= 90 days),
  ``earliest=true`` (one entry per escalation policy, level and user),
  ``include[]=users|schedules|escalation_policies``.  Without ``include[]=users``
  the user is a reference ``{id, type: "user_reference", summary, self,
  html_url}`` -- **no e-mail**; with it, a full user (``type: "user"``,
  ``email``, ``name``...).  ``schedule`` is null for always-on-call levels.
  Classic pagination: ``limit`` (default 25, max 100), ``offset``, ``more``,
  ``total`` (null unless ``total=true``).
* ``GET /service_dependencies/technical_services/{id}`` -> ``{"relationships":
  [{"id", "type": "service_dependency", "supporting_service": {"id", "type":
  "technical_service_reference"}, "dependent_service": {...}}]}``: every
  immediate relationship of the service, in both directions.
* ``GET /services`` (classic pagination, ``query`` filters by name), ``GET
  /services/{id}``, ``GET /users`` (``query`` matches name or e-mail), ``GET
  /users/{id}``, ``GET /schedules/{id}/users``, ``GET/PUT /incidents/{id}``.
* V3 webhook (when enabled) after a status change: ``POST`` to the test's URL,
  body ``{"event": {"id", "event_type": "incident.acknowledged"|
  "incident.resolved", "resource_type": "incident", "occurred_at", "agent":
  user_reference, "client": null, "data": incident}}``, headers
  ``Content-Type: application/json``, ``User-Agent: PagerDuty-Webhook/V3.0``,
  ``X-Webhook-Id`` (UUID, the same on every retry of one webhook),
  ``X-Webhook-Subscription``, ``X-PagerDuty-Signature: v1=<hex HMAC-SHA256 of
  the exact body with the secret>``.  PagerDuty retries 5xx/429/timeouts/
  connection errors (up to 5 tries over ~20 min) and drops on other 4xx; here
  retries happen only after the delays listed in ``webhook_retry_delays``
  (none by default) so tests stay fast.

Operation names (for ``requests_for`` and faults): ``update_incident``,
``get_incident``, ``oncalls``, ``schedule_users``, ``services``, ``service``,
``service_dependencies``, ``users``, ``user``, ``unknown``.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import aiohttp
from aiohttp import web

from tests.fakes.jira import Fault, HttpFake

ACCEPT_V2 = "application/vnd.pagerduty+json;version=2"
_MAX_RANGE = timedelta(days=90)
# (old status, new status) -> V3 webhook event type
_EVENT_TYPES = {
    ("triggered", "acknowledged"): "incident.acknowledged",
    ("triggered", "resolved"): "incident.resolved",
    ("acknowledged", "resolved"): "incident.resolved",
    ("acknowledged", "triggered"): "incident.unacknowledged",
    ("resolved", "triggered"): "incident.reopened",
    ("resolved", "acknowledged"): "incident.acknowledged",  # only via set_incident_status()
}


def sign_webhook(body: bytes, secret: str) -> str:
    """The ``X-PagerDuty-Signature`` value PagerDuty sends for ``body``."""
    return "v1=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class _BadInput(ValueError):
    """A request PagerDuty would refuse with 400; carries the error body."""

    def __init__(self, message: str, code: int, *errors: str) -> None:
        super().__init__(message)
        self.body = _error_body(message, code, *errors)


# -- state ------------------------------------------------------------------------


@dataclass
class PdUser:
    id: str
    name: str
    email: str
    time_zone: str = "Etc/UTC"
    role: str = "user"


@dataclass
class PdToken:
    kind: str = "account"  # "account": writes need From; "user": acts as user_id
    user_id: str | None = None
    read_only: bool = False


@dataclass
class PdService:
    id: str
    name: str
    description: str = ""
    status: str = "active"
    escalation_policy_id: str | None = None


@dataclass
class PdOnCall:
    user_id: str
    escalation_policy_id: str
    escalation_level: int = 1
    schedule_id: str | None = None  # None: on call directly through the policy
    start: datetime | None = None  # None: since forever
    end: datetime | None = None  # None: until forever


@dataclass
class PdDependency:
    id: str
    supporting_service_id: str
    dependent_service_id: str


@dataclass
class PdIncident:
    id: str
    number: int
    title: str
    service_id: str
    status: str = "triggered"
    urgency: str = "high"
    incident_key: str = field(default_factory=lambda: uuid.uuid4().hex)
    assignee_ids: list[str] = field(default_factory=list)
    acknowledgements: list[tuple[datetime, str]] = field(default_factory=list)  # (at, user id)
    created_at: datetime = field(default_factory=_now)
    last_status_change_at: datetime = field(default_factory=_now)
    last_status_change_by: str | None = None  # user id; None: the service


@dataclass
class WebhookDelivery:
    """One V3 webhook and what happened to each delivery attempt."""

    webhook_id: str
    event_type: str
    incident_id: str
    body: bytes
    headers: dict[str, str]
    attempts: list[int | str] = field(default_factory=list)  # status code, or error text
    finished: bool = False

    @property
    def payload(self) -> Any:
        return json.loads(self.body)

    @property
    def delivered(self) -> bool:
        return bool(self.attempts) and isinstance(self.attempts[-1], int) and 200 <= self.attempts[-1] < 300


# -- the fake -------------------------------------------------------------------------


class FakePagerDuty(HttpFake):
    """PagerDuty REST API v2 (incidents, on-calls, services, dependencies) + V3 webhooks."""

    def __init__(self, token: str = "pd-api-token", host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        self.token = token
        self.tokens: dict[str, PdToken] = {token: PdToken()}
        self.users: dict[str, PdUser] = {}
        self.services: dict[str, PdService] = {}
        self.escalation_policies: dict[str, str] = {}  # id -> name
        self.schedules: dict[str, str] = {}  # id -> name
        self.oncalls: list[PdOnCall] = []
        self.dependencies: list[PdDependency] = []
        self.incidents: dict[str, PdIncident] = {}
        self.webhook_deliveries: list[WebhookDelivery] = []
        self.webhook_url: str | None = None
        self.webhook_secret = ""
        self.webhook_subscription_id = "PSUB001"
        self.webhook_retry_delays: tuple[float, ...] = ()
        self.webhook_timeout = 5.0  # PagerDuty waits 5 s for a 2xx
        self._counter = itertools.count(1)
        self._webhook_tasks: set[asyncio.Task[None]] = set()
        self._http: aiohttp.ClientSession | None = None

    # -- lifecycle -------------------------------------------------------------------

    async def stop(self) -> None:
        """Stop the API and abandon webhooks still being delivered."""
        for task in list(self._webhook_tasks):
            task.cancel()
        await asyncio.gather(*self._webhook_tasks, return_exceptions=True)
        if self._http is not None:
            await self._http.close()
            self._http = None
        await super().stop()

    # -- test helpers: state -------------------------------------------------------

    def _new_id(self, letter: str) -> str:
        return f"P{letter}{next(self._counter):05d}"

    def add_token(self, token: str, kind: str = "account", user_id: str | None = None, read_only: bool = False) -> None:
        self.tokens[token] = PdToken(kind, user_id, read_only)

    def add_user(self, name: str, email: str, id: str | None = None, time_zone: str = "Etc/UTC") -> str:
        user = PdUser(id or self._new_id("U"), name, email, time_zone)
        self.users[user.id] = user
        return user.id

    def add_escalation_policy(self, name: str, id: str | None = None) -> str:
        policy_id = id or self._new_id("E")
        self.escalation_policies[policy_id] = name
        return policy_id

    def add_schedule(self, name: str, id: str | None = None) -> str:
        schedule_id = id or self._new_id("S")
        self.schedules[schedule_id] = name
        return schedule_id

    def add_oncall(
        self,
        user_id: str,
        escalation_policy_id: str,
        escalation_level: int = 1,
        schedule_id: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> PdOnCall:
        """Put a user on call (on-calls are computed by PagerDuty; tests state the result)."""
        for known, table in ((user_id, self.users), (escalation_policy_id, self.escalation_policies)):
            if known not in table:
                raise KeyError(known)
        if schedule_id is not None and schedule_id not in self.schedules:
            raise KeyError(schedule_id)
        oncall = PdOnCall(user_id, escalation_policy_id, escalation_level, schedule_id, start, end)
        self.oncalls.append(oncall)
        return oncall

    def add_service(self, name: str, id: str | None = None, escalation_policy_id: str | None = None,
                    description: str = "") -> str:
        service = PdService(id or self._new_id("V"), name, description, escalation_policy_id=escalation_policy_id)
        self.services[service.id] = service
        return service.id

    def add_dependency(self, supporting_service_id: str, dependent_service_id: str) -> str:
        """``dependent`` depends on ``supporting`` (e.g. checkout depends on database)."""
        for service_id in (supporting_service_id, dependent_service_id):
            if service_id not in self.services:
                raise KeyError(service_id)
        dependency = PdDependency(self._new_id("D"), supporting_service_id, dependent_service_id)
        self.dependencies.append(dependency)
        return dependency.id

    def add_incident(self, title: str, service_id: str, status: str = "triggered", id: str | None = None,
                     assignee_ids: tuple[str, ...] = (), urgency: str = "high") -> str:
        if service_id not in self.services:
            raise KeyError(service_id)
        number = 1 + len(self.incidents)
        incident = PdIncident(id or self._new_id("I"), number, title, service_id, status, urgency,
                              assignee_ids=list(assignee_ids))
        self.incidents[incident.id] = incident
        return incident.id

    def set_incident_status(self, incident_id: str, status: str, by_user_id: str | None = None) -> None:
        """Change an incident as someone in the PagerDuty app would; sends the webhook if enabled."""
        if status not in ("triggered", "acknowledged", "resolved"):
            raise ValueError("status must be triggered, acknowledged or resolved")
        self._apply_status(self.incidents[incident_id], status, by_user_id)

    # -- test helpers: webhooks ------------------------------------------------------

    def enable_webhooks(self, url: str, secret: str, retry_delays: tuple[float, ...] = ()) -> None:
        """Send V3 webhooks for incident status changes to ``url``, signed with ``secret``."""
        self.webhook_url, self.webhook_secret, self.webhook_retry_delays = url, secret, retry_delays

    def disable_webhooks(self) -> None:
        self.webhook_url = None

    async def wait_for_webhooks(self, count: int, timeout: float = 5.0) -> list[WebhookDelivery]:
        """Wait until ``count`` webhooks finished (delivered or given up)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while sum(d.finished for d in self.webhook_deliveries) < count:
            if loop.time() > deadline:
                raise TimeoutError(f"{len(self.webhook_deliveries)} webhooks, fewer than {count} finished")
            await asyncio.sleep(0.01)
        return self.webhook_deliveries

    # -- test helpers: faults ----------------------------------------------------------

    def rate_limit_next(self, n: int = 1, reset_seconds: int = 1, retry_after: int | None = None,
                        operation: str | None = None) -> Fault:
        """429 the PagerDuty way (ratelimit-* headers; Retry-After only if asked)."""
        headers = {"ratelimit-limit": "960", "ratelimit-remaining": "0", "ratelimit-reset": str(reset_seconds)}
        if retry_after is not None:
            headers["Retry-After"] = str(retry_after)
        return self.respond_next(429, n, operation, _error_body("Rate Limit Exceeded", 2020), headers)

    def fail_next(self, status: int = 500, n: int = 1, operation: str | None = None) -> Fault:
        body = _error_body("An internal error has occurred. PagerDuty team has been notified.", 2000)
        return self.respond_next(status, n, operation, body)

    # -- routes ------------------------------------------------------------------------

    def _add_routes(self, router: web.UrlDispatcher) -> None:
        self._route(router, "PUT", "/incidents/{id}", "update_incident", self._update_incident)
        self._route(router, "GET", "/incidents/{id}", "get_incident", self._get_incident)
        self._route(router, "GET", "/oncalls", "oncalls", self._oncalls)
        self._route(router, "GET", "/schedules/{id}/users", "schedule_users", self._schedule_users)
        self._route(router, "GET", "/services", "services", self._services)
        self._route(router, "GET", "/services/{id}", "service", self._service)
        self._route(router, "GET", "/service_dependencies/technical_services/{id}", "service_dependencies",
                    self._service_dependencies)
        self._route(router, "GET", "/users", "users", self._users)
        self._route(router, "GET", "/users/{id}", "user", self._user)
        self._route(router, "*", "/{tail:.*}", "unknown", self._unknown)

    # -- auth --------------------------------------------------------------------------

    def _token(self, request: web.Request) -> PdToken | None:
        header = request.headers.get("Authorization", "")
        prefix = "Token token="
        return self.tokens.get(header[len(prefix):]) if header.startswith(prefix) else None

    def _requester(self, request: web.Request, token: PdToken) -> str:
        """The user a write acts as: the token's user, or the From header's (account tokens)."""
        email = request.headers.get("From")
        if email is None:
            if token.kind == "user" and token.user_id:
                return token.user_id
            raise _BadInput("Invalid Input Provided", 2001,
                            "You must specify a user's email address in the \"From\" header to perform this action")
        user = next((u for u in self.users.values() if u.email.lower() == email.strip().lower()), None)
        if user is None:
            raise _BadInput("Requester User Not Found", 1008)
        return user.id

    # -- handlers: incidents -------------------------------------------------------------

    async def _update_incident(self, request: web.Request) -> web.Response:
        token = self._token(request)
        if token is None:
            return _error(401, "Authentication failed", 2006)
        if token.read_only:
            return _error(403, "Access Denied", 2010)
        incident = self.incidents.get(request.match_info["id"])
        try:
            requester = self._requester(request, token)
            if incident is None:
                return _error(404, "Not Found", 2100)
            status = _requested_status(_json_or_none(await request.read()))
            if incident.status == "resolved":
                raise _BadInput("Incident Already Resolved", 1001)
        except _BadInput as bad:
            return web.json_response(bad.body, status=400)
        self._apply_status(incident, status, requester)
        return web.json_response({"incident": self._incident_json(incident)})

    def _apply_status(self, incident: PdIncident, status: str, by_user_id: str | None) -> None:
        if incident.status == status:
            return  # re-acknowledging changes nothing visible and sends no webhook
        event_type = _EVENT_TYPES[(incident.status, status)]
        now = _now()
        incident.status = status
        incident.last_status_change_at, incident.last_status_change_by = now, by_user_id
        if status == "acknowledged" and by_user_id:
            incident.acknowledgements.append((now, by_user_id))
        if status == "resolved":
            incident.assignee_ids = []
        if self.webhook_url:
            self._send_webhook(incident, event_type, by_user_id)

    async def _get_incident(self, request: web.Request) -> web.Response:
        if self._token(request) is None:
            return _error(401, "Authentication failed", 2006)
        incident = self.incidents.get(request.match_info["id"])
        if incident is None:
            return _error(404, "Not Found", 2100)
        return web.json_response({"incident": self._incident_json(incident)})

    # -- handlers: on-calls and schedules -----------------------------------------------

    async def _oncalls(self, request: web.Request) -> web.Response:
        if self._token(request) is None:
            return _error(401, "Authentication failed", 2006)
        query = request.query
        try:
            since, until = _time_range(query.get("since"), query.get("until"))
            limit, offset = _paging(query)
        except _BadInput as bad:
            return web.json_response(bad.body, status=400)
        found = [o for o in self.oncalls if _overlaps(o, since, until) and _passes_filters(o, query)]
        found.sort(key=lambda o: (o.escalation_policy_id, o.escalation_level,
                                  o.start or datetime.min.replace(tzinfo=timezone.utc), o.user_id))
        if query.get("earliest") == "true":
            found = _earliest_per_level_and_user(found)
        includes = set(query.getall("include[]", []))
        page = [self._oncall_json(o, includes) for o in found[offset: offset + limit]]
        return web.json_response({"oncalls": page, **_page_fields(limit, offset, len(found), query)})

    async def _schedule_users(self, request: web.Request) -> web.Response:
        if self._token(request) is None:
            return _error(401, "Authentication failed", 2006)
        schedule_id = request.match_info["id"]
        if schedule_id not in self.schedules:
            return _error(404, "Not Found", 2100)
        try:
            since, until = _time_range(request.query.get("since"), request.query.get("until"))
        except _BadInput as bad:
            return web.json_response(bad.body, status=400)
        user_ids = dict.fromkeys(
            o.user_id for o in self.oncalls if o.schedule_id == schedule_id and _overlaps(o, since, until)
        )
        return web.json_response({"users": [self._user_json(self.users[uid]) for uid in user_ids]})

    # -- handlers: services and users ----------------------------------------------------

    async def _services(self, request: web.Request) -> web.Response:
        if self._token(request) is None:
            return _error(401, "Authentication failed", 2006)
        try:
            limit, offset = _paging(request.query)
        except _BadInput as bad:
            return web.json_response(bad.body, status=400)
        text = request.query.get("query", "").lower()
        found = sorted((s for s in self.services.values() if text in s.name.lower()), key=lambda s: s.name.lower())
        page = [self._service_json(s) for s in found[offset: offset + limit]]
        return web.json_response({"services": page, **_page_fields(limit, offset, len(found), request.query)})

    async def _service(self, request: web.Request) -> web.Response:
        if self._token(request) is None:
            return _error(401, "Authentication failed", 2006)
        service = self.services.get(request.match_info["id"])
        if service is None:
            return _error(404, "Not Found", 2100)
        return web.json_response({"service": self._service_json(service)})

    async def _service_dependencies(self, request: web.Request) -> web.Response:
        if self._token(request) is None:
            return _error(401, "Authentication failed", 2006)
        service_id = request.match_info["id"]
        if service_id not in self.services:
            return _error(404, "Not Found", 2100)
        return web.json_response({"relationships": [
            {
                "id": d.id,
                "type": "service_dependency",
                "supporting_service": {"id": d.supporting_service_id, "type": "technical_service_reference"},
                "dependent_service": {"id": d.dependent_service_id, "type": "technical_service_reference"},
            }
            for d in self.dependencies if service_id in (d.supporting_service_id, d.dependent_service_id)
        ]})

    async def _users(self, request: web.Request) -> web.Response:
        if self._token(request) is None:
            return _error(401, "Authentication failed", 2006)
        try:
            limit, offset = _paging(request.query)
        except _BadInput as bad:
            return web.json_response(bad.body, status=400)
        text = request.query.get("query", "").lower()
        found = [u for u in self.users.values() if text in u.name.lower() or text in u.email.lower()]
        page = [self._user_json(u) for u in found[offset: offset + limit]]
        return web.json_response({"users": page, **_page_fields(limit, offset, len(found), request.query)})

    async def _user(self, request: web.Request) -> web.Response:
        if self._token(request) is None:
            return _error(401, "Authentication failed", 2006)
        user = self.users.get(request.match_info["id"])
        if user is None:
            return _error(404, "Not Found", 2100)
        return web.json_response({"user": self._user_json(user)})

    async def _unknown(self, request: web.Request) -> web.Response:
        return _error(404, "Not Found", 2100, f"FakePagerDuty has no endpoint {request.method} {request.path}")

    # -- webhooks --------------------------------------------------------------------------

    def _send_webhook(self, incident: PdIncident, event_type: str, agent_id: str | None) -> None:
        payload = {"event": {
            "id": str(uuid.uuid4()),
            "event_type": event_type,
            "resource_type": "incident",
            "occurred_at": _now().strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "agent": self._ref("user", agent_id, self.users[agent_id].name) if agent_id else None,
            "client": None,
            "data": self._webhook_incident_json(incident),
        }}
        body = json.dumps(payload, separators=(",", ":")).encode()
        delivery = WebhookDelivery(
            webhook_id=str(uuid.uuid4()),
            event_type=event_type,
            incident_id=incident.id,
            body=body,
            headers={
                "Content-Type": "application/json; charset=utf-8",
                "User-Agent": "PagerDuty-Webhook/V3.0",
                "X-Webhook-Id": "",
                "X-Webhook-Subscription": self.webhook_subscription_id,
                "X-PagerDuty-Signature": sign_webhook(body, self.webhook_secret),
            },
        )
        delivery.headers["X-Webhook-Id"] = delivery.webhook_id
        self.webhook_deliveries.append(delivery)
        assert self.webhook_url is not None
        task = asyncio.get_running_loop().create_task(self._deliver(delivery, self.webhook_url))
        self._webhook_tasks.add(task)
        task.add_done_callback(self._webhook_tasks.discard)

    async def _deliver(self, delivery: WebhookDelivery, url: str) -> None:
        """POST the webhook; retry like PagerDuty on 5xx, 429, timeouts and connection errors."""
        if self._http is None:
            self._http = aiohttp.ClientSession()
        delays = iter(self.webhook_retry_delays)
        try:
            while True:
                try:
                    timeout = aiohttp.ClientTimeout(total=self.webhook_timeout)
                    async with self._http.post(url, data=delivery.body, headers=delivery.headers,
                                               timeout=timeout) as response:
                        delivery.attempts.append(response.status)
                        retryable = response.status >= 500 or response.status == 429
                except (TimeoutError, aiohttp.ClientError) as error:
                    delivery.attempts.append(f"{type(error).__name__}: {error}")
                    retryable = True
                delay = next(delays, None) if retryable else None
                if delay is None:
                    return
                await asyncio.sleep(delay)
        finally:
            delivery.finished = True

    # -- JSON views ---------------------------------------------------------------------------

    def _ref(self, kind: str, id: str, summary: str) -> dict[str, Any]:
        plural = {"escalation_policy": "escalation_policies"}.get(kind, kind + "s")
        return {"id": id, "type": f"{kind}_reference", "summary": summary,
                "self": f"{self.url}/{plural}/{id}", "html_url": f"{self.url}/web/{plural}/{id}"}

    def _user_json(self, user: PdUser) -> dict[str, Any]:
        return {**self._ref("user", user.id, user.name), "type": "user", "name": user.name,
                "email": user.email, "time_zone": user.time_zone, "role": user.role, "color": "green",
                "description": "", "job_title": "", "invitation_sent": False, "teams": [],
                "contact_methods": [], "notification_rules": []}

    def _oncall_json(self, oncall: PdOnCall, includes: set[str]) -> dict[str, Any]:
        user = self.users[oncall.user_id]
        policy_name = self.escalation_policies[oncall.escalation_policy_id]
        schedule = None
        if oncall.schedule_id is not None:
            schedule = self._ref("schedule", oncall.schedule_id, self.schedules[oncall.schedule_id])
            if "schedules" in includes:
                schedule = {**schedule, "type": "schedule", "name": schedule["summary"], "time_zone": "Etc/UTC"}
        policy = self._ref("escalation_policy", oncall.escalation_policy_id, policy_name)
        if "escalation_policies" in includes:
            policy = {**policy, "type": "escalation_policy", "name": policy_name}
        return {
            "escalation_policy": policy,
            "escalation_level": oncall.escalation_level,
            "schedule": schedule,
            "user": self._user_json(user) if "users" in includes else self._ref("user", user.id, user.name),
            "start": _iso(oncall.start),
            "end": _iso(oncall.end),
        }

    def _service_json(self, service: PdService) -> dict[str, Any]:
        policy_id = service.escalation_policy_id
        return {**self._ref("service", service.id, service.name), "type": "service", "name": service.name,
                "description": service.description, "status": service.status, "teams": [],
                "escalation_policy": self._ref("escalation_policy", policy_id, self.escalation_policies[policy_id])
                if policy_id in self.escalation_policies else None,
                "created_at": "2024-01-01T00:00:00Z", "incident_urgency_rule": {"type": "constant", "urgency": "high"}}

    def _incident_json(self, incident: PdIncident) -> dict[str, Any]:
        service = self.services[incident.service_id]
        changed_by = (self._ref("user", incident.last_status_change_by,
                                self.users[incident.last_status_change_by].name)
                      if incident.last_status_change_by else self._ref("service", service.id, service.name))
        return {
            **self._ref("incident", incident.id, f"[#{incident.number}] {incident.title}"),
            "type": "incident",
            "incident_number": incident.number,
            "title": incident.title,
            "status": incident.status,
            "urgency": incident.urgency,
            "incident_key": incident.incident_key,
            "created_at": _iso(incident.created_at),
            "service": self._ref("service", service.id, service.name),
            "assignments": [{"at": _iso(incident.created_at),
                             "assignee": self._ref("user", uid, self.users[uid].name)}
                            for uid in incident.assignee_ids],
            "acknowledgements": [{"at": _iso(at), "acknowledger": self._ref("user", uid, self.users[uid].name)}
                                 for at, uid in incident.acknowledgements],
            "last_status_change_at": _iso(incident.last_status_change_at),
            "last_status_change_by": changed_by,
            "pending_actions": [],
            "teams": [],
            "resolve_reason": None,
        }

    def _webhook_incident_json(self, incident: PdIncident) -> dict[str, Any]:
        full = self._incident_json(incident)
        return {
            "id": incident.id, "type": "incident", "self": full["self"], "html_url": full["html_url"],
            "number": incident.number, "status": incident.status, "incident_key": incident.incident_key,
            "created_at": full["created_at"], "title": incident.title, "service": full["service"],
            "assignees": [a["assignee"] for a in full["assignments"]], "escalation_policy": None,
            "teams": [], "priority": None, "urgency": incident.urgency, "conference_bridge": None,
            "resolve_reason": None,
        }


# -- request parsing helpers -------------------------------------------------------------


def _error_body(message: str, code: int, *errors: str) -> dict[str, Any]:
    body: dict[str, Any] = {"message": message, "code": code}
    if errors:
        body["errors"] = list(errors)
    return {"error": body}


def _error(status: int, message: str, code: int, *errors: str) -> web.Response:
    return web.json_response(_error_body(message, code, *errors), status=status)


def _json_or_none(body: bytes) -> Any:
    try:
        return json.loads(body) if body else None
    except ValueError:
        return None


def _requested_status(body: Any) -> str:
    incident = body.get("incident") if isinstance(body, dict) else None
    if not isinstance(incident, dict):
        raise _BadInput("Invalid Input Provided", 2001, "incident is required")
    if incident.get("type") not in ("incident_reference", "incident"):
        raise _BadInput("Invalid Input Provided", 2001, "type must be incident_reference or incident")
    if incident.get("status") not in ("acknowledged", "resolved"):
        raise _BadInput("Invalid Status Provided", 1003)
    return str(incident["status"])


def _parse_time(value: str) -> datetime:
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _time_range(since: str | None, until: str | None) -> tuple[datetime, datetime]:
    """Both default to now, so a bare query lists the on-calls active right now."""
    try:
        start = _parse_time(since) if since else None
        end = _parse_time(until) if until else None
    except ValueError:
        raise _BadInput("Invalid time values in 'since' and/or 'until' parameters", 2004) from None
    if start is None:
        start = _now() if end is None else min(_now(), end)
    if end is None:
        end = start
    if end < start or end - start > _MAX_RANGE:
        raise _BadInput("Invalid Query Date Range", 2005, "The date range must be less than 3 months")
    return start, end


def _overlaps(oncall: PdOnCall, since: datetime, until: datetime) -> bool:
    starts_in_time = oncall.start is None or oncall.start <= until
    ends_in_time = oncall.end is None or oncall.end > since
    return starts_in_time and ends_in_time


def _passes_filters(oncall: PdOnCall, query: Any) -> bool:
    checks = (
        ("schedule_ids[]", oncall.schedule_id),
        ("escalation_policy_ids[]", oncall.escalation_policy_id),
        ("user_ids[]", oncall.user_id),
    )
    return all(not query.getall(name, []) or value in query.getall(name) for name, value in checks)


def _earliest_per_level_and_user(oncalls: list[PdOnCall]) -> list[PdOnCall]:
    kept: dict[tuple[str, int, str], PdOnCall] = {}
    for oncall in oncalls:  # already sorted by start within each policy/level
        kept.setdefault((oncall.escalation_policy_id, oncall.escalation_level, oncall.user_id), oncall)
    return list(kept.values())


def _paging(query: Any) -> tuple[int, int]:
    try:
        limit, offset = int(query.get("limit", 25)), int(query.get("offset", 0))
    except ValueError:
        raise _BadInput("Invalid Input Provided", 2001, "limit and offset must be integers") from None
    if limit < 1 or offset < 0 or limit + offset > 10000:
        raise _BadInput("Invalid Input Provided", 2001, "Offset+limit must be less than 10000")
    return min(limit, 100), offset


def _page_fields(limit: int, offset: int, total: int, query: Any) -> dict[str, Any]:
    return {"limit": limit, "offset": offset, "more": offset + limit < total,
            "total": total if query.get("total") == "true" else None}
