"""Ingestion benchmark: signed PagerDuty deliveries per second into a running Firebell.

    python bench/ingest.py [--database-url URL] [--seconds 30] [--senders 20] [--drain-limit 120]

Starts Firebell as its own process (its outbox worker running too, as in production), then 20
concurrent senders post signed V3 `incident.triggered` deliveries for --seconds, each a new
incident, and measure every answer. In the same run, the same load goes to a bare aiohttp
handler that does one INSERT per request into the same kind of database: the ceiling.
The last line printed is one JSON object: events_per_s, p50_ms, p99_ms, rss_mb (peak of the
Firebell process), correlation_backlog, correlation_drained_s and correlation_after_load_per_s
(decisions still waiting when the load stopped, how long the worker took to make them all -- null
if not within --drain-limit -- and its pace meanwhile), ceiling_events_per_s, ratio.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.shop import bench_database, drain_outbox, percentile  # noqa: E402
from handlers.ingest.signature import sign  # noqa: E402

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


async def load(url: str, seconds: float, senders: int) -> dict:
    latencies: list[float] = []
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
                async with http.post(url, data=body, headers=headers) as resp:
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
    port, bare_port = 3991, 3992
    async with bench_database(args.database_url, "firebell_bench_ingest") as url, \
            bench_database(args.database_url, "firebell_bench_bare") as bare_url:
        logs = Path(os.environ.get("TMPDIR", "/tmp"))
        app = start([sys.executable, os.environ.get("FIREBELL_APP", str(ROOT / "app.py"))],
                    {"PORT": str(port), "HOST": "127.0.0.1", "DATABASE_URL": url,
                     "PAGERDUTY_WEBHOOK_SECRETS": SECRET, "LOG_LEVEL": "WARNING",
                     "FIREBELL_WORKER": os.environ.get("FIREBELL_WORKER", "on")},
                    logs / "firebell-bench-ingest.log")
        try:
            await wait_ready(f"http://127.0.0.1:{port}/readyz", app)
            firebell = await load(f"http://127.0.0.1:{port}/webhooks/pagerduty", args.seconds,
                                  args.senders)
            catch_up = await correlation_catch_up(
                url, limit=0 if os.environ.get("FIREBELL_WORKER") == "off" else args.drain_limit)
            rss = peak_rss_mb(app.pid)
        finally:
            stop(app)
        bare = start([sys.executable, str(ROOT / "bench" / "bare_ingest.py"), str(bare_port),
                      bare_url], {}, logs / "firebell-bench-bare.log")
        try:
            await wait_ready(f"http://127.0.0.1:{bare_port}/ready", bare)
            ceiling = await load(f"http://127.0.0.1:{bare_port}/ingest", args.seconds,
                                 args.senders)
        finally:
            stop(bare)
    return {"database": "postgresql" if args.database_url and "postgres" in args.database_url
            else "sqlite", "seconds": args.seconds, "senders": args.senders,
            "sent": firebell["sent"], "errors": firebell["errors"],
            "events_per_s": round(firebell["per_s"], 1), "p50_ms": round(firebell["p50"], 2),
            "p99_ms": round(firebell["p99"], 2), "rss_mb": round(rss, 1),
            **catch_up,
            "ceiling_events_per_s": round(ceiling["per_s"], 1),
            "ceiling_p99_ms": round(ceiling["p99"], 2),
            "ratio": round(firebell["per_s"] / max(ceiling["per_s"], 0.001), 2)}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--senders", type=int, default=20)
    parser.add_argument("--drain-limit", type=float, default=120,
                        help="how long to wait for the correlation backlog after the load")
    try:
        import uvloop  # the senders' event loop too: they share the machine with the server
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:
        pass
    print(json.dumps(asyncio.run(main(parser.parse_args()))))
