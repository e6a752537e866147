"""`incident search <words>`: full text over titles, timelines and postmortems. Anyone may."""
from __future__ import annotations

from typing import Any

from cards.search import search_card
from handlers.commands.parsing import ParseError
from handlers.commands.registry import Where, command
from handlers.commands.reply import Reply
from handlers.context import Context
from handlers.reads import privacy
from handlers.reads.search import search
from incidents.model import Actor
from storage import search as index

_USAGE = "Usage: `incident search <words>`, e.g. `incident search payment 503`."


def _parse(rest: str, verb: str) -> dict[str, Any]:
    if not rest.strip():
        raise ParseError(_USAGE)
    return {"query": rest.strip()[:200]}


@command("search", usage="incident search ‹words›",
         summary="Search past incidents and postmortems", section="Look", parse=_parse)
async def search_command(ctx: Context, actor: Actor, args: dict[str, Any], where: Where) -> Reply:
    query = str(args.get("query") or "").strip()
    if not index.terms(query):
        return Reply.refuse(_USAGE)
    result = await search(ctx, query, viewer=privacy.viewer(ctx, actor, where.kind))
    return Reply(card=search_card(query, result.found, more=result.more))
