"""The incident list behind GET /api/incidents(.csv): filters, a stable order (by id, so pages
do not shift while new incidents arrive) and a total."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Sequence

from sqlalchemy import false, func, select, true
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.schema import incidents as t
from storage.schema import postmortems as pm

COLUMNS = (t.c.id, t.c.title, t.c.service, t.c.team, t.c.level, t.c.status, t.c.source,
           t.c.external_id, t.c.pd_number, t.c.priority, t.c.triggered_at,
           t.c.first_acknowledged_at, t.c.acknowledged_by, t.c.resolved_at, t.c.closed_at,
           t.c.commander, t.c.parent_id, t.c.link_kind, t.c.recurrence_of, t.c.fingerprint,
           t.c.html_url)


@dataclass(frozen=True)
class IncidentFilter:
    since: datetime | None = None          # triggered at or after
    until: datetime | None = None          # triggered before
    teams: Sequence[str] = ()
    services: Sequence[str] = ()
    levels: Sequence[str] = ()
    statuses: Sequence[str] = ()


def _where(f: IncidentFilter) -> list:
    out = []
    if f.since:
        out.append(t.c.triggered_at >= f.since)
    if f.until:
        out.append(t.c.triggered_at < f.until)
    for column, values in ((t.c.team, f.teams), (t.c.service, f.services),
                           (t.c.level, f.levels), (t.c.status, f.statuses)):
        if values:
            out.append(column.in_(list(values)))
    return out


async def list_incidents(conn: AsyncConnection, f: IncidentFilter, *, limit: int,
                         offset: int) -> tuple[list[dict[str, Any]], int, int]:
    """(rows, total, private): private incidents are never rows (the API's token is nobody's
    in particular); the filters' matching private ones are only counted."""
    where = _where(f)
    private = (await conn.execute(select(func.count()).select_from(t).where(
        *where, t.c.private == true()))).scalar_one()
    where.append(t.c.private == false())
    total = (await conn.execute(select(func.count()).select_from(t).where(*where))).scalar_one()
    q = (select(*COLUMNS, pm.c.impact_minutes, pm.c.status.label("postmortem_status"))
         .select_from(t.outerjoin(pm, pm.c.incident_id == t.c.id))
         .where(*where).order_by(t.c.id).limit(limit).offset(offset))
    return [dict(r) for r in (await conn.execute(q)).mappings()], total, private
