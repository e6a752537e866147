"""Looking: `incident list`, `incident show`, `incident help`. Anyone may look."""
from __future__ import annotations

from typing import Any

from cards.help import help_card
from cards.incident import incident_card
from cards.listing import incident_list_card
from handlers.commands.parsing import ref_only, words
from handlers.commands.registry import Where, command, help_sections, incident_from_card
from handlers.commands.reply import Reply
from handlers.context import Context
from handlers.reads.views import load_view
from incidents.model import Actor, ref
from storage import incidents as store

SCOPES = ("open", "all", "resolved", "closed")


def _parse_list(rest: str, verb: str) -> dict[str, Any]:
    scope, team = "open", None
    for word in words(rest):
        if word.lower() in SCOPES:
            scope = word.lower()
        else:
            team = word if team is None else f"{team} {word}"
    return {"scope": scope, "team": team}


@command("list", usage="incident list [open|all|resolved|closed] [team]",
         summary="Incidents, newest first", section="Look", parse=_parse_list, aliases=("ls",),
         card_reply=True)
async def list_incidents(ctx: Context, actor: Actor, args: dict[str, Any], where: Where) -> Reply:
    scope, team_word = args.get("scope", "open"), args.get("team")
    team = None
    if team_word:
        found = ctx.catalog.find_team(team_word)
        if found is None:
            return Reply.refuse(f"`{team_word[:40]}` is not a team. Teams: "
                                + ", ".join(ctx.catalog.teams) + ".")
        team = found.key
    statuses = None if scope == "all" else [scope]
    async with ctx.db.read() as conn:
        found_list = await store.list_recent(conn, statuses=statuses, team=team, limit=25)
        total = await store.count(conn, statuses=statuses, team=team)
    heading = f"{scope.capitalize()} incidents" + (f" for {team}" if team else "") + f" ({total})"
    return Reply(card=incident_list_card(found_list, heading=heading, total=total))


@command("show", usage="incident show ‹INC-n›", summary="One incident with its timeline",
         section="Look", parse=ref_only, card_reply=True,
         card_verbs={"show": incident_from_card})
async def show(ctx: Context, actor: Actor, args: dict[str, Any], where: Where) -> Reply:
    async with ctx.db.read() as conn:
        incident = await store.get(conn, args["incident"])
        if incident is None:
            return Reply.refuse(f"{ref(args['incident'])} does not exist.")
        view = await load_view(ctx, conn, incident, with_timeline=True)
    return Reply(card=incident_card(view))


def help_reply(ctx: Context, note: str | None = None) -> Reply:
    return Reply(card=help_card(help_sections(), ctx.catalog.levels.levels, note=note))


@command("help", usage="incident help", summary="This card", section="Set-up",
         aliases=("?", "commands"), card_reply=True)
async def show_help(ctx: Context, actor: Actor, args: dict[str, Any], where: Where) -> Reply:
    return help_reply(ctx)
