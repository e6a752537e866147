"""What every command that acts on one incident does the same way: load it (locked), check the
actor may, skip a redelivered activity, run the act, and commit only if it was done: a refused
act commits nothing, not even the event's natural id (the same button, clicked again once the
reason for the refusal is gone, must run and not be taken for a Teams retry)."""
from __future__ import annotations

from typing import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncConnection

from handlers.commands.registry import Where
from handlers.commands.reply import Reply
from handlers.context import Context
from handlers.reads import privacy
from handlers.reads.views import render_card
from incidents import permissions
from incidents.lifecycle import IllegalTransition
from incidents.model import Actor, Incident, ref
from storage import inbound
from storage import incidents as store

Act = Callable[[AsyncConnection, Incident], Awaitable[Reply]]


class _Refused(Exception):
    def __init__(self, reply: Reply):
        self.reply = reply


async def first_time(ctx: Context, conn: AsyncConnection, where: Where) -> bool:
    """False for an activity handled before (Teams redelivers; so do impatient people)."""
    if not where.event_key:
        return True
    return await inbound.first_time(ctx.db, conn, "teams:" + where.event_key[:280], ctx.now())


async def act_on_incident(ctx: Context, incident_id: int, where: Where, act: Act, *,
                          actor: Actor, action: str | None = None) -> Reply:
    """Load the incident (locked), check the actor may see it here (a private incident) and
    may do `action` (a responder's act), run `act`, commit; a refusal (from here or from
    `act`) commits nothing."""
    try:
        async with ctx.db.write() as conn:
            incident = await store.get(conn, incident_id, lock=True)
            if incident is None:
                return Reply.refuse(f"{ref(incident_id)} does not exist. "
                                    "`incident list` shows the open ones.")
            hidden = await privacy.refusal(ctx, conn, incident, actor, where.conversation_id,
                                           where.kind)
            if hidden:
                return Reply.refuse(hidden)
            if action and not permissions.may_act(action, actor, incident,
                                                            ctx.catalog, ctx.policy.admins):
                return Reply.refuse(permissions.refusal(action, actor, incident, ctx.catalog))
            if not await first_time(ctx, conn, where):
                return Reply(repeated=True, card=await render_card(ctx, conn, incident),
                             incident_id=incident.id)
            try:
                reply = await act(conn, incident)
            except IllegalTransition as exc:
                reply = Reply.refuse(str(exc))
            if not reply.ok:
                raise _Refused(reply)
    except _Refused as refused:
        return refused.reply
    ctx.wake_worker()
    return reply


async def with_card(ctx: Context, conn: AsyncConnection, incident: Incident, text: str) -> Reply:
    """Done: `text`, and the incident's card as it is now."""
    current = await store.get(conn, incident.id)
    return Reply(text=text, card=await render_card(ctx, conn, current), incident_id=incident.id)
