"""Routing rules applied when a root incident would be announced: the rule of its service (else
its team), a low-urgency PagerDuty incident, or the channel's `level>=` filter may say "record
only": the incident is stored and kept, listed in the weekly digest, but gets no card (nor what
follows a card: war room, JIRA, e-mail, reminders). Otherwise the rule may send its card to
another team's channel. A recorded incident whose level rises is routed again."""
from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from handlers.context import Context
from incidents import routing as rules
from incidents.model import FIREBELL, Incident
from storage import conversations
from storage import incidents as store
from storage.timeline import note

RECORDED = "recorded"


def route_of(ctx: Context, incident: Incident) -> rules.Route:
    return rules.route(ctx.catalog.routing, service=incident.service, team=incident.team,
                       level=incident.level, source=incident.source, urgency=incident.urgency)


async def channel_of(ctx: Context, conn: AsyncConnection, incident: Incident) -> str | None:
    """Where its card goes: the channel of the team its routing rule names for its level,
    else its own team's, else the default channel."""
    team = route_of(ctx, incident).channel_team or incident.team
    return await conversations.channel_for(conn, None if team == "default" else team)


async def record_only(ctx: Context, conn: AsyncConnection, incident: Incident) -> bool:
    """True when the incident is only to be recorded (marked so, once, with the reason on its
    timeline); False when it is to be announced (a mark left from before is cleared)."""
    route = route_of(ctx, incident)
    because = route.recorded_because
    if because is None:
        team = route.channel_team or incident.team
        found = await conversations.subscription_for(conn, None if team == "default" else team)
        if found and not rules.admits(ctx.catalog.levels, found["min_level"], incident.level):
            because = (f"its channel takes {found['team']} incidents at "
                       f"level>={found['min_level']}")
    if because is None:
        if incident.routed == RECORDED:
            await store.update_fields(conn, incident, {"routed": None}, ctx.now())
        return False
    if incident.routed != RECORDED:
        await store.update_fields(conn, incident, {"routed": RECORDED}, ctx.now())
        await note(conn, incident.id, kind="routing", actor=FIREBELL, at=ctx.now(),
                   text=f"recorded only, no card: {because}. Listed in the weekly digest; "
                        "`incident show` shows it")
    return True
