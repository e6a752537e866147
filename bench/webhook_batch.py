"""The webhook batch alone, in one process: `python bench/webhook_batch.py [--database-url URL]
[--batches 300] [--size 10]`.

No HTTP and no worker: rounds of --batches group-commit batches of --size new PagerDuty
deliveries each go through handlers/ingest/batch.py exactly as the door hands them over (signed
and parsed beforehand, outside the clock). Prints per round the milliseconds per batch, then one
JSON line: database, ms_per_batch (each of 3 rounds), median_ms_per_batch, statements_per_batch.
For an A/B, run it in each checkout in turn.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import event  # noqa: E402

from bench.ingest import delivery  # noqa: E402
from bench.shop import bench_database, load_shop  # noqa: E402
from handlers.context import Context  # noqa: E402
from handlers.ingest.batch import ingest_batch  # noqa: E402
from handlers.ingest.pagerduty import parse_pagerduty  # noqa: E402
from storage.db import Database  # noqa: E402

ROUNDS = 3


async def main(args) -> dict:
    async with bench_database(args.database_url, "firebell_bench_batch") as url:
        db = Database(url)
        try:
            await db.migrate()
            ctx = Context(db=db, catalog=load_shop(100))
            statements = [0]

            @event.listens_for(db.engine.sync_engine, "before_cursor_execute")
            def _seen(*_args) -> None:
                statements[0] += 1
            rounds, n = [], 0
            for _ in range(ROUNDS):
                batches = []
                for _ in range(args.batches):
                    batches.append([parse_pagerduty(delivery(n + i)[0], None).events
                                    for i in range(args.size)])
                    n += args.size
                statements[0] = 0
                started = time.perf_counter()
                for deliveries in batches:
                    async with db.write(urgent=True) as conn:
                        await ingest_batch(ctx, conn, deliveries)
                rounds.append((time.perf_counter() - started) / args.batches * 1000)
                print(f"{rounds[-1]:.2f} ms per batch of {args.size}")
        finally:
            await db.close()
    return {"database": db.dialect, "ms_per_batch": [round(r, 3) for r in rounds],
            "median_ms_per_batch": round(statistics.median(rounds), 3),
            "statements_per_batch": round(statements[0] / args.batches, 1)}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--batches", type=int, default=300)
    parser.add_argument("--size", type=int, default=10)
    print(json.dumps(asyncio.run(main(parser.parse_args()))))
