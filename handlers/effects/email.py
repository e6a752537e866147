"""An e-mail, once per key: digests, reports, reminders. (Incident e-mails, rendered at send
time, are handlers/effects/incident_email.py.)"""
from __future__ import annotations

import base64
from typing import Any, Sequence

from sqlalchemy.ext.asyncio import AsyncConnection

from handlers.context import Context
from handlers.effects.registry import Clients, effect
from integrations.errors import PermanentFailure
from integrations.mailer import Email
from storage import outbox
from storage.outbox import Job


async def queue_email(ctx: Context, conn: AsyncConnection, *, to: Sequence[str],
                      subject: str, text: str, html: str, once_key: str,
                      cc: Sequence[str] = (), images: Sequence[tuple[str, bytes]] = (),
                      incident_id: int | None = None) -> bool:
    """Send an e-mail, once for `once_key`. Its Message-ID derives from the job, so a copy
    re-sent after a crash is recognisably the same message. Without SMTP configured nothing is
    queued (False)."""
    if not ctx.configured.email:
        return False
    return await outbox.enqueue(ctx.db, conn, "send_email", now=ctx.now(),
                                incident_id=incident_id, once_key=once_key, payload={
                                    "to": list(to), "cc": list(cc), "subject": subject,
                                    "text": text, "html": html, "once_key": once_key,
                                    "images": [[cid, base64.b64encode(png).decode()]
                                               for cid, png in images]})


@effect("send_email", system="smtp")
async def send_email(ctx: Context, clients: Clients, job: Job) -> dict[str, Any]:
    if clients.mailer is None:
        raise PermanentFailure("SMTP is not configured (SMTP_HOST)")
    p = job.payload
    message_id = await clients.mailer.send(Email(
        to=p["to"], cc=p.get("cc") or (), subject=p["subject"], text=p["text"],
        html=p.get("html"), message_id=f"<firebell.job{job.id}@firebell>",
        inline_images=[(cid, base64.b64decode(data)) for cid, data in p.get("images") or []]))
    return {"message_id": message_id}
