"""How fast the outbox worker makes correlation decisions (`python bench/correlation.py --drain`).

In one process, without HTTP or senders: a fresh database with --incidents of history, then
--events storm deliveries (bench/storm.py's plan: roots, their symptoms, repeats,
acknowledgements) ingested through the webhook batch exactly as the door does, and then the
outbox worker's database-only batches run until every correlation decision is made. Printed:
waiting (correlation jobs queued), decisions (correlation jobs done: a late root's adoptions
come in further jobs), left, seconds, decisions_per_s, statements_per_decision (every statement sent to the
database while draining, claims and commits included, per decision), links (incidents linked
under another after it).
"""
from __future__ import annotations

import json
import time

from sqlalchemy import event, func, select

from bench.shop import bench_database, fill_history, load_shop, utcnow
from bench.storm import plan_storm
from handlers.context import Context
from handlers.effects.registry import Clients
from handlers.incident.correlation import prepare as prepare_correlation
from handlers.ingest.batch import ingest_batch
from handlers.ingest.pagerduty import parse_pagerduty
from scheduler.worker import OutboxWorker
from storage.db import Database
from storage.schema import incidents, outbox

BATCH = 50  # deliveries per group commit, as the door makes them under load


async def drain(args) -> dict:
    catalog = load_shop(100)
    async with bench_database(args.database_url, "firebell_bench_drain") as url:
        db = Database(url)
        try:
            await db.migrate()
            await fill_history(db, catalog, args.incidents, now=utcnow())
            ctx = Context(db=db, catalog=catalog)
            await prepare_correlation(ctx)
            await _ingest(ctx, plan_storm(catalog, args.events, seconds=60))
            statements = _count_statements(db)
            worker = OutboxWorker(ctx, Clients())
            waiting, done_before = await _waiting(db), await _done(db)
            started = time.perf_counter()
            while await worker._run_local_batch():
                pass
            seconds = time.perf_counter() - started
            left, made = await _waiting(db), await _done(db) - done_before
            async with db.read() as conn:
                links = (await conn.execute(select(func.count()).select_from(incidents).where(
                    incidents.c.parent_id.is_not(None)))).scalar_one()
        finally:
            await db.close()
    return {"database": db.dialect, "incidents": args.incidents, "events": args.events,
            "waiting": waiting, "decisions": made, "left": left, "seconds": round(seconds, 2),
            "decisions_per_s": round(made / max(seconds, 1e-9), 1),
            "statements_per_decision": round(statements[0] / max(made, 1), 1),
            "links": links}


async def _ingest(ctx: Context, plan) -> None:
    created: dict[str, str] = {}
    deliveries = []
    for _, body in plan:
        data = body["event"]["data"]
        now = utcnow().isoformat().replace("+00:00", "Z")
        body["event"]["occurred_at"] = now
        data["created_at"] = created.setdefault(data["id"], now)
        deliveries.append(parse_pagerduty(json.dumps(body).encode(), None).events)
    for i in range(0, len(deliveries), BATCH):
        async with ctx.db.write() as conn:
            await ingest_batch(ctx, conn, deliveries[i:i + BATCH])


async def _waiting(db: Database) -> int:
    async with db.read() as conn:
        return (await conn.execute(select(func.count()).select_from(outbox).where(
            outbox.c.kind == "correlate", outbox.c.status.in_(["pending", "running"])))
        ).scalar_one()


async def _done(db: Database) -> int:
    async with db.read() as conn:
        return (await conn.execute(select(func.count()).select_from(outbox).where(
            outbox.c.kind == "correlate", outbox.c.status == "done"))).scalar_one()


def _count_statements(db: Database) -> list[int]:
    count = [0]

    @event.listens_for(db.engine.sync_engine, "before_cursor_execute")
    def _seen(*_args) -> None:
        count[0] += 1
    return count
