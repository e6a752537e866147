"""A synthetic shop for benchmarks: services in layers with a realistic dependency graph, teams,
people, and a year of incident history. Deterministic for a given seed."""
from __future__ import annotations

import asyncio
import random
import sys
import time
import uuid
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, AsyncIterator, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, select, text  # noqa: E402
from sqlalchemy.ext.asyncio import create_async_engine  # noqa: E402

from incidents.catalog import Catalog, parse_catalog  # noqa: E402
from incidents.fingerprint import title_fingerprint  # noqa: E402
from storage.db import Database, normalise_url  # noqa: E402
from storage.schema import incidents, outbox  # noqa: E402

LAYERS = ("web", "api", "svc", "data", "infra")
TEMPLATES = ("{s}: HTTP 5xx error rate {n}% on POST /v1/{s}", "{s}: p99 latency {n}00 ms",
             "{s}: {n}/6 pods ready, health checks failing", "{s}: queue depth {n}000",
             "{s}: replication lag {n}s", "{s}: disk {n}% full", "{s}: certificate expires in {n} days")


def shop_catalog(services: int = 200, seed: int = 7) -> dict[str, Any]:
    """A catalog dict (the services.yaml format): `services` services in 5 layers, each calling
    1-4 services of the layers below, owned by services // 10 teams."""
    rng = random.Random(seed)
    teams = max(1, services // 10)
    per_layer = [max(1, services * w // 100) for w in (10, 25, 30, 25, 10)]
    per_layer[-1] += services - sum(per_layer)
    names: list[list[str]] = [[f"{layer}-{i:03d}" for i in range(n)]
                              for layer, n in zip(LAYERS, per_layer)]
    people = [{"name": f"Engineer {i}", "email": f"eng{i}@shop.example"} for i in range(teams * 3)]
    catalog: dict[str, Any] = {
        "timezone": "Europe/Amsterdam",
        "teams": {f"team-{t:02d}": {"name": f"Team {t}", "email": f"team{t}@shop.example",
                                    "jira_project": f"T{t:02d}",
                                    "members": [p["email"] for p in people[t * 3:t * 3 + 3]]}
                  for t in range(teams)},
        "people": people, "services": []}
    for depth, layer in enumerate(names):
        below = [n for deeper in names[depth + 1:] for n in deeper]
        for name in layer:
            t = rng.randrange(teams)
            calls = rng.sample(below, k=min(len(below), rng.randint(1, 4))) if below else []
            catalog["services"].append({
                "name": name, "owner_team": f"team-{t:02d}", "calls": calls,
                "revenue_per_minute_usd": rng.choice((50, 200, 900, 2500)),
                "oncall": {"primary": people[t * 3]["email"], "standby": people[t * 3 + 1]["email"]},
                "runbook": f"https://wiki.shop.example/runbooks/{name}"})
    return catalog


def load_shop(services: int = 200, seed: int = 7) -> Catalog:
    return parse_catalog(shop_catalog(services, seed))


@asynccontextmanager
async def bench_database(url: str | None, name: str) -> AsyncIterator[str]:
    """A fresh database for one run: a temp SQLite file, or a new database on the given
    PostgreSQL server (dropped afterwards)."""
    if not url or url.startswith("sqlite"):
        import tempfile
        with tempfile.TemporaryDirectory() as tmp:
            yield url or f"sqlite:///{tmp}/{name}.db"
        return
    server = normalise_url(url).rsplit("/", 1)[0]
    db_name = f"{name}_{uuid.uuid4().hex[:6]}"
    admin = create_async_engine(f"{server}/postgres", isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{db_name}"'))
    try:
        yield f"{server}/{db_name}"
    finally:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)'))
        await admin.dispose()


async def fill_history(db: Database, catalog: Catalog, count: int, *, now: datetime,
                       open_count: int = 300, seed: int = 11, chunk: int = 5000) -> None:
    """`count` incidents spread over the year before `now`; all resolved or closed except the
    newest `open_count`, which are open within the last hours (what correlation looks at)."""
    rng = random.Random(seed)
    names = list(catalog.services)
    start = now - timedelta(days=365)
    span = (now - start).total_seconds()
    rows: list[dict[str, Any]] = []
    for i in range(count):
        recent = i >= count - open_count
        when = now - timedelta(minutes=rng.uniform(0, 240)) if recent else \
            start + timedelta(seconds=span * i / max(1, count))
        rows.append(_row(rng, catalog, rng.choice(names), when, recent, now))
        if len(rows) >= chunk:
            await _insert(db, rows)
            rows = []
    if rows:
        await _insert(db, rows)


def _row(rng: random.Random, catalog: Catalog, service: str, when: datetime, open_: bool,
         now: datetime) -> dict[str, Any]:
    title = rng.choice(TEMPLATES).format(s=service, n=rng.randint(1, 99))
    svc = catalog.services[service]
    resolved = None if open_ else when + timedelta(minutes=rng.uniform(5, 240))
    acked = when + timedelta(minutes=rng.uniform(0.5, 15)) if rng.random() < 0.8 else None
    return {"source": "pagerduty", "external_id": uuid.uuid4().hex, "title": title,
            "service": service, "team": svc.owner_team,
            "level": catalog.levels.level_for(title), "status": "open" if open_ else
            rng.choice(("resolved", "closed", "closed")), "triggered_at": when,
            "first_acknowledged_at": acked, "acknowledged_at": acked, "resolved_at": resolved,
            "closed_at": resolved + timedelta(days=2) if resolved and rng.random() < 0.6 else None,
            "fingerprint": title_fingerprint(service, title), "correlated": True,
            "duplicate_window_until": when + timedelta(minutes=30), "assignees": [],
            "details": {}, "no_auto_link": False, "version": 1, "created_at": when,
            "updated_at": resolved or when}


async def _insert(db: Database, rows: list[dict[str, Any]]) -> None:
    async with db.write() as conn:
        await conn.execute(incidents.insert(), rows)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def run(coro) -> Any:
    return asyncio.run(coro)


@dataclass(frozen=True)
class Drain:
    waiting: int          # jobs pending or running when the wait began
    left: int             # ... and when it ended
    seconds: float        # how long it waited

    @property
    def drained_s(self) -> float | None:
        """Seconds until nothing was left; None when the limit came first."""
        return None if self.left else round(self.seconds, 1)


async def drain_outbox(url: str, *, limit: float, kinds: Sequence[str] | None = None) -> Drain:
    """Watch a running Firebell's outbox until no job (of `kinds`) is pending or running, for
    at most `limit` seconds."""
    q = select(func.count()).select_from(outbox).where(
        outbox.c.status.in_(["pending", "running"]))
    if kinds:
        q = q.where(outbox.c.kind.in_(list(kinds)))
    db = Database(url)
    try:
        started = time.monotonic()
        async with db.read() as conn:
            waiting = left = (await conn.execute(q)).scalar_one()
        while left and time.monotonic() - started < limit:
            await asyncio.sleep(0.2)
            async with db.read() as conn:
                left = (await conn.execute(q)).scalar_one()
        return Drain(waiting, left, time.monotonic() - started)
    finally:
        await db.close()


# Who subscribes the benchmarks' channels: an admin (FIREBELL_ADMINS) whom the stand-in Bot
# Connector's roster knows, as routing a team's incidents is not for just anyone.
LEAD = {"id": "29:bench-lead", "aadObjectId": "00000000-0000-4000-8000-00000000bead",
        "name": "Bench Lead", "email": "lead@bench.example",
        "userPrincipalName": "lead@bench.example"}
TENANT = "bench-tenant"


async def subscribe_channels(base: str, connector_url: str, db_url: str,
                             teams: Sequence[str]) -> None:
    """`incident subscribe <team>` in a channel per team, as LEAD. The first message from an
    unknown person only starts the roster sync, so each is repeated until it took (at most 30 s)."""
    import aiohttp
    from storage.schema import subscriptions
    db = Database(db_url)
    deadline = time.monotonic() + 30
    try:
        async with aiohttp.ClientSession() as http:
            for n, team in enumerate(teams):
                channel = f"19:{team}-incidents@thread.tacv2"
                while True:
                    activity = {
                        "type": "message", "id": f"sub{n}-{uuid.uuid4().hex[:6]}",
                        "channelId": "msteams", "serviceUrl": connector_url,
                        "text": f"incident subscribe {team}",
                        "from": {"id": LEAD["id"], "name": LEAD["name"],
                                 "aadObjectId": LEAD["aadObjectId"]},
                        "recipient": {"id": "28:bot"},
                        "conversation": {"id": f"{channel};messageid=sub{n}", "tenantId": TENANT,
                                         "conversationType": "channel", "isGroup": True},
                        "channelData": {"channel": {"id": channel}, "team": {"id": "19:team"},
                                        "tenant": {"id": TENANT}}}
                    async with http.post(f"{base}/api/messages", json=activity) as resp:
                        if resp.status not in (200, 201):
                            raise SystemExit(f"subscribing {team}: HTTP {resp.status}")
                    async with db.read() as conn:
                        if (await conn.execute(select(subscriptions.c.team).where(
                                subscriptions.c.team == team))).first():
                            break
                    if time.monotonic() > deadline:
                        raise SystemExit(f"could not subscribe a channel for {team}")
                    await asyncio.sleep(0.5)
    finally:
        await db.close()
