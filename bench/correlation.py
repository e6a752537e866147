"""Correlation benchmark.

    python bench/correlation.py --incidents 1000000 [--database-url URL] [--decisions 1000]
    python bench/correlation.py --storm [--events 5000] [--seconds 60] [--database-url URL]
    python bench/correlation.py --drain [--events 5000] [--incidents 100000] [--database-url URL]
    python bench/correlation.py --storm --maintenance [--events 5000] [--seconds 60]

Default mode: fills a fresh database with N incidents (a year of history over 200 services with a
layered dependency graph), then times the correlation decision (duplicate + cascade look-ups) for
new incidents, and the whole correlation job (decision, links, commit). Storm mode: see
bench/storm.py; drain mode (the worker's decisions per second): see bench/drain.py. The last
line printed is one JSON object with the figures.
"""
from __future__ import annotations

import argparse
import gc
import json
import random
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.shop import bench_database, fill_history, load_shop, percentile, run, utcnow  # noqa: E402
from handlers.context import Context  # noqa: E402
from handlers.effects.registry import run_local  # noqa: E402
from handlers.incident.correlation import decide, prepare as prepare_correlation  # noqa: E402
from incidents.fingerprint import title_fingerprint  # noqa: E402
from storage import incidents as store  # noqa: E402
from storage.db import Database  # noqa: E402
from storage.outbox import Job  # noqa: E402

TITLES = ("{s}: HTTP 5xx error rate {n}% on POST /v1/{s}", "{s}: p99 latency {n}00 ms",
          "{s}: {n}/6 pods ready, health checks failing")


async def decisions(args: argparse.Namespace) -> dict:
    catalog = load_shop(200)
    async with bench_database(args.database_url, "firebell_bench_corr") as url:
        db = Database(url)
        await db.migrate()
        now = utcnow()
        started = time.perf_counter()
        await fill_history(db, catalog, args.incidents, now=now)
        fill_s = time.perf_counter() - started
        ctx = Context(db=db, catalog=catalog)
        await prepare_correlation(ctx)  # as app.py does at start-up
        gc.collect()
        gc.freeze()  # as app.py does after start-up: what is alive now is not garbage
        decide_ms, job_ms, linked = [], [], 0
        rng = random.Random(3)
        names = list(catalog.services)
        for n in range(args.decisions):
            # Each new incident is decided in a transaction that is then rolled back, so the
            # history stays as filled (the open set does not grow with the benchmark).
            try:
                async with db.write() as conn:
                    incident = await _new_incident(conn, catalog, rng, rng.choice(names), now)
                    t0 = time.perf_counter()
                    link = await decide(ctx, conn, incident)
                    decide_ms.append((time.perf_counter() - t0) * 1000)
                    linked += link is not None
                    if n % 10 == 0:  # the whole job (decide, link or announce) on a sample
                        t0 = time.perf_counter()
                        await run_local(ctx, conn, Job(0, "correlate", incident.id, {}, 1, None))
                        job_ms.append((time.perf_counter() - t0) * 1000)
                    raise _RollBack
            except _RollBack:
                pass
        await db.close()
    return {"database": db.dialect, "incidents": args.incidents, "decisions": args.decisions,
            "linked": linked, "p50_ms": round(percentile(decide_ms, 50), 3),
            "p99_ms": round(percentile(decide_ms, 99), 3),
            "job_p50_ms": round(percentile(job_ms, 50), 3),
            "job_p99_ms": round(percentile(job_ms, 99), 3), "fill_seconds": round(fill_s, 1)}


class _RollBack(Exception):
    pass


async def _new_incident(conn, catalog, rng, service, now):
    title = rng.choice(TITLES).format(s=service, n=rng.randint(1, 99))
    when = now + timedelta(seconds=rng.uniform(-600, 0))
    return await store.insert(conn, {
        "source": "pagerduty", "external_id": f"bench-{rng.random()}", "title": title,
        "service": service, "team": catalog.services[service].owner_team,
        "level": catalog.levels.level_for(title), "status": "open", "triggered_at": when,
        "fingerprint": title_fingerprint(service, title),
        "duplicate_window_until": when + timedelta(minutes=30)}, now)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--incidents", type=int, default=100_000)
    parser.add_argument("--decisions", type=int, default=1000)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--storm", action="store_true", help="play an alert storm over HTTP")
    parser.add_argument("--drain", action="store_true",
                        help="time the worker deciding a storm's worth of new incidents")
    parser.add_argument("--events", type=int, default=5000, help="storm, drain: events")
    parser.add_argument("--seconds", type=float, default=60, help="storm: over how long")
    parser.add_argument("--maintenance", action="store_true",
                        help="storm: every team in a maintenance window while it plays, then "
                             "the windows end (figures of both)")
    args = parser.parse_args()
    if args.storm:
        from bench.storm import storm
        result = run(storm(args))
    elif args.drain:
        from bench.drain import drain
        result = run(drain(args))
    else:
        result = run(decisions(args))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
