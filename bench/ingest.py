"""Ingestion benchmark: signed PagerDuty deliveries per second into a running Firebell.

    python bench/ingest.py [--database-url URL] [--seconds 30] [--senders 20] [--drain-limit 120]
                           [--replicas N]

Starts Firebell as its own process (its outbox worker running too, as in production; with
--replicas N, N processes on the one database, which must then be PostgreSQL), then 20
concurrent senders post signed V3 `incident.triggered` deliveries for --seconds, each a new
incident, round-robin over the replicas, and measure every answer. A stand-in Bot Connector
takes the incident cards (a default channel is subscribed first). In the same run, the same load
goes to `bench/bare_ingest.py`: aiohttp and the database's own driver (stdlib sqlite3 or
asyncpg), one INSERT + COMMIT per request: the ceiling.
The last line printed is one JSON object: events_per_s, p50_ms, p99_ms, rss_mb (peak of the
Firebell process; with replicas, the largest), correlation_backlog, correlation_drained_s and
correlation_after_load_per_s (decisions still waiting when the load stopped, how long the
workers took to make them all -- null if not within --drain-limit -- and their pace meanwhile),
ceiling_events_per_s, ceiling_p99_ms, ratio, replicas, and the after-run checks:
deliveries_stored (accepted deliveries found stored), stored_twice (deliveries stored more than
once), cards_posted (card posts the stand-in Bot Connector received), cards_posted_twice (posts
for an incident card that already had one).
"""
from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
from aiohttp import web
from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.shop import (LEAD, bench_database, drain_outbox, percentile,  # noqa: E402
                        subscribe_channels)
from handlers.ingest.signature import sign  # noqa: E402
from storage.db import Database  # noqa: E402
from storage.schema import card_messages, inbound_events, incidents  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SECRET = "bench-secret"
SERVICES = ("checkout-api", "payment-gateway", "order-db", "search-service", "ledger-db")


def delivery(n: int) -> tuple[bytes, dict[str, str]]:
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    service = SERVICES[n % len(SERVICES)]
    body = json.dumps({"event": {
        "id": f"01BENCH{uuid.uuid4().hex}", "event_type": "incident.triggered",
        "resource_type": "incident", "occurred_at": now, "agent": None, "client": None,
        "data": {"id": f"PB{n:08d}{uuid.uuid4().hex[:6]}", "type": "incident", "number": n,
                 "title": f"{service}: synthetic alert {n} ({uuid.uuid4().hex[:8]})",
                 "status": "triggered", "created_at": now, "urgency": "high",
                 "service": {"id": "PX", "summary": service, "type": "service_reference"}}}},
        separators=(",", ":")).encode()
    return body, {"Content-Type": "application/json", "X-PagerDuty-Signature": sign(SECRET, body),
                  "X-Webhook-Id": str(uuid.uuid4())}


# Deliveries are built and signed before the clock starts (enough for this rate; more are
# built on the fly): the senders share these two cores with the server, and the benchmark
# measures the server, not the senders' JSON and HMAC work.
PREPARED_PER_S = 2500


async def load(urls: list[str], seconds: float, senders: int) -> dict:
    """`senders` concurrent senders for `seconds`, each request to the next of `urls` in turn."""
    latencies: list[float] = []
    turn = itertools.cycle(urls)
    errors = 0
    counter = iter(range(10**9))
    prepared = [delivery(next(counter)) for _ in range(int(seconds * PREPARED_PER_S))]
    prepared.reverse()
    deadline = time.monotonic() + seconds
    connector = aiohttp.TCPConnector(limit=senders)
    async with aiohttp.ClientSession(connector=connector) as http:
        async def sender() -> None:
            nonlocal errors
            while time.monotonic() < deadline:
                body, headers = prepared.pop() if prepared else delivery(next(counter))
                t0 = time.perf_counter()
                async with http.post(next(turn), data=body, headers=headers) as resp:
                    await resp.read()
                    ok = resp.status < 300
                latencies.append((time.perf_counter() - t0) * 1000)
                errors += not ok
        started = time.monotonic()
        await asyncio.gather(*(sender() for _ in range(senders)))
        elapsed = time.monotonic() - started
    return {"sent": len(latencies), "errors": errors, "per_s": (len(latencies) - errors) / elapsed,
            "p50": percentile(latencies, 50), "p99": percentile(latencies, 99)}


def start(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(argv, env={**os.environ, **env}, stdout=open(log, "w"),
                            stderr=subprocess.STDOUT, start_new_session=True)


async def wait_ready(url: str, proc: subprocess.Popen) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(300):
            if proc.poll() is not None:
                raise SystemExit(f"{url}: process exited during start-up")
            try:
                async with http.get(url) as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise SystemExit(f"{url} never became ready")


async def correlation_catch_up(url: str, limit: float) -> dict:
    """Correlation decisions still waiting when the load stopped (the worker leaves the CPU to
    a saturated door), how long the worker then took to make them all (None: not within
    `limit` seconds), and its pace meanwhile."""
    drain = await drain_outbox(url, limit=limit, kinds=["correlate"])
    return {"correlation_backlog": drain.waiting, "correlation_drained_s": drain.drained_s,
            "correlation_after_load_per_s": round((drain.waiting - drain.left) / drain.seconds, 1)
            if drain.seconds > 0.5 else None}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def stop(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


async def main(args: argparse.Namespace) -> dict:
    if args.replicas > 1 and not (args.database_url or "").startswith("postgres"):
        raise SystemExit("--replicas needs --database-url postgresql://...: replicas share one "
                         "PostgreSQL")
    # Free ports, not fixed ones: other benchmarks may be running on this machine.
    ports, bare_port = [free_port() for _ in range(args.replicas)], free_port()
    connector = StandInConnector()
    async with bench_database(args.database_url, "firebell_bench_ingest") as url, \
            bench_database(args.database_url, "firebell_bench_bare") as bare_url, \
            connector.running() as connector_url:
        logs = Path(os.environ.get("TMPDIR", "/tmp"))
        apps = [start([sys.executable, os.environ.get("FIREBELL_APP", str(ROOT / "app.py"))],
                      {"PORT": str(port), "HOST": "127.0.0.1", "DATABASE_URL": url,
                       "PAGERDUTY_WEBHOOK_SECRETS": SECRET, "LOG_LEVEL": "WARNING",
                       "MicrosoftAppId": "", "FIREBELL_ADMINS": LEAD["email"],
                       "FIREBELL_WORKER": os.environ.get("FIREBELL_WORKER", "on")},
                      logs / f"firebell-bench-ingest-{port}.log") for port in ports]
        try:
            for port, app in zip(ports, apps):  # one at a time: they migrate one at a time
                await wait_ready(f"http://127.0.0.1:{port}/readyz", app)
            worker_on = os.environ.get("FIREBELL_WORKER", "on") != "off"
            if worker_on:  # (subscribing needs the worker: it fetches the roster)
                await subscribe_channels(f"http://127.0.0.1:{ports[0]}", connector_url, url,
                                         ["default"])
            connector.card_posts.clear()
            firebell = await load([f"http://127.0.0.1:{p}/webhooks/pagerduty" for p in ports],
                                  args.seconds, args.senders)
            catch_up = await correlation_catch_up(
                url, limit=args.drain_limit if worker_on else 0)
            rss = max(peak_rss_mb(app.pid) for app in apps)
        finally:
            for app in apps:
                stop(app)
        checks = await after_run(url, firebell["sent"] - firebell["errors"], connector)
        bare = start([sys.executable, str(ROOT / "bench" / "bare_ingest.py"), str(bare_port),
                      bare_url], {}, logs / "firebell-bench-bare.log")
        try:
            await wait_ready(f"http://127.0.0.1:{bare_port}/ready", bare)
            ceiling = await load([f"http://127.0.0.1:{bare_port}/ingest"], args.seconds,
                                 args.senders)
        finally:
            stop(bare)
    return {"database": "postgresql" if args.database_url and "postgres" in args.database_url
            else "sqlite", "replicas": args.replicas, "seconds": args.seconds,
            "senders": args.senders, "sent": firebell["sent"], "errors": firebell["errors"],
            "events_per_s": round(firebell["per_s"], 1), "p50_ms": round(firebell["p50"], 2),
            "p99_ms": round(firebell["p99"], 2), "rss_mb": round(rss, 1),
            **catch_up, **checks,
            "ceiling_events_per_s": round(ceiling["per_s"], 1),
            "ceiling_p99_ms": round(ceiling["p99"], 2),
            "ratio": round(firebell["per_s"] / max(ceiling["per_s"], 0.001), 2)}


class StandInConnector:
    """Takes every post and update as Teams would (no rate limits: Firebell paces itself per
    conversation) and remembers the id it gave each post, to check no card was posted twice."""

    def __init__(self) -> None:
        self.card_posts: list[str] = []
        self._ids = itertools.count(1_900_000_000_000)

    @asynccontextmanager
    async def running(self):
        app = web.Application()
        app.router.add_post("/v3/conversations/{cid}/activities", self._post)
        app.router.add_post("/v3/conversations/{cid}/activities/{aid}", self._post)
        app.router.add_put("/v3/conversations/{cid}/activities/{aid}", self._update)
        app.router.add_get("/v3/conversations/{cid}/members", self._members)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        try:
            yield f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
        finally:
            await runner.cleanup()

    async def _post(self, request: web.Request) -> web.Response:
        activity = await request.json()
        activity_id = str(next(self._ids))
        if activity.get("attachments"):
            self.card_posts.append(activity_id)
        return web.json_response({"id": activity_id})

    async def _update(self, request: web.Request) -> web.Response:
        return web.json_response({"id": request.match_info["aid"]})

    async def _members(self, _request: web.Request) -> web.Response:
        return web.json_response([LEAD])


async def after_run(url: str, accepted: int, connector: StandInConnector) -> dict:
    """Every accepted delivery stored once (each is a new incident with its own id, so: as
    many incidents and remembered event ids as accepted deliveries, no incident twice), and
    every card post the connector took recorded as its incident's one card message (a second
    post of the same card would leave one post unrecorded)."""
    db = Database(url)
    try:
        async with db.read() as conn:
            stored = (await conn.execute(select(func.count()).select_from(incidents))).scalar_one()
            distinct = (await conn.execute(select(func.count(
                incidents.c.external_id.distinct())))).scalar_one()
            remembered = (await conn.execute(select(func.count()).select_from(inbound_events)
                                             .where(inbound_events.c.key.like("pd%")))).scalar_one()
            recorded = set((await conn.execute(select(card_messages.c.activity_id).where(
                card_messages.c.activity_id.is_not(None)))).scalars())
    finally:
        await db.close()
    return {"deliveries_accepted": accepted, "deliveries_stored": distinct,
            "events_remembered": remembered, "stored_twice": stored - distinct,
            "cards_posted": len(connector.card_posts),
            "cards_posted_twice": sum(1 for a in connector.card_posts if a not in recorded)}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--senders", type=int, default=20)
    parser.add_argument("--replicas", type=int, default=1,
                        help="Firebell processes on the one database (PostgreSQL for N > 1)")
    parser.add_argument("--drain-limit", type=float, default=120,
                        help="how long to wait for the correlation backlog after the load")
    try:
        import uvloop  # the senders' event loop too: they share the machine with the server
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:
        pass
    print(json.dumps(asyncio.run(main(parser.parse_args()))))
