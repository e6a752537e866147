"""A private incident, once stored: who its members are (the declarer and the service's
responders), and what it gets instead of an announcement in a channel: its private chat, and the
postmortem and bridge its level calls for. No trigger e-mail to stakeholders, no channel card,
no correlation (it was stored as decided, with no automatic links)."""
from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from handlers.context import Context
from handlers.effects import meeting_bridge
from handlers.effects.private_chat import queue_private_chat
from handlers.incident.postmortem import ensure_postmortem
from incidents import permissions
from incidents.model import FIREBELL, Actor, Incident
from storage import members
from storage.timeline import note


def members_of(ctx: Context, incident: Incident, declarer: Actor) -> set[str]:
    people = set(permissions.responders(incident, ctx.catalog))
    if declarer.email:
        people.add(declarer.email.lower())
    return people


async def declare_privately(ctx: Context, conn: AsyncConnection, incident: Incident,
                            declarer: Actor) -> None:
    people = members_of(ctx, incident, declarer)
    await members.add(ctx.db, conn, incident.id, people, ctx.now())
    await note(conn, incident.id, kind="private", actor=FIREBELL, at=ctx.now(),
               text=f"private: seen by {len(people)} members and admins only")
    await queue_private_chat(ctx, conn, incident)
    await ensure_postmortem(ctx, conn, incident)
    await meeting_bridge.queue_automatic(ctx, conn, incident)
