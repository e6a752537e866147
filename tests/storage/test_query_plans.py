"""The statements every webhook batch and every correlation decision run find their rows through
indexes, never by scanning the incidents table: a scan costs nothing in a test and grows with
every incident ever stored (SQLite 3.40 scanned for a row-value IN over (source, external_id),
and a window function ranked every open symptom of a storm on each decision). SQLite's plans
depend on nothing but the schema, so they are checked there; PostgreSQL's depend on statistics."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import event

from storage import correlation as queries
from storage import incidents as store

AT = datetime(2026, 3, 14, 14, 0, tzinfo=timezone.utc)
# A plan step "SCAN incidents" (or one of its aliases) reads the whole table or a whole index.
TABLE_SCAN = re.compile(r"^SCAN (incidents|first_on_service)\b")


async def _plans(db, work) -> list[tuple[str, list[str]]]:
    captured: list[tuple[str, object]] = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        if not statement.startswith("EXPLAIN"):
            captured.append((statement, parameters))

    event.listen(db.engine.sync_engine, "before_cursor_execute", capture)
    try:
        async with db.write() as conn:
            await work(conn)
            plans = []
            for statement, parameters in captured:
                if statement.lstrip().upper().startswith(("SELECT", "UPDATE", "WITH")):
                    rows = await conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement,
                                                      parameters)
                    plans.append((statement, [r[-1] for r in rows]))
            return plans
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", capture)


async def test_webhook_and_correlation_lookups_never_scan_incidents(harness):
    db = harness.ctx.db
    if not db.is_sqlite:
        pytest.skip("SQLite's query plans; PostgreSQL's depend on table statistics")

    async def work(conn):
        await store.by_external_many(conn, [("pagerduty", "P1"), ("pagerduty", "P2"),
                                            ("alertmanager", "A1")], lock=True)
        await queries.correlation_candidates(
            conn, fingerprint="f", services=["payment-gateway", "order-db"],
            since=AT - timedelta(minutes=15), until=AT + timedelta(minutes=5), exclude=1, at=AT)
        await queries.adoptable_downstream(
            conn, ["checkout-api"], since=AT - timedelta(minutes=5),
            until=AT + timedelta(minutes=15), exclude=1, root=1, at=AT)
        await store.children(conn, 1)

    plans = await _plans(db, work)
    assert len(plans) >= 5
    for statement, steps in plans:
        assert not [s for s in steps if TABLE_SCAN.match(s)], (steps, statement[:400])


async def test_a_webhook_batch_finds_its_pages_without_scanning(harness):
    """Every batch of PagerDuty events asks whether any is about a page sent from Teams."""
    from storage import pages
    db = harness.ctx.db
    if not db.is_sqlite:
        pytest.skip("SQLite's query plans; PostgreSQL's depend on table statistics")

    async def work(conn):
        await pages.matching(conn, ["P1", "P2"], ["firebell-page-1", "k2"], lock=True)

    (plan,) = await _plans(db, work)
    assert not [s for s in plan[1] if s.startswith("SCAN")], plan
