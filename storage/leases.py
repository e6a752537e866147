"""Leases: named, expiring claims so periodic work runs on one replica at a time. A replica that
dies mid-run lets its lease lapse; the next tick elsewhere takes over."""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, or_
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.schema import leases as t


async def acquire(db, conn: AsyncConnection, name: str, holder: str, *, now: datetime,
                  ttl: timedelta) -> bool:
    """Take (or extend) the lease; False while another holder's lease is still valid."""
    until = now + ttl
    stmt = db.insert(t).values(name=name, holder=holder, until=until)
    stmt = stmt.on_conflict_do_update(index_elements=[t.c.name],
                                      set_={"holder": holder, "until": until},
                                      where=or_(t.c.until < now, t.c.holder == holder))
    return (await conn.execute(stmt)).rowcount == 1


async def release(conn: AsyncConnection, name: str, holder: str) -> None:
    await conn.execute(delete(t).where(t.c.name == name, t.c.holder == holder))
