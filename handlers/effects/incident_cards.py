"""Incident cards in Teams: posted once per conversation, then that same message is updated in
place. Both ends live here: the queue functions the write path calls, and the two outbox jobs
that talk to Teams, rendering the card from the state at run time.

Updates are coalesced: one pending update per card, run no sooner than `card_update_interval`
after the previous one, so a burst of changes becomes one update carrying them all.
"""
from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from handlers.context import Context
from handlers.effects.registry import Clients, effect
from handlers.reads.views import render_card
from incidents.model import Incident, ref
from integrations.errors import PermanentFailure
from storage import conversations, outbox
from storage import incidents as store
from storage.outbox import Job

log = logging.getLogger("firebell.cards")
KINDS = ("post_card", "update_card")


def card_activity(card: dict[str, Any], summary: str) -> dict[str, Any]:
    return {"type": "message", "summary": summary[:200], "attachments": [
        {"contentType": "application/vnd.microsoft.card.adaptive", "content": card}]}


# -- queued by the write path -------------------------------------------------------------------

async def post_card_to(ctx: Context, conn: AsyncConnection, incident: Incident,
                       conversation_id: str) -> bool:
    """Queue the incident's card for a conversation, unless it already has (or will have) one."""
    if not await conversations.add_card_message(ctx.db, conn, incident.id, conversation_id):
        return False
    await _queue_post(ctx, conn, incident.id, conversation_id)
    return True


async def queue_reserved_card(ctx: Context, incident_id: int, conversation_id: str) -> None:
    """The command's reply carrying the card failed: post it through the outbox instead."""
    async with ctx.db.write() as conn:
        await _queue_post(ctx, conn, incident_id, conversation_id)
    ctx.wake_worker()


async def _queue_post(ctx: Context, conn: AsyncConnection, incident_id: int,
                      conversation_id: str) -> None:
    await outbox.enqueue(ctx.db, conn, "post_card", now=ctx.now(), incident_id=incident_id,
                         payload={"conversation_id": conversation_id},
                         once_key=f"post_card:{incident_id}:{conversation_id}",
                         conversation_id=conversation_id)


async def refresh_cards(ctx: Context, conn: AsyncConnection, incident_id: int) -> None:
    """Queue an update for every card of the incident that is already posted."""
    for msg in await conversations.want_refresh(conn, incident_id):
        if not msg["activity_id"]:
            continue  # its post is queued; when done it sees it is behind and updates
        await queue_update(ctx, conn, incident_id, msg)


async def refresh_children_cards(ctx: Context, conn: AsyncConnection, parent_id: int) -> None:
    """What a child's card shows of its root changed: update the children's posted cards."""
    for msg in await conversations.want_refresh_children(conn, parent_id):
        if msg["activity_id"]:
            await queue_update(ctx, conn, msg["incident_id"], msg)


async def queue_update(ctx: Context, conn: AsyncConnection, incident_id: int,
                       msg: dict[str, Any]) -> None:
    """One pending update per card, no sooner than the update interval after the last."""
    now = ctx.now()
    earliest = (msg["updated_at"] or now) + ctx.policy.card_update_interval
    await outbox.enqueue(ctx.db, conn, "update_card", now=now, incident_id=incident_id,
                         payload={"conversation_id": msg["conversation_id"]},
                         coalesce_key=f"update_card:{incident_id}:{msg['conversation_id']}",
                         conversation_id=msg["conversation_id"], run_after=max(now, earliest))


async def remember_reply_card(ctx: Context, incident_id: int, conversation_id: str,
                              thread_id: str | None, activity_id: str) -> None:
    """The bot answered a command with the incident's card: that message is the card to keep
    updating in this conversation (unless the conversation already had one)."""
    async with ctx.db.write() as conn:
        await conversations.add_card_message(ctx.db, conn, incident_id, conversation_id)
        msg = await conversations.card_message(conn, incident_id, conversation_id)
        if msg["activity_id"]:
            return
        # The reply rendered the card as it was when the slot was made (revision 0).
        await conversations.card_posted(conn, msg["id"], activity_id=activity_id, rev=0,
                                        now=ctx.now(), thread_id=thread_id)
        await _catch_up(ctx, conn, incident_id, conversation_id)


# -- the jobs -----------------------------------------------------------------------------------

@effect("post_card", system="teams", shown_as="Teams")
async def post_card(ctx: Context, clients: Clients, job: Job) -> dict[str, Any] | None:
    conversation_id = job.payload["conversation_id"]
    async with ctx.db.read() as conn:
        msg = await conversations.card_message(conn, job.incident_id, conversation_id)
        if msg and msg["activity_id"]:
            return {"activity_id": msg["activity_id"]}  # posted by an earlier attempt
        incident, conv, card = await _render(ctx, conn, job.incident_id, conversation_id)
    activity_id = await clients.teams.send(conv["service_url"], conversation_id,
                                           card_activity(card, _summary(incident)))

    async def record(conn):
        await conversations.card_posted(conn, msg["id"], activity_id=activity_id,
                                        rev=msg["wanted_rev"], now=ctx.now())
        await _catch_up(ctx, conn, incident.id, conversation_id)
    # The card is in Teams now, and Teams cannot tell us later that it is: if its id is not
    # stored, the retry posts a second card. So a database that is briefly unreachable is
    # waited for while the job is still ours.
    await ctx.db.write_patiently(record, for_seconds=job.lease_left(ctx.now()))
    log.info("card posted", extra={"incident": incident.ref, "conversation": conversation_id})
    return {"activity_id": activity_id}


@effect("update_card", system="teams")
async def update_card(ctx: Context, clients: Clients, job: Job) -> dict[str, Any] | None:
    conversation_id = job.payload["conversation_id"]
    async with ctx.db.read() as conn:
        msg = await conversations.card_message(conn, job.incident_id, conversation_id)
        if not msg or not msg["activity_id"]:
            return None
        # No "already current" shortcut: a card also shows things that do not bump the
        # incident's version (a child linked, a follow-up failing), and updates are coalesced.
        incident, conv, card = await _render(ctx, conn, job.incident_id, conversation_id)
    await clients.teams.update(conv["service_url"], msg["thread_id"] or conversation_id,
                               msg["activity_id"], card_activity(card, _summary(incident)))
    async with ctx.db.write() as conn:
        await conversations.card_updated(conn, msg["id"], rev=msg["wanted_rev"], now=ctx.now())
        await _catch_up(ctx, conn, incident.id, conversation_id)
    return {"activity_id": msg["activity_id"], "version": incident.version}


async def _render(ctx: Context, conn: AsyncConnection, incident_id: int, conversation_id: str):
    incident = await store.get(conn, incident_id)
    conv = await conversations.get(conn, conversation_id)
    if incident is None or conv is None:
        raise PermanentFailure(f"{ref(incident_id)} or conversation {conversation_id} is gone")
    return incident, conv, await render_card(ctx, conn, incident)


async def _catch_up(ctx: Context, conn: AsyncConnection, incident_id: int,
                    conversation_id: str) -> None:
    """Something changed while we were talking to Teams: queue one more update."""
    msg = await conversations.card_message(conn, incident_id, conversation_id)
    if msg and msg["rendered_rev"] < msg["wanted_rev"]:
        await queue_update(ctx, conn, incident_id, msg)


def _summary(incident: Incident) -> str:
    return f"{incident.ref} {incident.status}: {incident.title}"
