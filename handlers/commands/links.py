"""`incident link INC-child INC-parent` and `incident unlink INC-n` (and the card's "Not
related" button): people decide last, and the automatic step never overrides what they
decided. Links change what an incident means: responders only."""
from __future__ import annotations

from typing import Any

from handlers.commands.acting import act_on_incident, with_card
from handlers.commands.parsing import ParseError, one_ref, ref_only
from handlers.commands.registry import Where, command, incident_from_card
from handlers.commands.reply import Reply
from handlers.context import Context
from handlers.incident.links import LinkRefused, human_link, unlink
from incidents.model import Actor, ref
from storage import incidents as store


def _parse_link(rest: str, verb: str) -> dict[str, Any]:
    parts = rest.split()
    if len(parts) != 2:
        raise ParseError("Usage: `incident link INC-child INC-parent`.")
    return {"incident": one_ref(parts[0], verb), "parent": one_ref(parts[1], verb)}


@command("link", usage="incident link ‹INC-child› ‹INC-parent›",
         summary="Link an incident to its root", section="Follow-ups", parse=_parse_link)
async def link_incidents(ctx: Context, actor: Actor, args: dict[str, Any], where: Where) -> Reply:
    async def act(conn, child):
        parent = await store.get(conn, args["parent"], lock=True)
        if parent is None:
            return Reply.refuse(f"{ref(args['parent'])} does not exist.")
        if child.private or parent.private:
            which = child if child.private else parent
            return Reply.refuse(f"{which.ref} is a private incident: it is not linked to "
                                "other incidents, whose cards and timelines others read.")
        try:
            linked = await human_link(ctx, conn, child, parent, by=actor)
        except LinkRefused as exc:
            return Reply.refuse(str(exc))
        return await with_card(ctx, conn, linked, f"🔗 {child.ref} linked under "
                                                  f"{ref(linked.parent_id)} ({linked.link_kind}).")
    return await act_on_incident(ctx, args["incident"], where, act, action="link", actor=actor)


@command("unlink", usage="incident unlink ‹INC-n›", summary="Undo a link: not related",
         section="Follow-ups", parse=ref_only, aliases=("unlinked",),
         card_verbs={"unlink": incident_from_card})
async def unlink_incident(ctx: Context, actor: Actor, args: dict[str, Any],
                          where: Where) -> Reply:
    async def act(conn, child):
        try:
            updated = await unlink(ctx, conn, child, by=actor)
        except LinkRefused as exc:
            return Reply.refuse(str(exc))
        return await with_card(ctx, conn, updated, f"✂️ {child.ref} is no longer linked; "
                                                   "Firebell will not link it automatically "
                                                   "again.")
    return await act_on_incident(ctx, args["incident"], where, act, action="unlink", actor=actor)
