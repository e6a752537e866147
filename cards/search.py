"""Search results: newest first, each with links to its card in Teams, PagerDuty and its
postmortem."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from cards.common import LEVEL_ICON, block, card, link, plain, when
from incidents.model import Incident


@dataclass(frozen=True)
class Found:
    incident: Incident
    teams_url: str | None = None
    postmortem_url: str | None = None


def search_card(query: str, found: Sequence[Found], *, more: bool) -> dict[str, Any]:
    body: list[dict] = [block("🔎 **Search**", size="Medium"),
                        plain(f"“{query}”", limit=200, subtle=True)]
    if not found:
        body.append(block("No incident, timeline or postmortem mentions all of those words. "
                          "Try fewer or other words.", isSubtle=True))
    for n, f in enumerate(found):
        i = f.incident
        links = [a for a in (link("Open in Teams", f.teams_url),
                             link("Postmortem", f.postmortem_url),
                             link("PagerDuty", i.html_url)) if a]
        for k, action in enumerate(links):
            action["id"] = f"result-{n}-link-{k}"
        items = [block(f"{LEVEL_ICON.get(i.level, '⚪')} **{i.ref}** · {i.status} · {i.level} · "
                       f"{when(i.triggered_at)}"),
                 plain(f"{i.service or 'unknown service'} — {i.title}", limit=200)]
        if links:
            items.append({"type": "ActionSet", "actions": links[:6]})
        body.append({"type": "Container", "separator": True, "id": f"result-{n}", "items": items})
    if more:
        body.append(block("Newest first; older matches not shown. Add words to narrow it down.",
                          isSubtle=True))
    return card(body)
