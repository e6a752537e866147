"""Announcing a root incident: its card in the owning team's channel (or the one its routing
rule names for its level; else the default channel), and the follow-ups its level implies. Runs
once correlation says "root" (and routing did not say "record only").
A cascade child of another team's root gets the compact card in its own team's channel: that
team was paged too and must see where the work happens."""
from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from handlers.context import Context
from handlers.effects.incident_cards import post_card_to
from handlers.incident import followups
from handlers.incident.routing import channel_of
from handlers.reads.cascade import other_teams_root
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


async def announce_cascade_child(ctx: Context, conn: AsyncConnection, child: Incident) -> None:
    """Whatever the arrival order: linked first (the root was there) or adopted later (the child
    was announced as a root, and its card there turns compact on the refresh the link queues).
    A channel that already shows the root's card gets nothing more."""
    root = await other_teams_root(conn, child)
    if root is None:
        return
    channel = await channel_of(ctx, conn, child)
    if channel is None or channel == await channel_of(ctx, conn, root):
        return
    await post_card_to(ctx, conn, child, channel)
