"""Queries behind the reminders of a running incident (handlers/reports/running.py): open root
incidents with no commander, open root incidents at levels with an update cadence, open root
incidents nobody acknowledged, and the
record that a reminder was sent (unique, so replicas racing each other send it once)."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Sequence

from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.schema import incident_reminders as ir
from storage.schema import incidents as t

_COLUMNS = (t.c.id, t.c.title, t.c.team, t.c.service, t.c.level, t.c.commander,
            t.c.triggered_at)


async def without_commander(conn: AsyncConnection, *, levels: Sequence[str],
                            triggered_before: datetime, limit: int = 100) -> list[dict[str, Any]]:
    """Open root incidents at these levels (or whose postmortem is required), triggered before
    the given time, with no commander and no commander reminder yet."""
    reminded = ir.alias("reminded")
    q = (select(*_COLUMNS)
         .select_from(t.outerjoin(reminded, and_(reminded.c.incident_id == t.c.id,
                                                 reminded.c.kind == "commander")))
         .where(t.c.status == "open", t.c.parent_id.is_(None), t.c.correlated.is_(True),
                t.c.commander.is_(None), t.c.triggered_at <= triggered_before,
                t.c.level.in_(list(levels)) | t.c.postmortem_required.is_(True),
                reminded.c.incident_id.is_(None))
         .order_by(t.c.id).limit(limit))
    return [dict(r) for r in (await conn.execute(q)).mappings()]


async def open_at_levels(conn: AsyncConnection, levels: Sequence[str],
                         limit: int = 500) -> list[dict[str, Any]]:
    if not levels:
        return []
    q = (select(*_COLUMNS)
         .where(t.c.status == "open", t.c.parent_id.is_(None), t.c.correlated.is_(True),
                t.c.level.in_(list(levels)))
         .order_by(t.c.id).limit(limit))
    return [dict(r) for r in (await conn.execute(q)).mappings()]


async def unacknowledged(conn: AsyncConnection, levels: Sequence[str],
                         limit: int = 500) -> list[dict[str, Any]]:
    """Announced open root incidents at these levels nobody has acknowledged yet, with no
    acknowledgement reminder yet (the caller checks each level's own time)."""
    if not levels:
        return []
    reminded = ir.alias("reminded")
    q = (select(*_COLUMNS)
         .select_from(t.outerjoin(reminded, and_(reminded.c.incident_id == t.c.id,
                                                 reminded.c.kind == "ack")))
         .where(t.c.status == "open", t.c.parent_id.is_(None), t.c.correlated.is_(True),
                t.c.first_acknowledged_at.is_(None), t.c.level.in_(list(levels)),
                reminded.c.incident_id.is_(None))
         .order_by(t.c.id).limit(limit))
    return [dict(r) for r in (await conn.execute(q)).mappings()]


async def claim_reminder(db, conn: AsyncConnection, incident_id: int, *, kind: str, key: str,
                         now: datetime) -> bool:
    """True for the one caller that records this reminder first."""
    stmt = db.insert(ir).values(incident_id=incident_id, kind=kind, key=key[:100], sent_at=now)
    result = await conn.execute(stmt.on_conflict_do_nothing(
        index_elements=[ir.c.incident_id, ir.c.kind, ir.c.key]))
    return result.rowcount == 1
