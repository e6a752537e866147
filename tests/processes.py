"""Firebell as real processes, for the fault and scale-out tests: `python app.py` on a free port
with its settings in the environment (as a deployment runs it), started, SIGKILLed, restarted.
Plus what talks to it from outside: signed PagerDuty deliveries sent the way PagerDuty sends
them (and re-sends them: same bytes, same X-Webhook-Id), Teams activities that install the bot
and subscribe channels, and a read-only view of its database.

The Bot Connector, JIRA, Graph and SMTP stand-ins run in the test process (tests/fakes); the
Firebell processes reach them over loopback like the real services.
"""
from __future__ import annotations

import asyncio
import itertools
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping

import aiohttp
from sqlalchemy import func, select

from handlers.ingest.signature import sign
from storage.db import Database
from storage.schema import outbox
from tests.conftest import CATALOG, REPO
from tests.harness import BOT, TEAM, TENANT, user

SECRET = "whsec-process-secret"
_ids = itertools.count(1_750_000_000_000)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def plain_url(database_url: str) -> str:
    """The URL as an operator would write it (app.py normalises it again)."""
    return database_url.replace("+asyncpg", "").replace("+aiosqlite", "")


class FirebellProcess:
    """One `python app.py`. Settings come from `env` on top of quiet test defaults; the port
    stays the same across restarts."""

    def __init__(self, database_url: str, log_dir: Path, *, name: str = "firebell",
                 env: Mapping[str, str] | None = None):
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = Path(log_dir) / f"{name}.log"
        self.env = {
            "PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp"),
            "LANG": "C.UTF-8", "PYTHONUNBUFFERED": "1",
            "PORT": str(self.port), "HOST": "127.0.0.1", "PUBLIC_BASE_URL": self.url,
            "DATABASE_URL": plain_url(database_url), "FIREBELL_CONFIG": str(CATALOG),
            "PAGERDUTY_WEBHOOK_SECRETS": SECRET, "ALERTMANAGER_WEBHOOK_TOKEN": "am-token",
            "MicrosoftAppId": "", "LOG_LEVEL": "WARNING", "LOG_FORMAT": "text",
            "FIREBELL_WORKER_POLL_SECONDS": "0.1", "FIREBELL_CARD_UPDATE_SECONDS": "1",
            "FIREBELL_SCHEDULER": "off",
            **(env or {}),
        }
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    def start(self) -> "FirebellProcess":
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.starts += 1
        log = open(self.log_path, "a")
        log.write(f"\n===== start #{self.starts} at {datetime.now(timezone.utc)} =====\n")
        log.flush()
        self.proc = subprocess.Popen([sys.executable, str(REPO / "app.py")], env=self.env,
                                     cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        return self

    async def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as http:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"{self.name} exited ({self.proc.returncode}) during "
                                       f"start-up:\n{self.log_tail()}")
                try:
                    async with http.get(f"{self.url}/readyz") as resp:
                        if resp.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
        raise TimeoutError(f"{self.name} not ready within {timeout}s:\n{self.log_tail()}")

    def kill(self) -> None:
        """SIGKILL: no shutdown hooks, no flush, open transactions die with the process."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_lines(self, pattern: str) -> list[str]:
        return [f"{self.name}: {line}" for line in self.log_text().splitlines()
                if re.search(pattern, line)]


# -- PagerDuty ----------------------------------------------------------------------------------

@dataclass
class PagerDutyDelivery:
    """One webhook delivery: fixed bytes and X-Webhook-Id, so a re-send is a true redelivery."""
    event_id: str
    external_id: str
    event_type: str
    body: bytes
    webhook_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    statuses: list[int | str] = field(default_factory=list)  # every answer, or the error

    @property
    def acknowledged(self) -> bool:
        return any(isinstance(s, int) and 200 <= s < 300 for s in self.statuses)

    def headers(self, secret: str = SECRET) -> dict[str, str]:
        return {"Content-Type": "application/json", "User-Agent": "PagerDuty-Webhook/V3.0",
                "X-Webhook-Id": self.webhook_id, "X-Webhook-Subscription": "PFAULTS",
                "X-PagerDuty-Signature": sign(secret, self.body)}


def pagerduty_event(event_type: str, pd_id: str, service: str, service_id: str, title: str, *,
                    number: int, at: datetime | None = None, created: datetime | None = None,
                    agent: str | None = None) -> PagerDutyDelivery:
    at = at or datetime.now(timezone.utc)
    event_id = f"01F{uuid.uuid4().hex[:23].upper()}"
    doc = {"event": {
        "id": event_id, "event_type": event_type, "resource_type": "incident",
        "occurred_at": _iso(at),
        "agent": {"type": "user_reference", "id": "PH4CX2V", "summary": agent} if agent else None,
        "data": {"id": pd_id, "type": "incident", "number": number, "title": title,
                 "status": {"incident.acknowledged": "acknowledged",
                            "incident.resolved": "resolved"}.get(event_type, "triggered"),
                 "created_at": _iso(created or at, whole_seconds=True), "urgency": "high",
                 "html_url": f"https://shopfront.pagerduty.com/incidents/{pd_id}",
                 "service": {"id": service_id, "summary": service,
                             "type": "service_reference"}}}}
    return PagerDutyDelivery(event_id, pd_id, event_type, json.dumps(doc).encode())


def _iso(at: datetime, *, whole_seconds: bool = False) -> str:
    """As PagerDuty writes times: occurred_at to the millisecond, created_at to the second (so
    in a storm many incidents start "at the same time")."""
    spec = "seconds" if whole_seconds else "milliseconds"
    return at.astimezone(timezone.utc).isoformat(timespec=spec).replace("+00:00", "Z")


async def deliver(http: aiohttp.ClientSession, base_url: str, delivery: PagerDutyDelivery, *,
                  timeout: float = 10.0, secret: str = SECRET) -> int | str:
    """Send once, as PagerDuty does (it waits a few seconds for a 2xx); record the outcome."""
    try:
        async with http.post(f"{base_url}/webhooks/pagerduty", data=delivery.body,
                             headers=delivery.headers(secret),
                             timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
            await resp.read()
            outcome: int | str = resp.status
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
        outcome = type(exc).__name__
    delivery.statuses.append(outcome)
    return outcome


async def deliver_all(http: aiohttp.ClientSession, targets: Iterable[tuple[str, PagerDutyDelivery]],
                      *, senders: int = 20, on_answer=None) -> None:
    """Send (base_url, delivery) pairs from `senders` concurrent senders, in order."""
    queue: asyncio.Queue = asyncio.Queue()
    for item in targets:
        queue.put_nowait(item)

    async def sender() -> None:
        while not queue.empty():
            base_url, delivery = queue.get_nowait()
            outcome = await deliver(http, base_url, delivery)
            if on_answer is not None:
                on_answer(delivery, outcome)

    await asyncio.gather(*(sender() for _ in range(senders)))


# -- Teams ---------------------------------------------------------------------------------------

def channel_id(team: str) -> str:
    return f"19:{team}-incidents@thread.tacv2"


def teams_activity(service_url: str, channel: str, text: str, *, who: str = "sarah",
                   kind: str = "message") -> dict[str, Any]:
    activity_id = str(next(_ids))
    activity = {
        "type": kind, "id": activity_id, "channelId": "msteams", "serviceUrl": service_url,
        "from": user(who), "recipient": BOT,
        "conversation": {"id": f"{channel};messageid={activity_id}",
                         "conversationType": "channel", "isGroup": True, "tenantId": TENANT},
        "text": f"<at>Firebell</at> {text}",
        "entities": [{"type": "mention", "text": "<at>Firebell</at>", "mentioned": BOT}],
        "channelData": {"channel": {"id": channel, "name": channel.split(":")[1].split("@")[0]},
                        "team": {"id": TEAM, "name": "Shopfront"}, "tenant": {"id": TENANT}},
    }
    if kind == "conversationUpdate":
        activity.update(text=None, entities=[], membersAdded=[BOT],
                        channelData={**activity["channelData"], "eventType": "teamMemberAdded"})
    return activity


async def subscribe_channels(base_url: str, connector, teams: Iterable[str],
                             timeout: float = 20.0) -> dict[str, str]:
    """Install the bot in the team, then subscribe one channel per team (and `default`),
    as Sarah Kim (an incident commander). Retries until the roster sync has made her known."""
    channels = {}
    async with aiohttp.ClientSession() as http:
        async def post(activity):
            async with http.post(f"{base_url}/api/messages", json=activity) as resp:
                await resp.read()
                assert resp.status in (200, 201), resp.status

        await post(teams_activity(connector.base_url, channel_id("general"), "",
                                  kind="conversationUpdate"))
        deadline = time.monotonic() + timeout
        for team in teams:
            channel = channel_id(team)
            while True:
                before = len(connector.requests_of("reply"))
                await post(teams_activity(connector.base_url, channel,
                                          f"incident subscribe {team}"))
                await connector.wait_for(lambda: len(connector.requests_of("reply")) > before)
                text = (connector.requests_of("reply")[-1].body or {}).get("text") or ""
                if "now gets" in text:
                    break
                assert time.monotonic() < deadline, f"subscribe {team}: {text}"
                await asyncio.sleep(0.2)
            channels[team] = channel
    return channels


# -- the database, read from outside ------------------------------------------------------------

async def outbox_busy(db: Database) -> int:
    async with db.read() as conn:
        return (await conn.execute(select(func.count()).select_from(outbox).where(
            outbox.c.status.in_(["pending", "running"])))).scalar_one()


async def wait_until_drained(db: Database, timeout: float, *, kinds: Iterable[str] | None = None,
                             procs: Iterable[FirebellProcess] = ()) -> float:
    """Wait until no job (of `kinds`) is pending or running; returns the seconds waited."""
    started = time.monotonic()
    q = select(func.count()).select_from(outbox).where(outbox.c.status.in_(["pending", "running"]))
    if kinds:
        q = q.where(outbox.c.kind.in_(list(kinds)))
    while True:
        async with db.read() as conn:
            left = (await conn.execute(q)).scalar_one()
        if not left:
            return time.monotonic() - started
        for p in procs:
            assert p.proc.poll() is None, f"{p.name} died:\n{p.log_tail()}"
        if time.monotonic() - started > timeout:
            async with db.read() as conn:
                rows = (await conn.execute(select(outbox.c.id, outbox.c.kind, outbox.c.status,
                                                  outbox.c.run_after, outbox.c.claimed_until,
                                                  outbox.c.last_error).where(
                    outbox.c.status.in_(["pending", "running"])).limit(10))).all()
            raise TimeoutError(f"outbox not drained in {timeout}s: {left} left, e.g. {rows}")
        await asyncio.sleep(0.2)


# -- a storm over the test catalog ---------------------------------------------------------------

ROOT_WORDS = ("primary", "replica", "shard")  # one distinct root problem per word and database


def plan_storm(catalog, deliveries: int = 1000, *, seed: int = 7) -> list[PagerDutyDelivery]:
    """`deliveries` PagerDuty deliveries in send order: a few root outages on the databases at
    the bottom of the dependency graph (distinct problems, "down", so each is its own root),
    many 5xx symptoms on the services above them (each its own PagerDuty incident: cascades of
    those roots, and duplicates of one another), acknowledgements and resolves of some of them,
    and PagerDuty's own redeliveries (the same bytes and X-Webhook-Id again)."""
    import random
    from datetime import timedelta

    rng = random.Random(seed)
    leaves = [s for s in catalog.services.values() if not catalog.graph.upstream(s.name)]
    above = [s for s in catalog.services.values() if catalog.graph.upstream(s.name)]
    n_triggers, n_acks, n_resolves = (deliveries * 6) // 10, deliveries // 4, deliveries // 20
    n_redeliveries = deliveries - n_triggers - n_acks - n_resolves
    start = datetime.now(timezone.utc) - timedelta(seconds=20)
    clock = itertools.count()

    def at() -> datetime:
        return start + timedelta(milliseconds=5 * next(clock))

    triggers: list[tuple[PagerDutyDelivery, Any, str, int]] = []
    roots = [(svc, word) for word in ROOT_WORDS for svc in leaves]
    spread = n_triggers // len(roots)
    root_at = [4 * i for i in range(len(leaves))] + [
        spread * i + rng.randint(0, spread // 2) for i in range(len(leaves), len(roots))]
    for n in range(n_triggers):
        number = 5000 + n
        if n in root_at:  # one outage per database early on, the others spread out
            svc, word = roots[root_at.index(n)]
            title = f"{svc.name}: {word} down, 0/3 pods ready"
        else:
            svc = rng.choice(above)
            title = f"{svc.name}: HTTP 5xx error rate {rng.randint(5, 60)}% on POST /v1/{svc.name}"
        pd_id = f"PSTORM{number}"
        when = at()
        triggers.append((pagerduty_event("incident.triggered", pd_id, svc.name,
                                         svc.pagerduty_service_id, title, number=number, at=when),
                         svc, title, number))
    plan: list[PagerDutyDelivery] = [d for d, *_ in triggers]
    symptoms = [t for t in triggers if "5xx" in t[2]]
    acked = rng.sample(symptoms, n_acks)
    for d, svc, title, number in acked:  # each at least 40 deliveries after its trigger
        pos = plan.index(d) + 40 + rng.randint(0, 80)
        plan.insert(min(pos, len(plan)), pagerduty_event(
            "incident.acknowledged", d.external_id, svc.name, svc.pagerduty_service_id, title,
            number=number, at=at(), agent="Sarah Kim"))
    for d, svc, title, number in rng.sample(acked, n_resolves):
        plan.append(pagerduty_event("incident.resolved", d.external_id, svc.name,
                                    svc.pagerduty_service_id, title, number=number, at=at()))
    for original in rng.sample(plan, n_redeliveries):
        again = PagerDutyDelivery(original.event_id, original.external_id, original.event_type,
                                  original.body, original.webhook_id)
        plan.insert(min(plan.index(original) + rng.randint(1, 60), len(plan)), again)
    assert len(plan) == deliveries
    return plan


# -- JIRA and Graph stand-ins, as the processes see them ------------------------------------------

class OutsideWorld:
    """FakeJira and FakeGraph knowing the catalog's people, teams' projects and services; `env`
    points a Firebell process at them."""

    def __init__(self, catalog):
        from tests.fakes.graph import FakeGraph
        from tests.fakes.jira import FakeJira

        self.catalog = catalog
        self.graph, self.jira = FakeGraph(), FakeJira()

    async def __aenter__(self) -> "OutsideWorld":
        await self.graph.start()
        await self.jira.start()
        for person in self.catalog.people.values():
            self.graph.add_user(person.name, upn=person.email)
            self.jira.add_user(person.email, display_name=person.name)
        for team in self.catalog.teams.values():
            self.jira.add_project(team.jira_project)
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.graph.stop()
        await self.jira.stop()

    @property
    def env(self) -> dict[str, str]:
        g, j = self.graph, self.jira
        return {"GRAPH_CLIENT_ID": g.client_id, "GRAPH_CLIENT_SECRET": g.client_secret,
                "GRAPH_TENANT_ID": g.tenant_id, **g.env(),
                "JIRA_URL": j.base_url, "JIRA_EMAIL": j.email, "JIRA_API_TOKEN": j.api_token}

    def postmortem_tasks(self) -> Counter:
        """JIRA postmortem tasks per incident ref (from the label Firebell puts on them)."""
        with self.jira._lock:
            labels = [label for issue in self.jira.issues.values() for label in issue.labels]
        return Counter(m.group(1) for label in labels
                       if (m := re.fullmatch(r"firebell-(INC-\d+)-postmortem", label)))

    def war_rooms(self) -> Counter:
        """Group chats per incident ref (war-room topics start with the ref)."""
        with self.graph._lock:
            topics = [c.get("topic") or "" for c in self.graph.chats.values()]
        return Counter(t.split(" ", 1)[0] for t in topics)
