"""Where the bot lives in Teams: conversation references, channel subscriptions, and the card
message each incident has in each conversation."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from storage import batch_scope
from storage.schema import card_messages as cm
from storage.schema import conversations as c
from storage.schema import incidents as inc
from storage.schema import subscriptions as s


async def remember(db, conn: AsyncConnection, *, conversation_id: str, kind: str, service_url: str,
                   tenant_id: str | None, team_id: str | None, name: str | None,
                   reference: dict[str, Any], now: datetime) -> None:
    values = dict(kind=kind, service_url=service_url, tenant_id=tenant_id, team_id=team_id,
                  name=name, reference=reference, updated_at=now)
    stmt = db.insert(c).values(id=conversation_id, **values)
    await conn.execute(stmt.on_conflict_do_update(index_elements=[c.c.id], set_=values))


async def get(conn: AsyncConnection, conversation_id: str) -> dict[str, Any] | None:
    row = (await conn.execute(select(c).where(c.c.id == conversation_id))).mappings().first()
    return dict(row) if row else None


async def any_service_url(conn: AsyncConnection) -> str | None:
    q = select(c.c.service_url).order_by(c.c.updated_at.desc()).limit(1)
    return (await conn.execute(q)).scalar()


async def subscribe(db, conn: AsyncConnection, *, team: str, conversation_id: str,
                    by: str | None, now: datetime, min_level: str | None = None) -> str | None:
    """Bind `team` to the channel (at `min_level` or above, when given); returns the channel
    it was bound to before, if any."""
    before = (await conn.execute(select(s.c.conversation_id).where(s.c.team == team))).scalar()
    values = dict(conversation_id=conversation_id, subscribed_by=by, subscribed_at=now,
                  min_level=min_level)
    stmt = db.insert(s).values(team=team, **values)
    await conn.execute(stmt.on_conflict_do_update(index_elements=[s.c.team], set_=values))
    return before


async def unsubscribe(conn: AsyncConnection, *, team: str, conversation_id: str) -> bool:
    """Unbind `team` from this channel; False if its incidents did not come here."""
    result = await conn.execute(delete(s).where(s.c.team == team,
                                                s.c.conversation_id == conversation_id))
    return result.rowcount == 1


async def channel_for(conn: AsyncConnection, team: str | None) -> str | None:
    """The team's channel, else the default channel, else None."""
    keys = [k for k in (team, "default") if k]
    rows = dict((await conn.execute(select(s.c.team, s.c.conversation_id)
                                    .where(s.c.team.in_(keys)))).all())
    return next((rows[k] for k in keys if k in rows), None)


async def subscription_for(conn: AsyncConnection, team: str | None) -> dict[str, Any] | None:
    """The team's subscription (channel and level filter), else the default channel's."""
    keys = [k for k in (team, "default") if k]
    rows = {r["team"]: dict(r) for r in (await conn.execute(
        select(s.c.team, s.c.conversation_id, s.c.min_level).where(s.c.team.in_(keys))))
        .mappings()}
    return next((rows[k] for k in keys if k in rows), None)


async def subscriptions_of(conn: AsyncConnection, conversation_id: str) -> list[str]:
    q = select(s.c.team).where(s.c.conversation_id == conversation_id).order_by(s.c.team)
    return list((await conn.execute(q)).scalars())


async def all_subscriptions(conn: AsyncConnection) -> dict[str, str]:
    return dict((await conn.execute(select(s.c.team, s.c.conversation_id))).all())


# -- card messages -------------------------------------------------------------------------

async def add_card_message(db, conn: AsyncConnection, incident_id: int,
                           conversation_id: str) -> bool:
    """Reserve the incident's card slot in a conversation; False if it already has one."""
    stmt = db.insert(cm).values(incident_id=incident_id, conversation_id=conversation_id,
                                wanted_rev=0, rendered_rev=0)
    result = await conn.execute(stmt.on_conflict_do_nothing(
        index_elements=[cm.c.incident_id, cm.c.conversation_id]))
    return result.rowcount == 1


async def card_message(conn: AsyncConnection, incident_id: int,
                       conversation_id: str) -> dict[str, Any] | None:
    q = select(cm).where(cm.c.incident_id == incident_id, cm.c.conversation_id == conversation_id)
    row = (await conn.execute(q)).mappings().first()
    return dict(row) if row else None


async def card_messages_of(conn: AsyncConnection, incident_id: int) -> list[dict[str, Any]]:
    q = select(cm).where(cm.c.incident_id == incident_id).order_by(cm.c.id)
    return [dict(r) for r in (await conn.execute(q)).mappings()]


async def find_card_by_activity(conn: AsyncConnection, conversation_id: str,
                                activity_id: str) -> dict[str, Any] | None:
    q = select(cm).where(cm.c.conversation_id == conversation_id, cm.c.activity_id == activity_id)
    row = (await conn.execute(q)).mappings().first()
    return dict(row) if row else None


async def card_posted(conn: AsyncConnection, card_id: int, *, activity_id: str, rev: int,
                      now: datetime, thread_id: str | None = None) -> None:
    await conn.execute(update(cm).where(cm.c.id == card_id).values(
        activity_id=activity_id, thread_id=thread_id, rendered_rev=rev, posted_at=now,
        updated_at=now))


async def card_updated(conn: AsyncConnection, card_id: int, *, rev: int, now: datetime) -> None:
    await conn.execute(update(cm).where(cm.c.id == card_id, cm.c.rendered_rev < rev)
                       .values(rendered_rev=rev, updated_at=now))


async def want_refresh(conn: AsyncConnection, incident_id: int) -> list[dict[str, Any]]:
    """Mark every card of the incident as behind; returns them (after the bump), for an
    update to be queued for each. In a worker batch's scope, an incident marked already in
    the batch returns none: its updates are queued in this same transaction, and each renders
    what is stored when it runs, after the batch has committed (a storm's root gains hundreds
    of children a second, each a refresh of the same cards)."""
    scope = batch_scope.current(conn)
    if scope is not None:
        if incident_id in scope.refreshed:
            return []
        scope.refreshed.add(incident_id)
    bumped = await conn.execute(_WANT_REFRESH, {"of_incident": incident_id})
    return sorted((dict(r) for r in bumped.mappings()), key=lambda r: r["id"])


# Built once with bound parameters: every change of an incident with cards runs it.
_WANT_REFRESH = (update(cm).where(cm.c.incident_id == bindparam("of_incident"))
                 .values(wanted_rev=cm.c.wanted_rev + 1).returning(*cm.c))


async def want_refresh_children(conn: AsyncConnection, parent_id: int) -> list[dict[str, Any]]:
    """`want_refresh` for the cards of every child of `parent_id`, in one statement: a storm's
    root has thousands of children and almost none has a card of its own."""
    children = select(inc.c.id).where(inc.c.parent_id == parent_id).scalar_subquery()
    bumped = await conn.execute(update(cm).where(cm.c.incident_id.in_(children))
                                .values(wanted_rev=cm.c.wanted_rev + 1).returning(*cm.c))
    return sorted((dict(r) for r in bumped.mappings()), key=lambda r: r["id"])
