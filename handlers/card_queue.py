"""Incident cards in Teams: post once per conversation, then update that same message in place.

Both go through the outbox (handlers.card_delivery runs the jobs). Updates are coalesced: one
pending update per card, run no sooner than `card_update_interval` after the previous one, and
rendered from the state at run time, so a burst of changes becomes one update carrying them all.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from handlers.context import Context
from incidents.model import Incident
from storage import conversations, outbox


def card_activity(card: dict[str, Any], summary: str) -> dict[str, Any]:
    return {"type": "message", "summary": summary[:200], "attachments": [
        {"contentType": "application/vnd.microsoft.card.adaptive", "content": card}]}


async def post_card_to(ctx: Context, conn: AsyncConnection, incident: Incident,
                       conversation_id: str) -> bool:
    """Queue the incident's card for a conversation, unless it already has (or will have) one."""
    if not await conversations.add_card_message(ctx.db, conn, incident.id, conversation_id):
        return False
    await outbox.enqueue(ctx.db, conn, "post_card", now=ctx.now(), incident_id=incident.id,
                         payload={"conversation_id": conversation_id},
                         once_key=f"post_card:{incident.id}:{conversation_id}",
                         conversation_id=conversation_id)
    return True


async def queue_reserved_card(ctx: Context, incident_id: int, conversation_id: str) -> None:
    """The command's reply carrying the card failed: post it through the outbox instead."""
    async with ctx.db.write() as conn:
        await outbox.enqueue(ctx.db, conn, "post_card", now=ctx.now(), incident_id=incident_id,
                             payload={"conversation_id": conversation_id},
                             once_key=f"post_card:{incident_id}:{conversation_id}",
                             conversation_id=conversation_id)
    ctx.wake_worker()


async def refresh_cards(ctx: Context, conn: AsyncConnection, incident_id: int) -> None:
    """Queue an update for every card of the incident that is already posted."""
    for msg in await conversations.want_refresh(conn, incident_id):
        if not msg["activity_id"]:
            continue  # its post is queued; when done it sees it is behind and updates
        await queue_update(ctx, conn, incident_id, msg)


async def queue_update(ctx: Context, conn: AsyncConnection, incident_id: int,
                       msg: dict[str, Any]) -> None:
    """One pending update per card, no sooner than the update interval after the last."""
    now = ctx.now()
    earliest = (msg["updated_at"] or now) + ctx.policy.card_update_interval
    await outbox.enqueue(ctx.db, conn, "update_card", now=now, incident_id=incident_id,
                         payload={"conversation_id": msg["conversation_id"]},
                         coalesce_key=f"update_card:{incident_id}:{msg['conversation_id']}",
                         conversation_id=msg["conversation_id"], run_after=max(now, earliest))
