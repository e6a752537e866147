"""`incident subscribe stakeholders <team|all>` (and `unsubscribe`): a channel where people who
do not work the incident (support, account managers, leadership) read its stakeholder updates,
one message per update. Parsed here, reached from `incident subscribe` (routing.py), so the
routing command keeps one verb."""
from __future__ import annotations

from typing import Any

from handlers.commands.acting import first_time
from handlers.commands.parsing import ParseError
from handlers.commands.registry import Where
from handlers.commands.reply import Reply
from handlers.context import Context
from incidents import permissions
from incidents.model import Actor
from storage import updates

_WORDS = ("stakeholders", "stakeholder")


def parse_stakeholders(rest: str, verb: str) -> dict[str, Any] | None:
    """`stakeholders <team|all>` -> {"stakeholders": "<team|all>"}; None for anything else."""
    head, _, scope = rest.strip().partition(" ")
    if head.lower() not in _WORDS:
        return None
    if not scope.strip():
        raise ParseError(f"Usage: `incident {verb} stakeholders <team>` or `incident {verb} "
                         "stakeholders all`: this channel gets (or stops getting) the "
                         "stakeholder updates of that team's incidents, or of every team's.")
    return {"stakeholders": scope.strip()[:100]}


async def route_stakeholders(ctx: Context, actor: Actor, args: dict[str, Any], where: Where,
                             verb: str) -> Reply:
    if where.kind != "channel":
        return Reply.refuse(f"`incident {verb} stakeholders` works in a team channel.")
    word = args["stakeholders"]
    team = ctx.catalog.find_team(word)
    scope = updates.ALL if word.lower() == updates.ALL else (team.key if team else None)
    if scope is None:
        return Reply.refuse(f"`{word[:40]}` is not a team. Teams: "
                            + ", ".join(ctx.catalog.teams) + ", or `all`.")
    refused = permissions.stakeholders_refusal(actor, scope, ctx.catalog, ctx.policy.admins)
    if refused:
        return Reply.refuse(refused)
    what = ("every team's stakeholder updates" if scope == updates.ALL
            else f"the stakeholder updates of {ctx.catalog.team_name(scope)} incidents")
    async with ctx.db.write() as conn:
        if not await first_time(ctx, conn, where):
            return Reply(repeated=True)
        if verb == "subscribe":
            added = await updates.subscribe(ctx.db, conn, scope=scope,
                                            conversation_id=where.conversation_id,
                                            by=actor.label, now=ctx.now())
            return Reply(text=f"✅ This channel now gets {what}." if added else
                         f"This channel already gets {what}.")
        if not await updates.unsubscribe(conn, scope=scope,
                                         conversation_id=where.conversation_id):
            return Reply.refuse(f"This channel does not get {what}: nothing to stop.")
        return Reply(text=f"✅ This channel no longer gets {what}.")
