"""`incident status`: Firebell's own health and set-up, for incident commanders and admins (it
names settings and shows other teams' failures)."""
from __future__ import annotations

from typing import Any

from cards.status import status_card
from handlers.commands.registry import Where, command
from handlers.commands.reply import Reply
from handlers.context import Context
from handlers.reads import status
from handlers.reads.heartbeats import status_section as heartbeat_section
from incidents import permissions
from incidents.model import Actor


@command("status", usage="incident status",
         summary="Firebell's health: outside systems, outbox, failures, digests, heartbeats "
                 "(incident commanders, admins)", section="Set-up")
async def show_status(ctx: Context, actor: Actor, args: dict[str, Any], where: Where) -> Reply:
    if not permissions.is_commander_or_admin(actor, ctx.catalog, ctx.policy.admins):
        return Reply.refuse(permissions.status_refusal(actor, ctx.catalog, ctx.policy.admins))
    sections = [status.integrations(ctx), status.bridges(ctx), *await status.outbox_sections(ctx),
                await status.digests(ctx)]
    sections += [s for s in [await heartbeat_section(ctx)] if s]
    return Reply(card=status_card(sections))
