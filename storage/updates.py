"""Stakeholder updates, the channels subscribed to them, and what a digest needs of them."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Sequence

from sqlalchemy import delete, false, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.schema import incidents as t
from storage.schema import stakeholder_channels as sc
from storage.schema import status_updates as su

ALL = "all"


async def add(conn: AsyncConnection, incident_id: int, *, phase: str, text: str,
              author: str | None, now: datetime) -> int:
    stmt = su.insert().values(incident_id=incident_id, phase=phase, text=text, author=author,
                              posted_at=now).returning(su.c.id)
    return (await conn.execute(stmt)).scalar_one()


async def get(conn: AsyncConnection, update_id: int) -> dict[str, Any] | None:
    row = (await conn.execute(select(su).where(su.c.id == update_id))).mappings().first()
    return dict(row) if row else None


async def latest(conn: AsyncConnection, incident_id: int) -> tuple[dict[str, Any] | None, int]:
    """The newest update of the incident, and how many it has had."""
    count = (await conn.execute(select(func.count()).select_from(su)
                                .where(su.c.incident_id == incident_id))).scalar_one()
    if not count:
        return None, 0
    q = (select(su).where(su.c.incident_id == incident_id)
         .order_by(su.c.posted_at.desc(), su.c.id.desc()).limit(1))
    return dict((await conn.execute(q)).mappings().one()), count


async def last_posted(conn: AsyncConnection, ids: Sequence[int]) -> dict[int, datetime]:
    """{incident id: when its newest update was posted} for those of `ids` that have one."""
    if not ids:
        return {}
    q = (select(su.c.incident_id, func.max(su.c.posted_at))
         .where(su.c.incident_id.in_(list(ids))).group_by(su.c.incident_id))
    return {incident_id: at for incident_id, at in (await conn.execute(q)).all()}


async def of_period(conn: AsyncConnection, start: datetime, end: datetime,
                    levels: Sequence[str]) -> tuple[list[dict], list[dict]]:
    """Root incidents triggered in [start, end) that had updates or whose level has a cadence
    (id, title, team, level), and their updates (incident_id, posted_at)."""
    # Never a private incident: the digest names each one with its update count.
    in_period = (t.c.triggered_at >= start, t.c.triggered_at < end, t.c.parent_id.is_(None),
                 t.c.private == false())
    q = (select(su.c.incident_id, su.c.posted_at).join(t, t.c.id == su.c.incident_id)
         .where(*in_period).order_by(su.c.incident_id, su.c.posted_at))
    updates = [dict(r) for r in (await conn.execute(q)).mappings()]
    updated = {u["incident_id"] for u in updates}
    wanted = t.c.level.in_(list(levels))
    if updated:
        wanted = wanted | t.c.id.in_(sorted(updated))
    q = select(t.c.id, t.c.title, t.c.team, t.c.level).where(*in_period, wanted).order_by(t.c.id)
    incidents = [dict(r) for r in (await conn.execute(q)).mappings()]
    return incidents, updates


# -- stakeholder channels ---------------------------------------------------------------------

async def subscribe(db, conn: AsyncConnection, *, scope: str, conversation_id: str,
                    by: str | None, now: datetime) -> bool:
    """False when this channel already gets that scope's updates."""
    stmt = db.insert(sc).values(scope=scope, conversation_id=conversation_id, subscribed_by=by,
                                subscribed_at=now)
    result = await conn.execute(stmt.on_conflict_do_nothing(
        index_elements=[sc.c.scope, sc.c.conversation_id]))
    return result.rowcount == 1


async def unsubscribe(conn: AsyncConnection, *, scope: str, conversation_id: str) -> bool:
    result = await conn.execute(delete(sc).where(sc.c.scope == scope,
                                                 sc.c.conversation_id == conversation_id))
    return result.rowcount == 1


async def channels_for(conn: AsyncConnection, team: str | None) -> list[str]:
    """Channels that get a team's stakeholder updates: those subscribed to the team, and to
    all (each once)."""
    scopes = [ALL, *([team] if team else [])]
    q = (select(sc.c.conversation_id).where(sc.c.scope.in_(scopes))
         .order_by(sc.c.subscribed_at, sc.c.conversation_id))
    return list(dict.fromkeys((await conn.execute(q)).scalars()))
