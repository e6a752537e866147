"""Generic deliveries through the outbox: a card posted to a Teams conversation, an e-mail.
Digests, reminders and summaries queue these; the worker sends them."""
from __future__ import annotations

import base64
from typing import Any, Sequence

from sqlalchemy.ext.asyncio import AsyncConnection

from handlers.card_queue import card_activity
from handlers.context import Context
from handlers.jobs import job
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


async def queue_email(ctx: Context, conn: AsyncConnection, *, to: Sequence[str],
                      subject: str, text: str, html: str, once_key: str,
                      cc: Sequence[str] = (), images: Sequence[tuple[str, bytes]] = (),
                      incident_id: int | None = None) -> bool:
    """Send an e-mail, once for `once_key`. Its Message-ID derives from the job, so a copy
    re-sent after a crash is recognisably the same message. Without SMTP configured nothing is
    queued (False)."""
    if ctx.mailer is None:
        return False
    return await outbox.enqueue(ctx.db, conn, "send_email", now=ctx.now(),
                                incident_id=incident_id, once_key=once_key, payload={
                                    "to": list(to), "cc": list(cc), "subject": subject,
                                    "text": text, "html": html, "once_key": once_key,
                                    "images": [[cid, base64.b64encode(png).decode()]
                                               for cid, png in images]})


@job("post_message")
async def post_message(ctx: Context, job: Job) -> dict[str, Any]:
    conversation_id = job.payload["conversation_id"]
    async with ctx.db.read() as conn:
        conv = await conversations.get(conn, conversation_id)
    if conv is None:
        raise PermanentFailure(f"conversation {conversation_id} is unknown to Firebell")
    activity_id = await ctx.teams.send(conv["service_url"], conversation_id,
                                       card_activity(job.payload["card"], job.payload["summary"]))
    return {"activity_id": activity_id}


@job("send_email")
async def send_email(ctx: Context, job: Job) -> dict[str, Any]:
    from integrations.mailer import Email

    if ctx.mailer is None:
        raise PermanentFailure("SMTP is not configured (SMTP_HOST)")
    p = job.payload
    message_id = await ctx.mailer.send(Email(
        to=p["to"], cc=p.get("cc") or (), subject=p["subject"], text=p["text"],
        html=p.get("html"), message_id=f"<firebell.job{job.id}@firebell>",
        inline_images=[(cid, base64.b64decode(data)) for cid, data in p.get("images") or []]))
    return {"message_id": message_id}
