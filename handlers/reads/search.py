"""Full-text search over titles, timelines and postmortems, newest first."""
from __future__ import annotations

from dataclasses import dataclass

from cards.search import Found
from handlers.context import Context
from handlers.reads import links
from handlers.reads.privacy import PUBLIC, Viewer
from storage import incidents as store
from storage import members
from storage import postmortems as pm_store
from storage import search as index

RESULTS = 10


@dataclass(frozen=True)
class SearchResult:
    found: list[Found]
    more: bool


async def search(ctx: Context, query: str, *, limit: int = RESULTS,
                 viewer: Viewer = PUBLIC) -> SearchResult:
    """Incidents matching all the words first (newest first), then those matching any of them;
    private incidents only for their members (and admins)."""
    async with ctx.db.read() as conn:
        hidden = await members.hidden_ids(conn, viewer.email, admin=viewer.admin)
        every = [i for i in await index.search(conn, query, limit=limit + 1 + len(hidden))
                 if i not in hidden]
        some: list[int] = []
        if len(every) <= limit and len(index.terms(query)) > 1:
            some = [i for i in await index.search(
                conn, query, limit=limit + 1 + len(every) + len(hidden), match=index.MATCH_ANY)
                if i not in every and i not in hidden]
        ids = every + some
        shown = ids[:limit]
        incidents = await store.get_many(conn, shown)
        cards = await links.cards_in_channels(conn, shown)
        postmortems = await pm_store.links_of(conn, shown)
    all_words = set(every)
    found = [Found(incidents[i], teams_url=cards.get(i),
                   postmortem_url=links.postmortem_page(ctx, postmortems.get(i)),
                   all_words=i in all_words)
             for i in shown if i in incidents]
    return SearchResult(found, more=len(ids) > limit)
