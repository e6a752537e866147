"""`incident search <words>`: full text over titles, timelines and postmortems, newest first."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from cards.search import Found, search_card
from handlers.commands import Where, command
from handlers.context import Context
from handlers.postmortems import page_url
from handlers.replies import Reply
from incidents.model import Actor
from storage import incidents as store
from storage import postmortems as pm_store
from storage import search as index

RESULTS = 10


@dataclass(frozen=True)
class SearchResult:
    found: list[Found]
    more: bool


async def search(ctx: Context, query: str, *, limit: int = RESULTS) -> SearchResult:
    async with ctx.db.read() as conn:
        ids = await index.search(conn, query, limit=limit + 1)
        shown = ids[:limit]
        incidents = await store.get_many(conn, shown)
        cards = await index.card_links(conn, shown)
        postmortems = await pm_store.links_of(conn, shown)
    found = [Found(incidents[i], teams_url=_teams_url(cards.get(i)),
                   postmortem_url=page_url(ctx, postmortems.get(i)))
             for i in shown if i in incidents]
    return SearchResult(found, more=len(ids) > limit)


def _teams_url(where: tuple[str, str] | None) -> str | None:
    if where is None:
        return None
    channel, message = where
    return (f"https://teams.microsoft.com/l/message/{quote(channel, safe='')}/{message}"
            f"?parentMessageId={message}")


@command("search")
async def search_command(ctx: Context, actor: Actor, args: dict[str, Any], where: Where) -> Reply:
    query = str(args.get("query") or "").strip()
    if not index.terms(query):
        return Reply.refuse("Usage: `incident search <words>`, e.g. "
                            "`incident search payment 503`.")
    result = await search(ctx, query)
    return Reply(card=search_card(query, result.found, more=result.more))
