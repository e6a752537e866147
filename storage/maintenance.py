"""Maintenance window queries: open one (typed, or a recurring occurrence stored once whoever
looks first), the windows on now, end one early, claim the close-out of those that are over, and
what an ended window's incidents came to."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from storage import batch_scope
from storage.schema import incidents as inc
from storage.schema import maintenance_windows as t


async def insert(conn: AsyncConnection, *, target_kind: str, target: str, starts_at: datetime,
                 ends_at: datetime, reason: str | None, created_by: str) -> dict[str, Any]:
    _changed(conn)
    result = await conn.execute(t.insert().values(
        target_kind=target_kind, target=target, starts_at=starts_at, ends_at=ends_at,
        reason=reason, created_by=created_by).returning(*t.c))
    return dict(result.mappings().one())


async def ensure_recurring(db, conn: AsyncConnection, *, key: str, target_kind: str,
                           target: str, starts_at: datetime, ends_at: datetime,
                           reason: str | None) -> dict[str, Any]:
    """The row of a recurring occurrence, stored by the first to look (replicas race here).
    In a worker batch's scope, once per batch (every decision asks)."""
    scope = batch_scope.current(conn)
    if scope is not None and key in scope.recurring:
        return next((w for w in await _not_closed_out(conn, scope)
                     if w["recurring_key"] == key), None) or await _recurring(conn, key)
    inserted = await conn.execute(db.insert(t).values(
        target_kind=target_kind, target=target, starts_at=starts_at, ends_at=ends_at,
        reason=reason, created_by="catalog", recurring_key=key)
        .on_conflict_do_nothing(index_elements=[t.c.recurring_key]))
    if scope is not None:
        scope.recurring.add(key)
        if inserted.rowcount:
            scope.windows = None
    return await _recurring(conn, key)


async def _recurring(conn: AsyncConnection, key: str) -> dict[str, Any]:
    row = (await conn.execute(select(t).where(t.c.recurring_key == key))).mappings().one()
    return dict(row)


async def get(conn: AsyncConnection, window_id: int) -> dict[str, Any] | None:
    row = (await conn.execute(select(t).where(t.c.id == window_id))).mappings().first()
    return dict(row) if row else None


async def on_now(conn: AsyncConnection, now: datetime) -> list[dict[str, Any]]:
    """Windows that have started, not ended and not been closed out, oldest first. In a
    worker batch's scope the windows not closed out (a handful) are read once per batch."""
    scope = batch_scope.current(conn)
    if scope is None:
        return [dict(r) for r in (await conn.execute(_ON_NOW, {"now": now})).mappings()]
    return [w for w in await _not_closed_out(conn, scope)
            if w["starts_at"] <= now < w["ends_at"]]


async def _not_closed_out(conn: AsyncConnection, scope) -> list[dict[str, Any]]:
    if scope.windows is None:
        scope.windows = [dict(r) for r in (await conn.execute(_NOT_CLOSED_OUT)).mappings()]
    return scope.windows


def _changed(conn: AsyncConnection) -> None:
    scope = batch_scope.current(conn)
    if scope is not None:
        scope.windows = None


# Built once: correlation asks for every new incident.
_NOT_CLOSED_OUT = select(t).where(t.c.closed_out_at.is_(None)).order_by(t.c.id)
_ON_NOW = _NOT_CLOSED_OUT.where(t.c.starts_at <= bindparam("now", type_=t.c.starts_at.type),
                                t.c.ends_at > bindparam("now", type_=t.c.ends_at.type))


async def end_now(conn: AsyncConnection, window_id: int, *, by: str, now: datetime) -> bool:
    """End a window that is still on; False when it was already over."""
    _changed(conn)
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
    _changed(conn)
    result = await conn.execute(update(t).where(t.c.id == window_id,
                                                t.c.closed_out_at.is_(None))
                                .values(closed_out_at=now))
    return result.rowcount == 1


async def mute(conn: AsyncConnection, incident_id: int, window_id: int) -> None:
    batch_scope.forget_incident(conn, incident_id)
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
