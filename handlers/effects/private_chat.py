"""A private incident's one place in Teams: a new group chat (Microsoft Graph, like a war room)
with its members, the declarer and the service's responders. Its card goes there and nowhere
else; the chat is also its war room, so bridge links and stakeholder-update posts stay in it."""
from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from handlers.context import Context
from handlers.effects.incident_cards import refresh_cards
from handlers.effects.registry import Clients, effect
from handlers.effects.war_room import post_card_in_chat, service_url_for
from incidents.model import FIREBELL, Incident
from storage import members as member_store
from storage import outbox
from storage import incidents as store
from storage import postmortems as pm_store
from storage.outbox import Job
from storage.timeline import note

KIND = "private_chat"
TOPIC_LIMIT = 200


async def queue_private_chat(ctx: Context, conn: AsyncConnection, incident: Incident) -> None:
    await outbox.enqueue(ctx.db, conn, KIND, now=ctx.now(), incident_id=incident.id,
                         once_key=f"{KIND}:{incident.id}")


def private_topic(incident: Incident) -> str:
    topic = f"🔒 {incident.ref} (private): {incident.title}"
    return topic if len(topic) <= TOPIC_LIMIT else topic[: TOPIC_LIMIT - 1] + "…"


@effect(KIND, system="graph", shown_as="Private chat")
async def open_private_chat(ctx: Context, clients: Clients, job: Job) -> dict[str, Any]:
    async with ctx.db.read() as conn:
        incident = await store.get(conn, job.incident_id)
        members = await member_store.of(conn, job.incident_id)
        service_url = await service_url_for(conn, incident)
    # Keyed by its topic (the incident's id is in it): a retry finds the chat made before.
    chat = await clients.graph.ensure_war_room(private_topic(incident), members)
    if ctx.policy.teams_app_id:
        await clients.graph.ensure_app_installed(chat.id, ctx.policy.teams_app_id)
    async with ctx.db.write() as conn:
        await pm_store.save_war_room(ctx.db, conn, incident.id, chat_id=chat.id,
                                     web_url=chat.web_url, topic=private_topic(incident),
                                     members=members, now=ctx.now())
        posted = await post_card_in_chat(ctx, conn, incident, chat.id, service_url)
        names = ", ".join(ctx.catalog.display_name(m) or m for m in members)
        await note(conn, incident.id, kind="private_chat", actor=FIREBELL, at=ctx.now(),
                   text=f"private chat opened with {names}"
                        + ("" if posted else " (card not posted: Firebell has not heard from "
                                             "Teams in this tenant yet)"))
        await refresh_cards(ctx, conn, incident.id)
    ctx.wake_worker()
    return {"chat_id": chat.id, "created": chat.created, "members": members}
