"""A batch of correlation decisions in one transaction (scheduler/worker.py, storage/batch_scope.py):
what a batch writes at its end is what one decision at a time would have written, and a job
that fails in a batch rolls back alone, on the run's database."""
from datetime import timedelta

from sqlalchemy import event, func, select

from handlers.effects import registry
from incidents.model import FIREBELL
from scheduler.worker import OutboxWorker
from storage import batch_scope, correlation, outbox
from storage import incidents as store
from storage import maintenance as windows
from storage import timeline
from storage.schema import card_messages
from storage.schema import incidents as incidents_table
from storage.schema import outbox as outbox_table
from storage.schema import timeline as timeline_table
from tests.incident.test_correlation import T0, _event


async def _backlog(h, count: int) -> None:
    """A root, then `count` repeats of one symptom, queued while the worker is stopped."""
    await h.deliver(_event(1, "payment-gateway", "payment-gateway down", 0))
    await h.settle()
    await h.firebell.worker.stop()
    for n in range(2, count + 2):
        await h.deliver(_event(n, "checkout-api", "checkout 5xx", 1 + n / 60))


async def _entries(h, incident_id: int) -> list[dict]:
    async with h.ctx.db.read() as conn:
        return await timeline.entries_with_ids(conn, incident_id)


def _decisions(h) -> float:
    return sum(sample.value for metric in h.ctx.metrics.correlations.collect()
               for sample in metric.samples if sample.name.endswith("_total"))


async def test_a_batch_writes_each_timeline_entry_once_and_in_order(harness):
    h = harness
    await _backlog(h, 12)
    h.firebell.worker.start()
    await h.settle()
    found = {i.id: i for i in await h.incidents()}
    assert (found[2].parent_id, found[2].link_kind) == (1, "cascade")
    assert all((found[n].parent_id, found[n].link_kind) == (2, "duplicate")
               for n in range(3, 14))
    for n in range(2, 14):
        kinds = [e["kind"] for e in await _entries(h, n)]
        assert kinds.count("linked") == 1, (n, kinds)
        assert kinds.index("triggered") < kinds.index("linked")
    # The first report of the symptom says, in arrival order, which repeats joined it.
    joined = [e["text"].split()[0] for e in await _entries(h, 2) if e["kind"] == "child_linked"]
    assert joined == [f"INC-{n}" for n in range(3, 14)]


async def test_a_job_that_fails_in_a_batch_rolls_back_alone(harness, caplog):
    """The batch runs without a savepoint per job; when one fails, the batch's transaction rolls
    back and runs again with one: the others' decisions are stored once (one timeline entry,
    one count in the metrics), the failing job waits for its retry."""
    h = harness
    await _backlog(h, 6)

    async def broken(ctx, conn, job):
        await timeline.note(conn, 2, kind="note", text="written by a job that then fails",
                            actor=FIREBELL, at=ctx.now())
        await store.update_fields(conn, await store.get(conn, 3),
                                  {"title": "written by a job that then fails"}, ctx.now())
        raise RuntimeError("this job always fails")

    registry.local_effect("test_broken")(broken)
    try:
        async with h.ctx.db.write() as conn:
            await outbox.enqueue(h.ctx.db, conn, "test_broken", now=h.ctx.now(), incident_id=2)
        counted = _decisions(h)
        worker = OutboxWorker(h.ctx, h.firebell.clients)
        caplog.set_level("INFO", logger="firebell.outbox")
        while await worker.run_once():
            pass
        assert "running the batch again" in caplog.text   # it failed among the decisions
        async with h.ctx.db.read() as conn:
            failing = (await conn.execute(select(outbox_table).where(
                outbox_table.c.kind == "test_broken"))).mappings().one()
        assert failing["status"] == "pending" and failing["attempts"] == 1
        assert "this job always fails" in failing["last_error"]
        assert failing["run_after"] > h.ctx.now()
        found = {i.id: i for i in await h.incidents()}
        assert all(found[n].correlated for n in range(2, 8))
        assert found[3].title == "checkout 5xx"   # the failing job's update rolled back
        assert _decisions(h) - counted == 6   # each decision counted once, not once per try
        for n in range(2, 8):
            kinds = [e["kind"] for e in await _entries(h, n)]
            assert kinds.count("linked") == 1, (n, kinds)
            assert "note" not in kinds
        await worker.stop()
    finally:
        registry.EFFECTS.pop("test_broken", None)


async def test_a_batch_scope_reads_what_it_has_written(harness):
    """Inside a scope a timeline read sees the pending entries, and a maintenance window stored
    in the scope is on at once; outside a scope nothing is deferred."""
    h = harness
    await h.deliver(_event(1, "payment-gateway", "payment-gateway down", 0))
    await h.settle()
    async with h.ctx.db.write() as conn:
        with batch_scope.batch(conn):
            before = await windows.on_now(conn, h.ctx.now())
            await timeline.note(conn, 1, kind="note", text="pending", actor=FIREBELL,
                                at=h.ctx.now())
            count = (await conn.execute(select(func.count()).select_from(timeline_table)
                                        .where(timeline_table.c.text == "pending"))
                     ).scalar_one()
            assert count == 0  # still pending
            assert [e["text"] for e in await timeline.entries(conn, 1)][-1] == "pending"
            window = await windows.insert(conn, target_kind="team", target="payments",
                                          starts_at=T0.replace(year=2020), ends_at=T0.replace(
                                              year=2099), reason="test", created_by="test")
            assert [w["id"] for w in await windows.on_now(conn, h.ctx.now())] == \
                [w["id"] for w in before] + [window["id"]]
    async with h.ctx.db.write() as conn:
        await timeline.note(conn, 1, kind="note", text="at once", actor=FIREBELL,
                            at=h.ctx.now())
        count = (await conn.execute(select(func.count()).select_from(timeline_table)
                                    .where(timeline_table.c.text == "at once"))).scalar_one()
        assert count == 1


def _statements(h) -> list[str]:
    """Every statement sent on the run's database from now on (a listener, removed at the end
    of the test with the engine)."""
    seen: list[str] = []

    @event.listens_for(h.ctx.db.engine.sync_engine, "before_cursor_execute")
    def _seen(_conn, _cursor, statement, *_args) -> None:
        seen.append(" ".join(statement.split()))
    return seen


async def test_a_batch_of_repeats_looks_up_their_twin_once(harness):
    """A symptom and its eleven repeats: each batch looks the twin up once (not once per
    repeat), writes the first report's duplicate window once (to its last repeat's), marks
    its cards behind once with one update queued per card, and every repeat hangs under it
    as one decision at a time would hang it. (On SQLite the twelve make one batch; a batch
    on PostgreSQL holds its row locks for 50 ms at most, so there they may take a few.)"""
    h = harness
    await _backlog(h, 12)
    seen = _statements(h)
    worker = OutboxWorker(h.ctx, h.firebell.clients)
    batches, decided = 0, 0
    while ran := await worker._run_local_batch():
        batches, decided = batches + 1, decided + ran
    assert decided == 12   # the first report, then its 11 repeats
    twin_lookups = [s for s in seen if s.startswith("WITH twins")]
    windows = [s for s in seen if s.startswith("UPDATE incidents SET duplicate_window_until")]
    marked = [s for s in seen if s.startswith("UPDATE card_messages SET wanted_rev")]
    # The first report's own look-up (no twin: a cascade child), then one per batch.
    assert len(twin_lookups) <= batches + 1 and len(windows) <= batches
    assert len(marked) <= 2 * batches   # INC-2's cards, and INC-1's (its child)
    if h.ctx.db.is_sqlite:
        assert (batches, len(twin_lookups), len(windows)) == (1, 2, 1)
    found = {i.id: i for i in await h.incidents()}
    assert all((found[n].parent_id, found[n].link_kind) == (2, "duplicate")
               for n in range(3, 14))
    last = T0 + timedelta(minutes=1 + 13 / 60)
    assert found[2].duplicate_window_until == last + h.ctx.policy.duplicate_window
    async with h.ctx.db.read() as conn:
        updates = (await conn.execute(select(outbox_table.c.conversation_id).where(
            outbox_table.c.kind == "update_card", outbox_table.c.incident_id == 2,
            outbox_table.c.status == "pending"))).scalars().all()
        cards = (await conn.execute(select(card_messages.c.conversation_id).where(
            card_messages.c.incident_id == 2))).scalars().all()
    assert len(updates) == len(set(updates)) <= len(cards)
    await worker.stop()


async def test_a_twin_remembered_in_a_batch_is_forgotten_when_written(harness):
    """The batch's remembered twin is used only while the look-up would still find it: not
    once it is written (here resolved before the next repeat started), and its window counts
    the batch's unwritten extensions until they are flushed."""
    h = harness
    await h.deliver(_event(1, "payment-gateway", "payment-gateway down", 0))
    await h.settle()
    twin = (await h.incidents())[0]
    seen = _statements(h)

    async def lookup(conn, exclude: int, at):
        found, _ = await correlation.correlation_candidates(
            conn, fingerprint=twin.fingerprint, services=[], since=at, until=at,
            exclude=exclude, at=at)
        return found.id if found else None

    after = twin.duplicate_window_until + timedelta(minutes=5)
    async with h.ctx.db.write() as conn:
        with batch_scope.batch(conn):
            assert await lookup(conn, 100, T0 + timedelta(minutes=1)) == twin.id
            assert await lookup(conn, 101, T0 + timedelta(minutes=2)) == twin.id
            assert sum(s.startswith("WITH twins") for s in seen) == 1   # the second remembered
            assert await lookup(conn, 102, after) is None   # its window has closed
            await correlation.extend_duplicate_window(conn, twin.id, after)
            assert not any(s.startswith("UPDATE incidents SET duplicate") for s in seen)
            looked_up = sum(s.startswith("WITH twins") for s in seen)
            assert await lookup(conn, 103, after) == twin.id   # the pending extension counts
            assert sum(s.startswith("WITH twins") for s in seen) == looked_up
            await correlation.flush_windows(conn)
            assert sum(s.startswith("UPDATE incidents SET duplicate") for s in seen) == 1
            assert (await store.get(conn, twin.id)).duplicate_window_until == after
            resolved_at = T0 + timedelta(minutes=3)
            await store.update_fields(conn, await store.get(conn, twin.id),
                                      {"status": "resolved", "resolved_at": resolved_at},
                                      h.ctx.now())
            assert await lookup(conn, 104, T0 + timedelta(minutes=4)) is None
            assert sum(s.startswith("WITH twins") for s in seen) == looked_up + 1


async def test_an_update_in_a_batch_is_written_before_the_next_statement(harness):
    """In a batch's scope an incident update waits for the next statement, whatever it is,
    and is written just before it: a read, a join or a trigger never sees the old row."""
    h = harness
    await h.deliver(_event(1, "payment-gateway", "payment-gateway down", 0))
    await h.settle()
    seen = _statements(h)
    async with h.ctx.db.write() as conn:
        with batch_scope.batch(conn):
            incident = await store.get(conn, 1)
            await store.update_fields(conn, incident, {"title": "renamed"}, h.ctx.now())
            await store.update_fields(conn, await store.get(conn, 1), {"level": "minor"},
                                      h.ctx.now())
            updates = [s for s in seen if s.startswith("UPDATE incidents")]
            assert len(updates) == 1   # the first, written before the second's read
            title = (await conn.execute(select(incidents_table.c.title, incidents_table.c.level)
                                        .where(incidents_table.c.id == 1))).one()
            assert tuple(title) == ("renamed", "minor")
            await store.update_fields(conn, await store.get(conn, 1), {"title": "at the end"},
                                      h.ctx.now())
            await store.write_pending(conn)
    found = (await h.incidents())[0]
    assert (found.title, found.level, found.version) == ("at the end", "minor",
                                                         incident.version + 3)
