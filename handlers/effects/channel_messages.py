"""A card posted as a new message in a Teams conversation, once per key: digests, reports,
reminders, close summaries. (The live incident card is handlers/effects/incident_cards.py.)"""
from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from handlers.context import Context
from handlers.effects.incident_cards import card_activity
from handlers.effects.registry import Clients, effect
from integrations.errors import PermanentFailure
from storage import conversations, outbox
from storage.outbox import Job


async def queue_card_message(ctx: Context, conn: AsyncConnection, *, conversation_id: str,
                             card: dict[str, Any], summary: str, once_key: str,
                             incident_id: int | None = None) -> bool:
    """Post `card` as a new message in the conversation, once for `once_key`."""
    return await outbox.enqueue(ctx.db, conn, "post_message", now=ctx.now(),
                                incident_id=incident_id, once_key=once_key,
                                conversation_id=conversation_id,
                                payload={"conversation_id": conversation_id, "card": card,
                                         "summary": summary[:200]})


@effect("post_message", system="teams")
async def post_message(ctx: Context, clients: Clients, job: Job) -> dict[str, Any]:
    conversation_id = job.payload["conversation_id"]
    async with ctx.db.read() as conn:
        conv = await conversations.get(conn, conversation_id)
    if conv is None:
        raise PermanentFailure(f"conversation {conversation_id} is unknown to Firebell")
    activity_id = await clients.teams.send(
        conv["service_url"], conversation_id,
        card_activity(job.payload["card"], job.payload["summary"]))
    return {"activity_id": activity_id}
