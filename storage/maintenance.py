"""Maintenance window queries: open one (typed, or a recurring occurrence stored once whoever
looks first), the windows on now, end one early, claim the close-out of those that are over, and
what an ended window's incidents came to."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.schema import incidents as inc
from storage.schema import maintenance_windows as t


async def insert(conn: AsyncConnection, *, target_kind: str, target: str, starts_at: datetime,
                 ends_at: datetime, reason: str | None, created_by: str) -> dict[str, Any]:
    result = await conn.execute(t.insert().values(
        target_kind=target_kind, target=target, starts_at=starts_at, ends_at=ends_at,
        reason=reason, created_by=created_by).returning(*t.c))
    return dict(result.mappings().one())


async def ensure_recurring(db, conn: AsyncConnection, *, key: str, target_kind: str,
                           target: str, starts_at: datetime, ends_at: datetime,
                           reason: str | None) -> dict[str, Any]:
    """The row of a recurring occurrence, stored by the first to look (replicas race here)."""
    await conn.execute(db.insert(t).values(
        target_kind=target_kind, target=target, starts_at=starts_at, ends_at=ends_at,
        reason=reason, created_by="catalog", recurring_key=key)
        .on_conflict_do_nothing(index_elements=[t.c.recurring_key]))
    row = (await conn.execute(select(t).where(t.c.recurring_key == key))).mappings().one()
    return dict(row)


async def get(conn: AsyncConnection, window_id: int) -> dict[str, Any] | None:
    row = (await conn.execute(select(t).where(t.c.id == window_id))).mappings().first()
    return dict(row) if row else None


async def on_now(conn: AsyncConnection, now: datetime) -> list[dict[str, Any]]:
    """Windows that have started, not ended and not been closed out, oldest first."""
    q = (select(t).where(t.c.closed_out_at.is_(None), t.c.starts_at <= now, t.c.ends_at > now)
         .order_by(t.c.id))
    return [dict(r) for r in (await conn.execute(q)).mappings()]


async def end_now(conn: AsyncConnection, window_id: int, *, by: str, now: datetime) -> bool:
    """End a window that is still on; False when it was already over."""
    result = await conn.execute(update(t).where(
        t.c.id == window_id, t.c.closed_out_at.is_(None), t.c.ends_at > now)
        .values(ends_at=now, ended_by=by))
    return result.rowcount == 1


async def over(conn: AsyncConnection, now: datetime, limit: int = 50) -> list[dict[str, Any]]:
    q = (select(t).where(t.c.closed_out_at.is_(None), t.c.ends_at <= now)
         .order_by(t.c.ends_at, t.c.id).limit(limit))
    return [dict(r) for r in (await conn.execute(q)).mappings()]


async def claim_close_out(conn: AsyncConnection, window_id: int, now: datetime) -> bool:
    """True for the one caller that closes this window out (posts its summary)."""
    result = await conn.execute(update(t).where(t.c.id == window_id,
                                                t.c.closed_out_at.is_(None))
                                .values(closed_out_at=now))
    return result.rowcount == 1


async def mute(conn: AsyncConnection, incident_id: int, window_id: int) -> None:
    await conn.execute(update(inc).where(inc.c.id == incident_id)
                       .values(maintenance_id=window_id))


async def stored_in(conn: AsyncConnection, window_id: int) -> list[dict[str, Any]]:
    """The incidents stored during the window (id, title, status, whether announced since)."""
    q = (select(inc.c.id, inc.c.title, inc.c.status, inc.c.correlated)
         .where(inc.c.maintenance_id == window_id).order_by(inc.c.id))
    return [dict(r) for r in (await conn.execute(q)).mappings()]


async def counts(conn: AsyncConnection, window_ids: list[int]) -> dict[int, int]:
    """How many incidents each window has held back so far."""
    if not window_ids:
        return {}
    q = (select(inc.c.maintenance_id, func.count())
         .where(inc.c.maintenance_id.in_(window_ids)).group_by(inc.c.maintenance_id))
    return {w: n for w, n in (await conn.execute(q)).all()}
