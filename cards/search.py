"""Search results: those matching every word first, then those matching some, newest first in
each; each with a Show button and links to its card in Teams, PagerDuty and its postmortem."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from cards.common import LEVEL_ICON, block, card, execute, link, plain, when
from incidents.model import Incident


@dataclass(frozen=True)
class Found:
    incident: Incident
    teams_url: str | None = None
    postmortem_url: str | None = None
    all_words: bool = True    # matched every word of the query (else some of them)


def search_card(query: str, found: Sequence[Found], *, more: bool) -> dict[str, Any]:
    body: list[dict] = [block("🔎 **Search**", size="Medium"),
                        plain(f"“{query}”", limit=200, subtle=True)]
    if not found:
        body.append(block("No incident, timeline or postmortem mentions those words. "
                          "Try fewer or other words.", isSubtle=True))
    some_words = False
    for n, f in enumerate(found):
        if not f.all_words and not some_words:
            some_words = True
            body.append(block("**Matching some of the words**", spacing="Medium"))
        body.append(_hit(n, f))
    if more:
        body.append(block("Newest first; older matches not shown. Add words to narrow it down.",
                          isSubtle=True))
    return card(body)


def _hit(n: int, f: Found) -> dict:
    i = f.incident
    actions = [execute("Show", "show", {"incident": i.ref})]
    actions += [a for a in (link("Open in Teams", f.teams_url), link("Postmortem", f.postmortem_url),
                            link("PagerDuty", i.html_url)) if a]
    for k, action in enumerate(actions):
        action["id"] = f"result-{n}-action-{k}"
    items = [block(f"{LEVEL_ICON.get(i.level, '⚪')} **{i.ref}** · {i.status} · {i.level} · "
                   f"{when(i.triggered_at)}"),
             plain(f"{i.service or 'unknown service'} — {i.title}", limit=200),
             {"type": "ActionSet", "actions": actions[:6]}]
    return {"type": "Container", "separator": True, "id": f"result-{n}", "items": items}
