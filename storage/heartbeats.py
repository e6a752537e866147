"""Heartbeat state: one row per heartbeat of the catalog, made when it first beats or is first
swept. A beat only moves `last_beat_at` forward, so a redelivered or late beat changes nothing."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import case, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.schema import heartbeats as t


async def ensure(db, conn: AsyncConnection, name: str, now: datetime) -> None:
    """The heartbeat's row exists (watched from now, when new)."""
    await conn.execute(db.insert(t).values(
        name=name, beats=0, watched_since=now, state="waiting", updated_at=now
    ).on_conflict_do_nothing(index_elements=[t.c.name]))


async def get(db, conn: AsyncConnection, name: str, *, lock: bool = False
              ) -> dict[str, Any] | None:
    q = select(t).where(t.c.name == name)
    if lock and not db.is_sqlite:
        q = q.with_for_update()
    row = (await conn.execute(q)).mappings().first()
    return dict(row) if row else None


async def all_states(conn: AsyncConnection) -> dict[str, dict[str, Any]]:
    return {r["name"]: dict(r) for r in (await conn.execute(select(t))).mappings()}


async def beat(conn: AsyncConnection, name: str, at: datetime) -> None:
    """One beat: last seen moves forward only; counted."""
    await conn.execute(update(t).where(t.c.name == name).values(
        last_beat_at=case((t.c.last_beat_at.is_(None), at),
                          (t.c.last_beat_at < at, at), else_=t.c.last_beat_at),
        beats=t.c.beats + 1, updated_at=at))


async def set_fields(conn: AsyncConnection, name: str, now: datetime, **values: Any) -> None:
    await conn.execute(update(t).where(t.c.name == name).values(updated_at=now, **values))
