"""Alert storm through the real HTTP endpoint (`python bench/correlation.py --storm`).

Starts Firebell as its own process (SQLite by default) with a 100-service shop, a stand-in Bot
Connector that records every message and enforces Teams' per-conversation limits (429 when
exceeded), and plays `--events` signed PagerDuty deliveries over `--seconds` from 20 concurrent
senders: a few root outages deep in the dependency graph, their downstream symptoms (some
paging before their root), repeats of the same alert as new incidents, acknowledgements and
resolves. Then waits (up to 240 s) for the outbox to drain and reports what reached Teams:
`decided_seconds`, after the last event, until every correlation decision was made, and
`drained_seconds` until every job was done (card updates wait for Teams' per-conversation
limits); null when not within 240 s.

`--maintenance` plays the same storm with every team in a maintenance window: what reached
Teams during the window (should be nothing but the subscription replies), then the windows end
and the figures of the close-out (one summary per window, the incidents still firing announced
normally) once the outbox has drained again.
"""
from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from datetime import timedelta

import aiohttp
import yaml
from aiohttp import web
from sqlalchemy import func, select, update

from bench.shop import (LEAD, bench_database, drain_outbox, load_shop, percentile, shop_catalog,
                        subscribe_channels, utcnow)
from handlers.ingest.signature import sign
from storage import maintenance as windows
from storage.db import Database
from storage.schema import incidents, maintenance_windows, outbox

ROOT = Path(__file__).resolve().parent.parent
SECRET = "bench-secret"
LIMITS = ((1, 7), (2, 8), (30, 60))  # Teams: per conversation, (seconds, messages)


class StandInConnector:
    """Records sends per conversation and answers 429 past Teams' limits, as Teams would."""

    def __init__(self) -> None:
        self.sends: dict[str, list[float]] = defaultdict(list)
        self.posts = self.updates = self.throttled = 0
        self._ids = 1_800_000_000_000

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v3/conversations/{cid}/activities", self._post)
        app.router.add_post("/v3/conversations/{cid}/activities/{aid}", self._post)
        app.router.add_put("/v3/conversations/{cid}/activities/{aid}", self._update)
        app.router.add_get("/v3/conversations/{cid}/members", self._members)
        return app

    def _admit(self, cid: str) -> bool:
        now = time.monotonic()
        sent = self.sends[cid.split(";")[0]]
        if any(sum(1 for t in sent if now - t < window) >= cap for window, cap in LIMITS):
            self.throttled += 1
            return False
        sent.append(now)
        return True

    async def _post(self, request: web.Request) -> web.Response:
        if not self._admit(request.match_info["cid"]):
            return web.json_response({"error": "throttled"}, status=429,
                                     headers={"Retry-After": "1"})
        self.posts += 1
        self._ids += 1
        return web.json_response({"id": str(self._ids)})

    async def _update(self, request: web.Request) -> web.Response:
        if not self._admit(request.match_info["cid"]):
            return web.json_response({"error": "throttled"}, status=429,
                                     headers={"Retry-After": "1"})
        self.updates += 1
        return web.json_response({"id": request.match_info["aid"]})

    async def _members(self, request: web.Request) -> web.Response:
        return web.json_response([LEAD])

    def reset(self) -> None:
        self.sends.clear()
        self.posts = self.updates = self.throttled = 0

    def worst_rates(self) -> dict[str, int]:
        worst = {"max_per_1s": 0, "max_per_30s": 0}
        for stamps in self.sends.values():
            for i, t in enumerate(stamps):
                worst["max_per_1s"] = max(worst["max_per_1s"],
                                          sum(1 for u in stamps[i:] if u - t < 1))
                worst["max_per_30s"] = max(worst["max_per_30s"],
                                           sum(1 for u in stamps[i:] if u - t < 30))
        return worst


def plan_storm(catalog, events: int, seconds: float, seed: int = 5) -> list[tuple[float, dict]]:
    """(send time offset, V3 event body) for the whole storm, sorted by time."""
    rng = random.Random(seed)
    graph = catalog.graph
    deep = [s for s in catalog.services if s.startswith(("data-", "infra-"))]
    roots = rng.sample(deep, k=5)
    plan: list[tuple[float, dict]] = []
    resolves: list[tuple[float, dict]] = []
    incident_no = 0

    def trigger(service: str, at: float, title: str) -> str:
        nonlocal incident_no
        incident_no += 1
        pd_id = f"PST{incident_no:05d}"
        plan.append((at, _event("incident.triggered", pd_id, incident_no, service, title)))
        return pd_id

    per_root = events // len(roots)
    for r, root in enumerate(roots):
        t_root = seconds * 0.7 * r / len(roots)
        symptoms = list(graph.downstream(root))[:40] or [root]
        budget = per_root
        root_id = trigger(root, t_root + rng.uniform(0, 3), f"{root}: 0/6 pods ready, down")
        budget -= 1
        while budget > 0:
            service = rng.choice(symptoms)
            at = min(seconds, max(0.0, t_root + rng.uniform(-1, 10)))
            title = f"{service}: HTTP 5xx error rate {rng.randint(5, 60)}% on POST /v1/{service}"
            pd_id = trigger(service, at, title)
            budget -= 1
            if budget > 0 and rng.random() < 0.3:  # someone acknowledges it
                plan.append((at + rng.uniform(0.5, 5), _event("incident.acknowledged", pd_id,
                                                              incident_no, service, title)))
                budget -= 1
        resolves.append((seconds, _event("incident.resolved", root_id, 0, root, f"{root} down")))
    plan.sort(key=lambda x: x[0])
    return plan[:events - len(resolves)] + resolves  # the roots recover once the storm is over


def _tenths(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 1)   # None: not drained in time


def _event(kind: str, pd_id: str, number: int, service: str, title: str) -> dict:
    """Times are stamped when the event is sent (see _stamp)."""
    return {"event": {"id": f"E{pd_id}-{kind}-{random.random()}", "event_type": kind,
                      "resource_type": "incident", "agent": None,
                      "data": {"id": pd_id, "type": "incident", "number": number or None,
                               "title": title, "status": "triggered",
                               "service": {"id": f"S-{service}", "summary": service},
                               "urgency": "high"}}}


def _stamp(event: dict, created: dict[str, str]) -> bytes:
    now = utcnow().isoformat().replace("+00:00", "Z")
    data = event["event"]["data"]
    event["event"]["occurred_at"] = now
    data["created_at"] = created.setdefault(data["id"], now)
    return json.dumps(event).encode()


async def storm(args) -> dict:
    catalog = load_shop(100)
    connector = StandInConnector()
    runner = web.AppRunner(connector.app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    connector_url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
    async with bench_database(args.database_url, "firebell_bench_storm") as url:
        with tempfile.TemporaryDirectory() as tmp:
            catalog_file = Path(tmp) / "shop.yaml"
            catalog_file.write_text(yaml.safe_dump(shop_catalog(100)))
            port = _free_port()
            app = _start_firebell(port, url, catalog_file, tmp)
            try:
                base = f"http://127.0.0.1:{port}"
                async with aiohttp.ClientSession() as http:
                    await _wait_ready(http, base, app)
                await subscribe_channels(base, connector_url, url, [*catalog.teams, "default"])
                connector.reset()  # what the storm sends, not the subscriptions' replies
                async with aiohttp.ClientSession() as http:
                    if getattr(args, "maintenance", False):
                        await _open_windows(url, catalog, args.seconds)
                    sent = await _play(http, base, plan_storm(catalog, args.events, args.seconds))
                decided = (await drain_outbox(url, limit=240, kinds=["correlate"])).drained_s
                rest = (await drain_outbox(url, limit=240)).drained_s
                drained = None if decided is None or rest is None else decided + rest
                figures = await _figures(Database(url))
                if getattr(args, "maintenance", False):
                    figures.update(await _close_windows(url, connector))
            finally:
                app.send_signal(signal.SIGTERM)
                app.wait(timeout=20)
    await runner.cleanup()
    latencies = sent["latencies"]
    return {"events": args.events, "accepted": sent["accepted"], "rejected": sent["rejected"],
            "events_per_s": round(sent["accepted"] / sent["seconds"], 1),
            "p50_ms": round(percentile(latencies, 50), 1),
            "p99_ms": round(percentile(latencies, 99), 1),
            "teams_posts": connector.posts, "teams_updates": connector.updates,
            "teams_429": connector.throttled, "conversations": len(connector.sends),
            **{f"teams_{k}": v for k, v in connector.worst_rates().items()},
            "decided_seconds": _tenths(decided), "drained_seconds": _tenths(drained), **figures}


async def _open_windows(url: str, catalog, seconds: float) -> None:
    """Every team in maintenance for the storm and a margin, as `incident maintenance <team>
    …` would store it (straight in the database: the bench has no Teams users to type it)."""
    db = Database(url)
    now = utcnow()
    async with db.write() as conn:
        for team in catalog.teams:
            await windows.insert(conn, target_kind="team", target=team, starts_at=now,
                                 ends_at=now + timedelta(seconds=seconds + 3600),
                                 reason="bench: storm during maintenance",
                                 created_by="bench@shopfront.example")
    await db.close()


async def _close_windows(url: str, connector: "StandInConnector") -> dict:
    """End every window now, then let Firebell's own scheduler close them out (it looks every
    20 s): what the storm left in maintenance, and what Teams saw after."""
    posts, updates = connector.posts, connector.updates
    db = Database(url)
    async with db.write() as conn:
        held = (await conn.execute(select(func.count()).select_from(incidents).where(
            incidents.c.maintenance_id.is_not(None)))).scalar_one()
        still_open = (await conn.execute(select(func.count()).select_from(incidents).where(
            incidents.c.maintenance_id.is_not(None), incidents.c.status == "open"))).scalar_one()
        await conn.execute(update(maintenance_windows).values(ends_at=utcnow()))
    ended = time.monotonic()
    count = select(func.count()).select_from(maintenance_windows).where(
        maintenance_windows.c.closed_out_at.is_(None))
    left = 1
    while left and time.monotonic() - ended < 120:
        await asyncio.sleep(0.5)
        async with db.read() as conn:
            left = (await conn.execute(count)).scalar_one()
    closed_s = round(time.monotonic() - ended, 1) if not left else None
    await db.close()
    drained = (await drain_outbox(url, limit=240)).drained_s
    db = Database(url)
    async with db.read() as conn:
        opened = (await conn.execute(select(func.count()).select_from(maintenance_windows))
                  ).scalar_one()
        summaries = (await conn.execute(select(func.count()).select_from(outbox).where(
            outbox.c.once_key.like("maintenance:%:summary"), outbox.c.status == "done"))
        ).scalar_one()
    await db.close()
    figures = await _figures(Database(url))
    return {"maintenance_windows": opened, "summaries_posted": summaries, "held_back": held, "still_open_at_end": still_open,
            "teams_posts_during_window": posts, "teams_updates_during_window": updates,
            "closed_out_seconds": closed_s, "drained_after_end_seconds": drained,
            "teams_posts_after_window": connector.posts - posts,
            "teams_updates_after_window": connector.updates - updates,
            "roots_after_window": figures["roots"], "links_after_window": figures["links"],
            "jobs_failed_after_window": figures["jobs_failed"]}


def _start_firebell(port: int, url: str, catalog_file: Path, tmp: str) -> subprocess.Popen:
    env = {**os.environ, "PORT": str(port), "HOST": "127.0.0.1", "DATABASE_URL": url,
           "FIREBELL_CONFIG": str(catalog_file), "PAGERDUTY_WEBHOOK_SECRETS": SECRET,
           "LOG_LEVEL": "ERROR", "MicrosoftAppId": "", "FIREBELL_ADMINS": LEAD["email"]}
    log = open(Path(tmp) / "firebell.log", "w")
    return subprocess.Popen([sys.executable, str(ROOT / "app.py")], env=env, stdout=log,
                            stderr=subprocess.STDOUT)


async def _wait_ready(http: aiohttp.ClientSession, base: str, app: subprocess.Popen) -> None:
    for _ in range(200):
        if app.poll() is not None:
            raise SystemExit("Firebell exited during start-up")
        try:
            async with http.get(f"{base}/readyz") as resp:
                if resp.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    raise SystemExit("Firebell did not become ready")


async def _play(http, base, plan) -> dict:
    latencies, accepted, rejected = [], 0, 0
    created: dict[str, str] = {}
    queue: asyncio.Queue = asyncio.Queue()
    for item in plan:
        queue.put_nowait(item)
    start = time.monotonic()

    async def sender() -> None:
        nonlocal accepted, rejected
        while not queue.empty():
            at, event = queue.get_nowait()
            await asyncio.sleep(max(0.0, start + at - time.monotonic()))
            body = _stamp(event, created)
            t0 = time.perf_counter()
            async with http.post(f"{base}/webhooks/pagerduty", data=body, headers={
                    "Content-Type": "application/json",
                    "X-PagerDuty-Signature": sign(SECRET, body)}) as resp:
                await resp.read()
                latencies.append((time.perf_counter() - t0) * 1000)
                if resp.status < 300:
                    accepted += 1
                else:
                    rejected += 1

    await asyncio.gather(*(sender() for _ in range(20)))
    return {"latencies": latencies, "accepted": accepted, "rejected": rejected,
            "seconds": max(0.001, time.monotonic() - start)}


async def _figures(db: Database) -> dict:
    async with db.read() as conn:
        # Grouped by the selected expression itself: PostgreSQL refuses a GROUP BY expression
        # that the select list only uses a column of.
        is_root = incidents.c.parent_id.is_(None).label("is_root")
        rows = (await conn.execute(select(is_root, incidents.c.link_kind, func.count())
                                   .group_by(is_root, incidents.c.link_kind))).all()
        failed = (await conn.execute(select(func.count()).select_from(outbox)
                                     .where(outbox.c.status == "failed"))).scalar_one()
    await db.close()
    roots = sum(n for _, kind, n in rows if kind is None)
    by_kind = {kind: n for _, kind, n in rows if kind}
    return {"incidents": sum(n for *_, n in rows), "roots": roots,
            "links": sum(by_kind.values()), "duplicates": by_kind.get("duplicate", 0),
            "cascades": by_kind.get("cascade", 0), "jobs_failed": failed}


def _free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

