"""Naming someone to a role on an incident: communications, scribe, a catalog role, or the
commander (the incident's own field, as `incident assign`). On the timeline and the card, and
the person is @mentioned in the team's channel."""
from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from cards.reminder import Who
from cards.running_messages import role_card
from handlers.context import Context
from handlers.reads.privacy import home_of
from handlers.effects.channel_messages import queue_card_message
from handlers.effects.incident_cards import refresh_cards
from handlers.incident.change import change
from incidents.catalog import Person
from incidents.model import Actor, Incident
from incidents.roles import COMMANDER, title
from storage import roles
from storage.timeline import note


async def assign_role(ctx: Context, conn: AsyncConnection, incident: Incident, role: str,
                      person: Person, actor: Actor) -> str | None:
    """Give `person` the role; None when they held it already (nothing changes)."""
    if role == COMMANDER:
        if incident.commander == person.email:
            return None
        await change(ctx, conn, incident, {"commander": person.email}, kind="assigned",
                     text=f"incident commander: {person.name}", actor=actor)
    else:
        held = await roles.of(conn, incident.id)
        if held.get(role, {}).get("person") == person.email:
            return None
        await roles.assign(ctx.db, conn, incident.id, role=role, person=person.email,
                           by=actor.label, now=ctx.now())
        await note(conn, incident.id, kind="role", actor=actor, at=ctx.now(),
                   text=f"{title(role).lower()}: {person.name}",
                   data={"role": role, "person": person.email})
        await refresh_cards(ctx, conn, incident.id)
    await _mention(ctx, conn, incident, role, person, actor)
    return f"✅ {holds(person.name, role, incident.ref)}."


def holds(name: str, role: str, incident_ref: str, *, already: bool = False) -> str:
    """"Tom Brennan now has the scribe role on INC-7"; the commander "is now the incident
    commander of INC-7". `already`: without the "now"."""
    now = "" if already else "now "
    if role == COMMANDER:
        return f"{name} is {now}the incident commander of {incident_ref}"
    return f"{name} {now}has the {title(role).lower()} role on {incident_ref}"


async def _mention(ctx: Context, conn: AsyncConnection, incident: Incident, role: str,
                   person: Person, actor: Actor) -> None:
    """The person hears it where the team works: an @mention in the incident's channel."""
    channel = await home_of(conn, incident.id, incident.team, incident.private)
    if channel is None:
        return
    stamp = ctx.now().strftime("%Y%m%dT%H%M%S%f")
    await queue_card_message(ctx, conn, conversation_id=channel,
                             card=role_card(incident, role, Who(person.email, person.name),
                                            actor.label),
                             summary=holds(person.name, role, incident.ref),
                             once_key=f"role:{incident.id}:{role}:{stamp}",
                             incident_id=incident.id)
