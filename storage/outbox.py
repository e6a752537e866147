"""The outbox: every side effect is a row before it is a call.

A job is written in the same transaction as the change that implies it. Workers claim due jobs
(`FOR UPDATE SKIP LOCKED` on PostgreSQL, so replicas never take the same one; SQLite has one
writer anyway), run them, and record the outcome. A claim is a lease: a worker that dies mid-job
lets the lease lapse and another picks the job up. `once_key` makes a job unique forever (one
JIRA task per incident); `coalesce_key` makes it unique while pending (one card update queued
per card, however many changes arrive).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Sequence

from sqlalchemy import bindparam, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.bulk import BulkInsert
from storage.schema import conversation_sends as cs
from storage.schema import outbox as t

# A webhook batch's correlation jobs: rendered once, run on the driver (storage/bulk.py).
_ENQUEUE_MANY = BulkInsert(t, conflict=())

PENDING, RUNNING, DONE, FAILED, CANCELLED = "pending", "running", "done", "failed", "cancelled"

# Built once with bound parameters (every job ends here; see storage/incidents.py's _GET).
_COMPLETE = update(t).where(t.c.id == bindparam("job_id")).values(
    status=DONE, result=bindparam("result", type_=t.c.result.type),
    finished_at=bindparam("finished_at", type_=t.c.finished_at.type), claimed_until=None,
    last_error=None)


@dataclass(frozen=True)
class Job:
    id: int
    kind: str
    incident_id: int | None
    payload: dict[str, Any]
    attempts: int
    conversation_id: str | None
    last_error: str | None = None
    result: dict[str, Any] | None = None
    claimed_until: datetime | None = None  # the lease: after this, another worker may run it

    def lease_left(self, now: datetime, margin: float = 5.0) -> float:
        """Seconds this job is still surely ours (0 when unknown or nearly over)."""
        if self.claimed_until is None:
            return 0.0
        return max(0.0, (self.claimed_until - now).total_seconds() - margin)


@dataclass(frozen=True)
class TeamsLimits:
    """Microsoft's documented per-bot, per-conversation limits (Teams rate limiting: 7 per
    second, 8 per 2 s, 60 per 30 s, 1,800 per hour), less a margin: the budget is spent when a
    job is claimed but Teams counts on arrival (concurrent sends can bunch up), and replies to
    commands reach the conversation without going through the outbox. The short windows keep
    two sends of margin: with one, sends claimed in one window that arrived in the next gave
    8 in 2 s once in a storm (bench/correlation.py --storm --events 1500), which Teams
    throttles. The 30-second budget is what limits a busy conversation anyway."""
    per_second: int = 5
    per_2_seconds: int = 6
    per_30_seconds: int = 54
    per_hour: int = 1700


async def enqueue(db, conn: AsyncConnection, kind: str, *, now: datetime,
                  incident_id: int | None = None, payload: dict[str, Any] | None = None,
                  once_key: str | None = None, coalesce_key: str | None = None,
                  conversation_id: str | None = None, run_after: datetime | None = None) -> bool:
    """Add a job; False when an equal one exists (same once_key, or same coalesce_key pending)."""
    stmt = db.insert(t).values(
        kind=kind, incident_id=incident_id, payload=payload or {}, status=PENDING,
        once_key=once_key, coalesce_key=coalesce_key, conversation_id=conversation_id,
        attempts=0, run_after=run_after or now, created_at=now)
    result = await conn.execute(stmt.on_conflict_do_nothing())
    return result.rowcount == 1


async def enqueue_many(db, conn: AsyncConnection, jobs: list[dict[str, Any]],
                       now: datetime) -> None:
    """Several jobs in one statement (same rules as enqueue: equal ones are skipped)."""
    if not jobs:
        return
    defaults = {"payload": {}, "status": PENDING, "once_key": None, "coalesce_key": None,
                "conversation_id": None, "attempts": 0, "run_after": now, "created_at": now,
                "incident_id": None}
    await _ENQUEUE_MANY.run(conn, [{**defaults, **j} for j in jobs])


async def claim(db, conn: AsyncConnection, *, worker: str, now: datetime, lease: timedelta,
                limit: int, kinds: Sequence[str],
                limits: TeamsLimits = TeamsLimits()) -> list[Job]:
    """Take up to `limit` due jobs of these kinds. Jobs for a Teams conversation whose send
    budget is spent stay pending, moved to when the budget frees up."""
    rows = await _due(db, conn, now, limit, kinds)
    claimed = []
    for row in rows:
        if row["conversation_id"]:
            wait = await _spend_send_budget(db, conn, row["conversation_id"], now, limits)
            if wait is not None:
                # A lapsed lease's job may have a newer pending twin by now: merge into it.
                if row["status"] != RUNNING or not await _merge_into_pending_twin(
                        conn, row["id"], at=wait, attempts=row["attempts"]):
                    await conn.execute(update(t).where(t.c.id == row["id"])
                                       .values(status=PENDING, run_after=wait))
                continue
        claimed.append(Job(row["id"], row["kind"], row["incident_id"], row["payload"] or {},
                           row["attempts"] + 1, row["conversation_id"], row["last_error"],
                           row["result"], now + lease))
    if claimed:  # one statement for the whole claim
        await conn.execute(update(t).where(t.c.id.in_([j.id for j in claimed])).values(
            status=RUNNING, claimed_by=worker, claimed_until=now + lease,
            attempts=t.c.attempts + 1))
    return claimed


async def release(conn: AsyncConnection, jobs: Sequence[Job]) -> None:
    """Give claimed, unstarted jobs back (and their attempt) for the next claim."""
    if jobs:
        await conn.execute(update(t).where(t.c.id.in_([j.id for j in jobs])).values(
            status=PENDING, attempts=t.c.attempts - 1, claimed_by=None, claimed_until=None))


async def _due(db, conn: AsyncConnection, now: datetime, limit: int,
               kinds: Sequence[str]) -> list[dict[str, Any]]:
    """Due jobs, oldest first: pending ones whose time has come, and running ones whose
    worker's lease lapsed (it died). Two queries, each on an index, however long the queue."""
    rows: list[dict[str, Any]] = []
    for q in _due_statements(tuple(kinds), not db.is_sqlite):
        if len(rows) < limit:
            params = {"now": now, "room": limit - len(rows)}
            rows += [dict(r) for r in (await conn.execute(q, params)).mappings()]
    return rows


@functools.cache
def _due_statements(kinds: tuple[str, ...], lock: bool):
    """Built once per set of kinds (the worker claims several times a second in a storm)."""
    now = bindparam("now", type_=t.c.run_after.type)
    running = t.alias("running")
    busy_keys = select(running.c.coalesce_key).where(  # computed once, on a partial index
        running.c.status == RUNNING, running.c.coalesce_key.is_not(None),
        running.c.claimed_until >= now)
    free = or_(t.c.coalesce_key.is_(None), t.c.coalesce_key.not_in(busy_keys))
    pending = select(t).where(t.c.status == PENDING, t.c.kind.in_(kinds),
                              t.c.run_after <= now, free)
    lapsed = select(t).where(t.c.status == RUNNING, t.c.kind.in_(kinds),
                             t.c.claimed_until < now)
    statements = []
    for q in (lapsed, pending):
        q = q.order_by(t.c.run_after, t.c.id).limit(bindparam("room"))
        statements.append(q.with_for_update(skip_locked=True) if lock else q)
    return tuple(statements)


async def complete(conn: AsyncConnection, job: Job, *, now: datetime,
                   result: dict[str, Any] | None = None) -> None:
    await complete_many(conn, [(job, result)], now=now)


async def complete_many(conn: AsyncConnection, done: Sequence[tuple[Job, dict[str, Any] | None]],
                        *, now: datetime) -> None:
    """Several jobs done, in one executemany (a batch of correlation decisions ends here)."""
    if done:
        await conn.execute(_COMPLETE, [{"job_id": job.id, "result": result, "finished_at": now}
                                       for job, result in done])


async def retry_later(conn: AsyncConnection, job: Job, *, error: str, at: datetime,
                      result: dict[str, Any] | None = None) -> None:
    values = dict(status=PENDING, run_after=at, last_error=error[:2000], claimed_until=None)
    if result is not None:
        values["result"] = result  # e.g. an outside id learned before the failure
    if await _merge_into_pending_twin(conn, job.id, at=at, attempts=job.attempts, error=error):
        return
    await conn.execute(update(t).where(t.c.id == job.id).values(**values))


async def _merge_into_pending_twin(conn: AsyncConnection, job_id: int, *, at: datetime,
                                   attempts: int, error: str | None = None) -> bool:
    """A coalesced job going back to the queue while a newer one with its key is already
    pending (a change arrived while it ran): only one may be pending, and the newer one does
    the same work (it renders from the state when it runs). So this one ends, and the newer
    one inherits its wait, its attempts and its error. False when there is no such twin."""
    key = select(t.c.coalesce_key).where(t.c.id == job_id).scalar_subquery()
    twin = (await conn.execute(select(t.c.id, t.c.run_after, t.c.attempts).where(
        t.c.coalesce_key == key, t.c.status == PENDING, t.c.id != job_id))).first()
    if twin is None:
        return False
    inherit: dict[str, Any] = dict(run_after=max(twin.run_after, at),
                                   attempts=max(twin.attempts, attempts))
    if error is not None:
        inherit["last_error"] = error[:2000]
    await conn.execute(update(t).where(t.c.id == twin.id).values(**inherit))
    await conn.execute(update(t).where(t.c.id == job_id).values(
        status=CANCELLED, claimed_until=None,
        last_error=f"superseded by job {twin.id}" + (f" after: {error}"[:1900] if error else "")))
    return True


async def park(conn: AsyncConnection, job: Job, *, error: str, now: datetime) -> None:
    await conn.execute(update(t).where(t.c.id == job.id).values(
        status=FAILED, last_error=error[:2000], finished_at=now, claimed_until=None))


async def block_conversation(db, conn: AsyncConnection, conversation_id: str,
                             until: datetime) -> None:
    """Teams said 429: nothing more goes to this conversation before `until`."""
    stmt = db.insert(cs).values(conversation_id=conversation_id, recent=[], hour_count=0,
                                blocked_until=until)
    await conn.execute(stmt.on_conflict_do_update(index_elements=[cs.c.conversation_id],
                                                  set_={"blocked_until": until}))


async def hurry(conn: AsyncConnection, once_key: str, now: datetime) -> bool:
    """A pending job that was waiting for something (the trigger e-mail for the meeting
    bridge) runs now; False if there is no such job waiting."""
    result = await conn.execute(update(t).where(t.c.once_key == once_key, t.c.status == PENDING,
                                                t.c.run_after > now).values(run_after=now))
    return result.rowcount == 1


async def retry_failed(conn: AsyncConnection, incident_id: int, now: datetime) -> int:
    """`/incident retry`: parked jobs of an incident go back to the queue with fresh attempts."""
    result = await conn.execute(update(t).where(t.c.incident_id == incident_id,
                                                t.c.status == FAILED)
                                .values(status=PENDING, attempts=0, run_after=now,
                                        finished_at=None))
    return result.rowcount or 0


async def jobs_of(conn: AsyncConnection, incident_id: int) -> list[dict[str, Any]]:
    q = (select(t.c.id, t.c.kind, t.c.status, t.c.attempts, t.c.run_after, t.c.last_error,
                t.c.result, t.c.payload, t.c.created_at, t.c.finished_at)
         .where(t.c.incident_id == incident_id).order_by(t.c.id))
    return [dict(r) for r in (await conn.execute(q)).mappings()]


async def parked(conn: AsyncConnection, limit: int = 5) -> list[dict[str, Any]]:
    """The most recently parked jobs (failed for good until `incident retry`), newest first."""
    q = (select(t.c.id, t.c.kind, t.c.incident_id, t.c.last_error, t.c.finished_at)
         .where(t.c.status == FAILED).order_by(t.c.finished_at.desc(), t.c.id.desc())
         .limit(limit))
    return [dict(r) for r in (await conn.execute(q)).mappings()]


async def depth(conn: AsyncConnection, now: datetime) -> dict[str, Any]:
    """Outbox gauges for /metrics: pending count and oldest due age, failed count."""
    pending = (await conn.execute(select(func.count(), func.min(t.c.run_after))
                                  .where(t.c.status.in_([PENDING, RUNNING])))).one()
    failed = (await conn.execute(select(func.count()).where(t.c.status == FAILED))).scalar_one()
    oldest = (now - pending[1]).total_seconds() if pending[1] and pending[1] < now else 0.0
    return {"pending": pending[0], "oldest_due_seconds": oldest, "failed": failed}


async def _spend_send_budget(db, conn: AsyncConnection, conversation_id: str, now: datetime,
                             limits: TeamsLimits) -> datetime | None:
    """Record one send to the conversation if the budget allows it; else return when it will."""
    q = select(cs).where(cs.c.conversation_id == conversation_id)
    if not db.is_sqlite:
        q = q.with_for_update()
    row = (await conn.execute(q)).mappings().first()
    stamp = now.timestamp()
    recent = [x for x in (row["recent"] if row else []) if stamp - x < 30]
    hour_start, hour_count = (row["hour_start"], row["hour_count"]) if row else (None, 0)
    if hour_start is None or now - hour_start >= timedelta(hours=1):
        hour_start, hour_count = now, 0
    wait = _budget_wait(recent, stamp, hour_start, hour_count, limits)
    if row and row["blocked_until"] and row["blocked_until"] > now:
        wait = max(wait or now, row["blocked_until"])
    if wait is not None:
        return wait
    values = dict(recent=recent + [stamp], hour_start=hour_start, hour_count=hour_count + 1)
    stmt = db.insert(cs).values(conversation_id=conversation_id, **values)
    await conn.execute(stmt.on_conflict_do_update(index_elements=[cs.c.conversation_id],
                                                  set_=values))
    return None


def _budget_wait(recent: list[float], stamp: float, hour_start: datetime, hour_count: int,
                 limits: TeamsLimits) -> datetime | None:
    waits = []
    for window, cap in ((1, limits.per_second), (2, limits.per_2_seconds),
                        (30, limits.per_30_seconds)):
        inside = sorted(x for x in recent if stamp - x < window)
        if len(inside) >= cap:
            waits.append(inside[len(inside) - cap] + window)
    if hour_count >= limits.per_hour:
        waits.append((hour_start + timedelta(hours=1)).timestamp())
    if not waits:
        return None
    return datetime.fromtimestamp(max(waits) + 0.01, tz=hour_start.tzinfo)
