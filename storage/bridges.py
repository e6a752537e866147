"""Meeting bridges: the Teams meeting of an incident, once it exists."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.schema import meeting_bridges as mb


async def get(conn: AsyncConnection, incident_id: int) -> dict[str, Any] | None:
    row = (await conn.execute(select(mb).where(mb.c.incident_id == incident_id))
           ).mappings().first()
    return dict(row) if row else None


async def save(db, conn: AsyncConnection, incident_id: int, *, external_id: str,
               meeting_id: str | None, join_url: str, organizer: str, now: datetime) -> bool:
    """Record the meeting; False if the incident already had one (the first stays: createOrGet
    on the same external id returns that one anyway)."""
    stmt = db.insert(mb).values(incident_id=incident_id, external_id=external_id,
                                meeting_id=meeting_id, join_url=join_url, organizer=organizer,
                                created_at=now)
    result = await conn.execute(stmt.on_conflict_do_nothing(index_elements=[mb.c.incident_id]))
    return result.rowcount == 1
