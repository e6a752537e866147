"""Posting a stakeholder update: stored, on the timeline, on the incident's cards (the latest
and the count), in its war room, by e-mail to the service's stakeholders (catalog), and in every
channel subscribed with `incident subscribe stakeholders <team|all>`. Each posted once (the
update's id keys every message), rendered from the stored update. A private incident's updates
stay in its private chat: no stakeholder e-mail, no stakeholder channel."""
from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from cards.running_messages import stakeholder_update_card
from handlers.context import Context
from handlers.effects.channel_messages import queue_card_message
from handlers.effects.email import queue_email
from handlers.effects.incident_cards import refresh_cards
from handlers.reads import links
from incidents.model import Actor, Incident
from mail.updates import stakeholder_update_email
from storage import bridges, conversations, updates
from storage import postmortems as pm_store
from storage.timeline import note


async def post_update(ctx: Context, conn: AsyncConnection, incident: Incident, phase: str,
                      text: str, actor: Actor) -> int:
    """Returns the update's number (1 for the incident's first)."""
    update_id = await updates.add(conn, incident.id, phase=phase, text=text,
                                  author=actor.label, now=ctx.now())
    stored = await updates.get(conn, update_id)
    _, number = await updates.latest(conn, incident.id)
    await note(conn, incident.id, kind="update", actor=actor, at=ctx.now(),
               text=f"stakeholder update {number} ({phase}): {text}",
               data={"update_id": update_id, "phase": phase})
    await refresh_cards(ctx, conn, incident.id)
    await _send_out(ctx, conn, incident, stored, number)
    return number


async def _send_out(ctx: Context, conn: AsyncConnection, incident: Incident,
                    update: dict[str, Any], number: int) -> None:
    team = ctx.catalog.team(incident.team)
    bridge = await bridges.get(conn, incident.parent_id or incident.id)
    shown = dict(phase=update["phase"], text=update["text"], author=update["author"],
                 posted_at=update["posted_at"], number=number,
                 team_name=team.name if team else incident.team,
                 bridge_url=bridge["join_url"] if bridge else None)
    card = stakeholder_update_card(incident, **shown)
    summary = f"{incident.ref} update {number} ({update['phase']})"
    for conversation_id in await _where(conn, incident):
        await queue_card_message(ctx, conn, conversation_id=conversation_id, card=card,
                                 summary=summary, incident_id=incident.id,
                                 once_key=f"update:{update['id']}:{conversation_id}"[:300])
    service = ctx.catalog.service(incident.service)
    if service and service.stakeholders and not incident.private:
        subject, text, html = stakeholder_update_email(
            incident, **shown, teams_link=await links.card_in_channel(conn, incident),
            zone=ctx.catalog.timezone)
        await queue_email(ctx, conn, to=service.stakeholders, subject=subject, text=text,
                          html=html, once_key=f"update:{update['id']}:email",
                          incident_id=incident.id)


async def _where(conn: AsyncConnection, incident: Incident) -> list[str]:
    """The war room (when Firebell is in it) and the subscribed stakeholder channels. A private
    incident's war room is its private chat, and it goes nowhere else."""
    out = []
    room = await pm_store.war_room(conn, incident.parent_id or incident.id)
    if room and room.get("chat_id") and await conversations.get(conn, room["chat_id"]):
        out.append(room["chat_id"])
    if not incident.private:
        out += await updates.channels_for(conn, incident.team)
    return list(dict.fromkeys(out))
