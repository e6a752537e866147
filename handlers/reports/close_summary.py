"""The summary card posted in the team's channel when an incident closes: the RCA, its action
items, the impact, how many incidents were linked to it."""
from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from cards.common import when
from cards.summary import CloseSummary, close_summary_card
from handlers.context import Context
from handlers.effects.channel_messages import queue_card_message
from handlers.reads import links
from handlers.reads.privacy import home_of
from incidents import postmortem as pm_rules
from incidents.model import Incident
from storage import incidents as incidents_store
from storage import postmortems as pm_store
from storage import reports as store


async def queue_close_summary(ctx: Context, conn: AsyncConnection, incident: Incident) -> None:
    """When an incident closes, its RCA summary lands as a card in the team's channel (the RCA
    e-mail is sent by handlers/effects/incident_email.py). Once per close: a reopened and
    closed-again incident gets a new summary."""
    channel = await home_of(conn, incident.id, incident.team, incident.private)
    if channel is None or incident.parent_id is not None:
        return
    card = close_summary_card(await _close_summary(ctx, conn, incident))
    period = f"{incident.ref}:v{incident.version}"[:40]
    once_key = f"close_summary:{incident.id}:{incident.version}"
    target = f"channel:{incident.team or 'default'}"
    if await store.claim_delivery(ctx.db, conn, kind="close_summary", period=period,
                                  target=target, now=ctx.now(), detail={"jobs": [once_key]}):
        await queue_card_message(ctx, conn, conversation_id=channel, card=card,
                                 summary=f"{incident.ref} closed: {incident.title}",
                                 once_key=once_key, incident_id=incident.id)


async def _close_summary(ctx: Context, conn: AsyncConnection,
                         incident: Incident) -> CloseSummary:
    postmortem = await pm_store.get(conn, incident.id)
    return CloseSummary(
        incident=incident,
        team_name=ctx.catalog.team_name(incident.team) if incident.team else None,
        postmortem=postmortem or {}, action_items=await pm_store.action_items(conn, incident.id),
        impact_usd=pm_rules.impact_of(ctx.catalog, incident, postmortem, ctx.now()),
        linked=len(await incidents_store.children(conn, incident.id)),
        people=ctx.catalog.names_by_email(),
        page_url=links.postmortem_page(ctx, postmortem),
        teams_url=await links.card_in_channel(conn, incident),
        waiver=pm_rules.waiver_text(postmortem, ctx.catalog.display_name, stamp=when))
