"""The webhook batch's inserts run as pre-rendered SQL on the driver (storage/bulk.py). What they
store must be exactly what SQLAlchemy Core stores for the same values (the same datetime text on
SQLite, JSON, booleans, NULLs, column defaults), or reads, comparisons and sorting would drift."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import select, text

from storage.bulk import BulkInsert
from storage.db import Database
from storage.schema import incidents, outbox, timeline

AT = datetime(2026, 3, 14, 14, 0, 5, 123456, tzinfo=timezone.utc)


def _incident(external_id: str, **extra) -> dict:
    return {"source": "pagerduty", "external_id": external_id, "title": "checkout: 5xx",
            "service": "checkout-api", "team": "payments", "level": "SEV2", "status": "open",
            "triggered_at": AT, "fingerprint": "fp", "details": {"labels": {"a": "é"}},
            "assignees": [], "version": 1, "created_at": AT, "updated_at": AT,
            "duplicate_window_until": AT + timedelta(minutes=5), "correlated": False,
            **extra}


async def _raw(conn, table, where) -> dict:
    """The stored values as the database holds them (no type processing on the way back)."""
    columns = ", ".join(c.name for c in table.columns if c.name != "id")
    row = (await conn.exec_driver_sql(
        f"SELECT {columns} FROM {table.name} WHERE {where}")).mappings().one()
    return dict(row)


async def test_bulk_insert_stores_what_core_stores(database_url):
    db = Database(database_url)
    await db.migrate()
    try:
        async with db.write() as conn:
            await conn.execute(incidents.insert(), [_incident("CORE")])
            returned = await BulkInsert(
                incidents, conflict=("source", "external_id"),
                returning=("source", "external_id", "id")).run(conn, [_incident("BULK")])
            assert [(r[0], r[1]) for r in returned] == [("pagerduty", "BULK")]
            core = await _raw(conn, incidents, "external_id = 'CORE'")
            bulk = await _raw(conn, incidents, "external_id = 'BULK'")
            # postmortem_required and no_auto_link were left out: their defaults, as with Core
            assert {**bulk, "external_id": "CORE"} == core
            assert core["no_auto_link"] in (False, 0) and core["postmortem_required"] in (False, 0)

            new_id = returned[0][2]
            entry = {"incident_id": new_id, "at": AT, "kind": "note", "text": "t", "via": "teams",
                     "actor": None, "data": None}
            await conn.execute(timeline.insert(), [entry, {**entry, "data": {"x": 1}}])
            await BulkInsert(timeline).run(conn, [{**entry, "text": "b"},
                                                  {**entry, "text": "b", "data": {"x": 1}}])
            rows = (await conn.execute(select(timeline.c.text, timeline.c.data, timeline.c.at)
                                       .order_by(timeline.c.id))).all()
            assert [(r.data, r.at) for r in rows[:2]] == [(r.data, r.at) for r in rows[2:]]
            assert rows[0].at == AT
    finally:
        await db.close()


async def test_bulk_insert_skips_conflicts(database_url):
    """ON CONFLICT DO NOTHING with and without a target: only new rows come back or go in."""
    db = Database(database_url)
    await db.migrate()
    try:
        job = {"kind": "correlate", "incident_id": 1, "payload": {}, "status": "pending",
               "coalesce_key": "correlate:1", "attempts": 0, "run_after": AT, "created_at": AT}
        enqueue = BulkInsert(outbox, conflict=())
        insert = BulkInsert(incidents, conflict=("source", "external_id"),
                            returning=("external_id",))
        async with db.write() as conn:
            assert await insert.run(conn, [_incident("A")]) == [("A",)]
            assert sorted(await insert.run(conn, [_incident("A"), _incident("B")])) == [("B",)]
            await enqueue.run(conn, [job, job, {**job, "coalesce_key": "correlate:2"}])
            pending = (await conn.execute(text(
                "SELECT coalesce_key FROM outbox ORDER BY coalesce_key"))).scalars().all()
            assert pending == ["correlate:1", "correlate:2"]
            assert await insert.run(conn, []) == []
    finally:
        await db.close()
