"""The outbox jobs that post and update incident cards in Teams (queued by handlers.card_queue),
rendering each from the state at run time."""
from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from handlers.card_queue import card_activity, queue_update
from handlers.context import Context
from handlers.jobs import job
from handlers.views import render_card
from incidents.model import Incident
from integrations.errors import PermanentFailure
from storage import conversations, incidents as store
from storage.outbox import Job

log = logging.getLogger("firebell.cards")


@job("post_card")
async def post_card(ctx: Context, job: Job) -> dict[str, Any] | None:
    conversation_id = job.payload["conversation_id"]
    async with ctx.db.read() as conn:
        msg = await conversations.card_message(conn, job.incident_id, conversation_id)
        if msg and msg["activity_id"]:
            return {"activity_id": msg["activity_id"]}  # posted by an earlier attempt
        incident, conv, card = await _render(ctx, conn, job.incident_id, conversation_id)
    activity_id = await ctx.teams.send(conv["service_url"], conversation_id,
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


@job("update_card")
async def update_card(ctx: Context, job: Job) -> dict[str, Any] | None:
    conversation_id = job.payload["conversation_id"]
    async with ctx.db.read() as conn:
        msg = await conversations.card_message(conn, job.incident_id, conversation_id)
        if not msg or not msg["activity_id"]:
            return None
        # No "already current" shortcut: a card also shows things that do not bump the
        # incident's version (a child linked, a follow-up failing), and updates are coalesced.
        incident, conv, card = await _render(ctx, conn, job.incident_id, conversation_id)
    await ctx.teams.update(conv["service_url"], msg["thread_id"] or conversation_id,
                           msg["activity_id"], card_activity(card, _summary(incident)))
    async with ctx.db.write() as conn:
        await conversations.card_updated(conn, msg["id"], rev=msg["wanted_rev"], now=ctx.now())
        await _catch_up(ctx, conn, incident.id, conversation_id)
    return {"activity_id": msg["activity_id"], "version": incident.version}


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


async def _render(ctx: Context, conn: AsyncConnection, incident_id: int, conversation_id: str):
    incident = await store.get(conn, incident_id)
    conv = await conversations.get(conn, conversation_id)
    if incident is None or conv is None:
        raise PermanentFailure(f"INC-{incident_id} or conversation {conversation_id} is gone")
    return incident, conv, await render_card(ctx, conn, incident)


async def _catch_up(ctx: Context, conn: AsyncConnection, incident_id: int,
                    conversation_id: str) -> None:
    """Something changed while we were talking to Teams: queue one more update."""
    msg = await conversations.card_message(conn, incident_id, conversation_id)
    if msg and msg["rendered_rev"] < msg["wanted_rev"]:
        await queue_update(ctx, conn, incident_id, msg)


def _summary(incident: Incident) -> str:
    return f"{incident.ref} {incident.status}: {incident.title}"

