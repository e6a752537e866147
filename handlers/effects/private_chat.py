"""A private incident's one place in Teams: a new group chat (Microsoft Graph, like a war room)
with its members, the declarer and the service's responders. Its card goes there and nowhere
else; the chat is also its war room, so bridge links and stakeholder-update posts stay in it."""
from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from handlers.context import Context
from handlers.effects.registry import Clients, effect
from handlers.effects.war_room import open_chat, service_url_for
from incidents.model import Incident
from storage import members as member_store
from storage import outbox
from storage import incidents as store
from storage.outbox import Job

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
    return await open_chat(ctx, clients, incident, private_topic(incident), members, service_url,
                           kind="private_chat", what="private chat")
