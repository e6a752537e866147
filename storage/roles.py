"""Incident roles besides the commander (incidents/roles.py): one person per role."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.schema import incident_roles as r


async def of(conn: AsyncConnection, incident_id: int) -> dict[str, dict[str, Any]]:
    """{role: {person, assigned_by, assigned_at}} of one incident."""
    q = select(r).where(r.c.incident_id == incident_id).order_by(r.c.assigned_at, r.c.role)
    return {row["role"]: dict(row) for row in (await conn.execute(q)).mappings()}


async def assign(db, conn: AsyncConnection, incident_id: int, *, role: str, person: str,
                 by: str | None, now: datetime) -> None:
    values = dict(person=person, assigned_by=by, assigned_at=now)
    stmt = db.insert(r).values(incident_id=incident_id, role=role, **values)
    await conn.execute(stmt.on_conflict_do_update(index_elements=[r.c.incident_id, r.c.role],
                                                  set_=values))
