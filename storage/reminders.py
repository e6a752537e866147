"""Queries behind reminders: overdue postmortems and action items, and open incidents nobody
has updated. Marking a reminder sent is conditional on the state read, so when two replicas
race, only one of them sends it."""
from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.schema import action_items as ai
from storage.schema import incidents as t
from storage.schema import postmortems as pm
from storage.schema import timeline as tl


async def postmortems_due(conn: AsyncConnection, *, now: datetime, undated_before: datetime,
                          reminded_before: datetime, limit: int = 200) -> list[dict[str, Any]]:
    """Draft postmortems of resolved root incidents that are (or, with no due date yet, may be)
    overdue and were not reminded since `reminded_before`."""
    q = (select(pm.c.incident_id, pm.c.owner, pm.c.due_at, pm.c.reminders, t.c.title, t.c.team,
                t.c.resolved_at, t.c.private)
         .join(t, t.c.id == pm.c.incident_id)
         .where(pm.c.status == "draft", t.c.resolved_at.is_not(None), t.c.parent_id.is_(None),
                or_(and_(pm.c.due_at.is_not(None), pm.c.due_at < now),
                    and_(pm.c.due_at.is_(None), t.c.resolved_at < undated_before)),
                or_(pm.c.last_reminded_at.is_(None), pm.c.last_reminded_at <= reminded_before))
         .order_by(pm.c.incident_id).limit(limit))
    return [dict(r) for r in (await conn.execute(q)).mappings()]


async def mark_postmortem_reminded(conn: AsyncConnection, incident_id: int, reminders: int,
                                   now: datetime) -> bool:
    result = await conn.execute(update(pm).where(pm.c.incident_id == incident_id,
                                                 pm.c.reminders == reminders)
                                .values(reminders=reminders + 1, last_reminded_at=now))
    return result.rowcount == 1


async def actions_due(conn: AsyncConnection, *, today: date, reminded_before: datetime,
                      limit: int = 500) -> list[dict[str, Any]]:
    q = (select(ai.c.id, ai.c.incident_id, ai.c.title, ai.c.owner, ai.c.due_date, ai.c.jira_key,
                ai.c.last_reminded_at, t.c.team, t.c.private)
         .join(t, t.c.id == ai.c.incident_id)
         .where(ai.c.jira_done.is_(False), ai.c.due_date.is_not(None), ai.c.due_date < today,
                ai.c.owner.is_not(None),
                or_(ai.c.last_reminded_at.is_(None), ai.c.last_reminded_at <= reminded_before))
         .order_by(ai.c.owner, ai.c.due_date, ai.c.id).limit(limit))
    return [dict(r) for r in (await conn.execute(q)).mappings()]


async def mark_action_reminded(conn: AsyncConnection, item_id: int,
                               last: datetime | None, now: datetime) -> bool:
    same = ai.c.last_reminded_at.is_(None) if last is None else ai.c.last_reminded_at == last
    result = await conn.execute(update(ai).where(ai.c.id == item_id, same)
                                .values(last_reminded_at=now))
    return result.rowcount == 1


async def stale_incidents(conn: AsyncConnection, *, quiet_since: datetime,
                          limit: int = 100) -> list[dict[str, Any]]:
    """Open root incidents whose newest timeline entry is older than `quiet_since`."""
    last = func.max(tl.c.at).label("last_update")
    q = (select(t.c.id, t.c.title, t.c.team, t.c.commander, t.c.version, t.c.triggered_at,
                t.c.private, last)
         .select_from(t.outerjoin(tl, tl.c.incident_id == t.c.id))
         .where(t.c.status == "open", t.c.parent_id.is_(None), t.c.correlated.is_(True))
         .group_by(t.c.id, t.c.title, t.c.team, t.c.commander, t.c.version, t.c.triggered_at,
                   t.c.private)
         .having(func.coalesce(func.max(tl.c.at), t.c.triggered_at) < quiet_since)
         .order_by(t.c.id).limit(limit))
    return [dict(r) for r in (await conn.execute(q)).mappings()]
