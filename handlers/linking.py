"""`incident link` and `incident unlink` (and the card's "Not related" button): people decide
last, and the automatic step never overrides what they decided."""
from __future__ import annotations

from typing import Any

from handlers.commands import Where, _done, _with_incident, command
from handlers.context import Context
from handlers.correlate import LinkRefused, human_link, unlink
from handlers.replies import Reply
from incidents.model import Actor, ref
from storage import incidents as store


@command("link")
async def link_incidents(ctx: Context, actor: Actor, args: dict[str, Any], where: Where) -> Reply:
    async def act(conn, child):
        parent = await store.get(conn, args["parent"], lock=True)
        if parent is None:
            return Reply.refuse(f"{ref(args['parent'])} does not exist.")
        try:
            linked = await human_link(ctx, conn, child, parent, by=actor)
        except LinkRefused as exc:
            return Reply.refuse(str(exc))
        root = f"INC-{linked.parent_id}"
        return await _done(ctx, conn, linked, f"🔗 {child.ref} linked under {root} "
                                              f"({linked.link_kind}).")
    return await _with_incident(ctx, args["incident"], where, act,
                                action="link", actor=actor)


@command("unlink")
async def unlink_incident(ctx: Context, actor: Actor, args: dict[str, Any], where: Where) -> Reply:
    async def act(conn, child):
        try:
            updated = await unlink(ctx, conn, child, by=actor)
        except LinkRefused as exc:
            return Reply.refuse(str(exc))
        return await _done(ctx, conn, updated, f"✂️ {child.ref} is no longer linked; Firebell "
                                               "will not link it automatically again.")
    return await _with_incident(ctx, args["incident"], where, act,
                                action="unlink", actor=actor)
