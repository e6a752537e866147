"""Announcing a root incident: its card in the owning team's channel (or the one its routing
rule names for its level; else the default channel), and the follow-ups its level implies. Runs
once correlation says "root" (and routing did not say "record only")."""
from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from handlers.context import Context
from handlers.effects.incident_cards import post_card_to
from handlers.incident import followups
from handlers.incident.routing import channel_of
from incidents.model import FIREBELL, Incident
from storage.timeline import note


async def announce(ctx: Context, conn: AsyncConnection, incident: Incident) -> None:
    await followups.on_announce(ctx, conn, incident)
    channel = await channel_of(ctx, conn, incident)
    if channel is None:
        who = f"team {incident.team}" if incident.team else "incidents with no owning team"
        await note(conn, incident.id, kind="not_posted", actor=FIREBELL, at=ctx.now(),
                   text=f"no Teams channel is subscribed for {who} and there is no default "
                        f"channel: run `/incident subscribe {incident.team or 'default'}` "
                        f"in a channel to get its card there")
        return
    await post_card_to(ctx, conn, incident, channel)
