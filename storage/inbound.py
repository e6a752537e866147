"""Inbound idempotency: the natural id of every event handled, remembered long enough
that a redelivery or a replay with a new delivery id changes nothing."""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.bulk import BulkInsert
from storage.schema import inbound_events as t

# On every webhook batch: rendered once, run on the driver (storage/bulk.py).
_CLAIM = BulkInsert(t, conflict=("key",), returning=("key",))


async def first_time(db, conn: AsyncConnection, key: str, now: datetime,
                     incident_id: int | None = None) -> bool:
    """Record `key`; True when it was not seen before. Runs inside the handler's transaction,
    so the key and the change it guards commit (or roll back) together."""
    stmt = db.insert(t).values(key=key, received_at=now, incident_id=incident_id)
    result = await conn.execute(stmt.on_conflict_do_nothing(index_elements=[t.c.key]))
    return result.rowcount == 1


async def claim_many(db, conn: AsyncConnection, keys: list[str], now: datetime) -> set[str]:
    """Record many keys at once; returns those that were new. On PostgreSQL a key another
    transaction is inserting right now waits for it, so each key is owned by one delivery."""
    unique = list(dict.fromkeys(keys))
    if not unique:
        return set()
    rows = await _CLAIM.run(conn, [{"key": k, "received_at": now} for k in unique])
    return {r[0] for r in rows}


async def forget_older_than(conn: AsyncConnection, now: datetime, keep: timedelta) -> int:
    result = await conn.execute(delete(t).where(t.c.received_at < now - keep))
    return result.rowcount or 0
