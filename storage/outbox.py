"""The outbox: side effects as rows (rule 3).

A job is written in the same transaction as the change that implies it. Workers claim due jobs
(`FOR UPDATE SKIP LOCKED` on PostgreSQL, so replicas never take the same one; SQLite has one
writer anyway), run them, and record the outcome. A claim is a lease: a worker that dies mid-job
lets the lease lapse and another picks the job up. `once_key` makes a job unique forever (one
JIRA task per incident); `coalesce_key` makes it unique while pending (one card update queued
per card, however many changes arrive).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Sequence

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.schema import conversation_sends as cs
from storage.schema import outbox as t

PENDING, RUNNING, DONE, FAILED, CANCELLED = "pending", "running", "done", "failed", "cancelled"


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


@dataclass(frozen=True)
class TeamsLimits:
    """Microsoft's documented per-bot, per-conversation limits (Teams rate limiting)."""
    per_second: int = 7
    per_2_seconds: int = 8
    per_30_seconds: int = 60
    per_hour: int = 1800


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


async def claim(db, conn: AsyncConnection, *, worker: str, now: datetime, lease: timedelta,
                limit: int, kinds: Sequence[str] | None = None,
                limits: TeamsLimits = TeamsLimits()) -> list[Job]:
    """Take up to `limit` due jobs. Jobs for a Teams conversation whose send budget is spent
    stay pending, moved to when the budget frees up."""
    due = or_(and_(t.c.status == PENDING, t.c.run_after <= now),
              and_(t.c.status == RUNNING, t.c.claimed_until < now))  # a dead worker's lease
    running = t.alias("running")
    overlapping = select(running.c.id).where(
        running.c.coalesce_key == t.c.coalesce_key, running.c.status == RUNNING,
        running.c.claimed_until >= now, running.c.id != t.c.id)
    q = select(t).where(due, or_(t.c.coalesce_key.is_(None), ~overlapping.exists()))
    if kinds:
        q = q.where(t.c.kind.in_(list(kinds)))
    q = q.order_by(t.c.run_after, t.c.id).limit(limit)
    if not db.is_sqlite:
        q = q.with_for_update(skip_locked=True)
    rows = list((await conn.execute(q)).mappings())
    claimed = []
    for row in rows:
        if row["conversation_id"]:
            wait = await _spend_send_budget(db, conn, row["conversation_id"], now, limits)
            if wait is not None:
                await conn.execute(update(t).where(t.c.id == row["id"])
                                   .values(status=PENDING, run_after=wait))
                continue
        await conn.execute(update(t).where(t.c.id == row["id"]).values(
            status=RUNNING, claimed_by=worker, claimed_until=now + lease,
            attempts=row["attempts"] + 1))
        claimed.append(Job(row["id"], row["kind"], row["incident_id"], row["payload"] or {},
                           row["attempts"] + 1, row["conversation_id"], row["last_error"],
                           row["result"]))
    return claimed


async def complete(conn: AsyncConnection, job: Job, *, now: datetime,
                   result: dict[str, Any] | None = None) -> None:
    await conn.execute(update(t).where(t.c.id == job.id).values(
        status=DONE, result=result, finished_at=now, claimed_until=None, last_error=None))


async def retry_later(conn: AsyncConnection, job: Job, *, error: str, at: datetime,
                      result: dict[str, Any] | None = None) -> None:
    values = dict(status=PENDING, run_after=at, last_error=error[:2000], claimed_until=None)
    if result is not None:
        values["result"] = result  # e.g. an outside id learned before the failure
    await conn.execute(update(t).where(t.c.id == job.id).values(**values))


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


async def retry_failed(conn: AsyncConnection, incident_id: int, now: datetime) -> int:
    """`/incident retry`: parked jobs of an incident go back to the queue with fresh attempts."""
    result = await conn.execute(update(t).where(t.c.incident_id == incident_id,
                                                t.c.status == FAILED)
                                .values(status=PENDING, attempts=0, run_after=now,
                                        finished_at=None))
    return result.rowcount or 0


async def cancel(conn: AsyncConnection, incident_id: int, kinds: Sequence[str]) -> int:
    result = await conn.execute(update(t).where(t.c.incident_id == incident_id,
                                                t.c.kind.in_(list(kinds)),
                                                t.c.status.in_([PENDING, FAILED]))
                                .values(status=CANCELLED))
    return result.rowcount or 0


async def jobs_of(conn: AsyncConnection, incident_id: int) -> list[dict[str, Any]]:
    q = (select(t.c.id, t.c.kind, t.c.status, t.c.attempts, t.c.run_after, t.c.last_error,
                t.c.result, t.c.payload, t.c.created_at, t.c.finished_at)
         .where(t.c.incident_id == incident_id).order_by(t.c.id))
    return [dict(r) for r in (await conn.execute(q)).mappings()]


async def depth(conn: AsyncConnection, now: datetime) -> dict[str, Any]:
    """Outbox gauges for /metrics: pending count and oldest due age, failed count."""
    pending = (await conn.execute(select(func.count(), func.min(t.c.run_after))
                                  .where(t.c.status.in_([PENDING, RUNNING])))).one()
    failed = (await conn.execute(select(func.count()).where(t.c.status == FAILED))).scalar_one()
    oldest = (now - pending[1]).total_seconds() if pending[1] and pending[1] < now else 0.0
    return {"pending": pending[0], "oldest_due_seconds": oldest, "failed": failed}


async def next_due(conn: AsyncConnection) -> datetime | None:
    q = select(func.min(t.c.run_after)).where(t.c.status == PENDING)
    return (await conn.execute(q)).scalar()


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
