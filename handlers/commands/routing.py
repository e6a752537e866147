"""Where a team's incidents go: `incident subscribe <team|default> [level>=<level>]` routes them
to this channel (with a filter: only those at that level or more severe; the others are recorded
and listed in the digest), `incident unsubscribe <team|default>` stops that (`… stakeholders <team|all>`: the stakeholder
updates, handlers/commands/stakeholders.py). Routing is for the team's members, incident
commanders and admins; the default channel (incidents of no team) for incident commanders and
admins only (incidents/permissions.py)."""
from __future__ import annotations

from typing import Any, Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncConnection

from handlers.commands.acting import first_time
from handlers.commands.parsing import ParseError
from handlers.commands.registry import Where, command
from handlers.commands.reply import Reply
from handlers.commands.stakeholders import parse_stakeholders, route_stakeholders
from handlers.context import Context
from handlers.effects.incident_cards import post_card_to
from incidents import permissions
from incidents import routing as routing_rules
from incidents.model import Actor
from storage import conversations
from storage import incidents as store
from storage import members


def _parse_team(rest: str, verb: str) -> dict[str, Any]:
    if (stakeholders := parse_stakeholders(rest, verb)) is not None:
        return stakeholders
    if not rest:
        raise ParseError(f"Usage: `incident {verb} <team>` or `incident {verb} default`"
                         + (" (optionally with a filter: `incident subscribe checkout "
                            "level>=high-error-rate`)." if verb == "subscribe" else "."))
    team, _, last = rest.strip().rpartition(" ")
    if verb == "subscribe" and team and last.lower().startswith("level"):
        return {"team": team.strip()[:100], "filter": last}
    return {"team": rest.strip()[:100]}


def _team_key(ctx: Context, word: str) -> str | None:
    if word.lower() == "default":
        return "default"
    found = ctx.catalog.find_team(word)
    return found.key if found else None


def _what(ctx: Context, team: str) -> str:
    if team == "default":
        return "incidents with no owning team or channel"
    return f"{ctx.catalog.teams[team].name} incidents"


def _routing_refusal(ctx: Context, actor: Actor, args: dict[str, Any], where: Where,
                           verb: str) -> tuple[str | None, Reply | None]:
    """The team key, or the reply refusing the routing change."""
    if where.kind != "channel":
        return None, Reply.refuse(f"`incident {verb}` works in a team channel: the incidents "
                                  "of a team are posted in its channel.")
    team = _team_key(ctx, args["team"])
    if team is None:
        return None, Reply.refuse(f"`{args['team'][:40]}` is not a team. Teams: "
                                  + ", ".join(ctx.catalog.teams) + ", or `default`.")
    refused = permissions.subscribe_refusal(actor, team, ctx.catalog, ctx.policy.admins)
    return team, Reply.refuse(refused) if refused else None


@command("subscribe", usage="incident subscribe ‹team|default› [level>=‹level›]",
         summary="Send this team's incidents (at a level or above) to this channel",
         section="Set-up", parse=_parse_team)
async def subscribe(ctx: Context, actor: Actor, args: dict[str, Any], where: Where) -> Reply:
    min_level = None
    if args.get("filter"):
        try:
            min_level = routing_rules.parse_filter(args["filter"], ctx.catalog.levels)
        except ValueError as exc:
            return Reply.refuse(f"{exc}. E.g. `incident subscribe checkout "
                                "level>=high-error-rate`.")

    async def route(conn: AsyncConnection, team: str) -> Reply:
        before = await conversations.subscribe(ctx.db, conn, team=team,
                                               conversation_id=where.conversation_id,
                                               by=actor.label, now=ctx.now(),
                                               min_level=min_level)
        posted = await _post_open_cards(ctx, conn, team, where.conversation_id, min_level)
        moved = " (moved from another channel)" if before and before != where.conversation_id \
            else ""
        extra = f" Posting the {posted} open one(s) now." if posted else ""
        only = (f" at {min_level} or above (less severe ones are only recorded and listed in "
                "the weekly digest)") if min_level else ""
        return Reply(text=f"✅ This channel now gets {_what(ctx, team)}{only}{moved}.{extra}")
    return await _change_routing(ctx, actor, args, where, "subscribe", route)


@command("unsubscribe", usage="incident unsubscribe ‹team|default›",
         summary="Stop sending this team's incidents to this channel", section="Set-up",
         parse=_parse_team)
async def unsubscribe(ctx: Context, actor: Actor, args: dict[str, Any], where: Where) -> Reply:
    async def unroute(conn: AsyncConnection, team: str) -> Reply:
        if not await conversations.unsubscribe(conn, team=team,
                                               conversation_id=where.conversation_id):
            return Reply.refuse(f"This channel does not get {_what(ctx, team)}: nothing to "
                                "stop. `incident subscribe` routes them here.")
        fallback = "" if team == "default" else await conversations.channel_for(conn, team)
        where_now = ("they go to the default channel" if fallback else
                     "they are not posted anywhere until a channel subscribes")
        return Reply(text=f"✅ This channel no longer gets {_what(ctx, team)}; {where_now}. "
                          "Cards already posted here stay and keep updating.")
    return await _change_routing(ctx, actor, args, where, "unsubscribe", unroute)


async def _change_routing(ctx: Context, actor: Actor, args: dict[str, Any], where: Where,
                          verb: str,
                          change: Callable[[AsyncConnection, str], Awaitable[Reply]]) -> Reply:
    if "stakeholders" in args:
        return await route_stakeholders(ctx, actor, args, where, verb)
    team, refused = _routing_refusal(ctx, actor, args, where, verb)
    if refused:
        return refused
    async with ctx.db.write() as conn:
        if not await first_time(ctx, conn, where):
            return Reply(repeated=True)
        reply = await change(conn, team)
    ctx.wake_worker()
    return reply


async def _post_open_cards(ctx: Context, conn: AsyncConnection, team: str,
                           conversation_id: str, min_level: str | None = None) -> int:
    """A newly subscribed channel gets the cards of the team's open root incidents (those its
    filter admits)."""
    if team == "default":
        return 0
    posted = 0
    for incident in await store.list_recent(conn, statuses=["open"], team=team, limit=20,
                                            roots_only=True, visible=members.public_only()):
        if not routing_rules.admits(ctx.catalog.levels, min_level, incident.level):
            continue
        if incident.correlated and await post_card_to(ctx, conn, incident, conversation_id):
            posted += 1
    return posted
