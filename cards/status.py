"""The `incident status` card, for incident commanders and admins: is Firebell healthy and fully
set up? Which outside systems are configured (and what to set where one is not), how deep the
outbox is, what failed for good, when the last digest went out. Each section is a (title, rows)
pair, so a new capability adds its own section."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from cards.common import block, card, plain


@dataclass(frozen=True)
class StatusRow:
    name: str
    state: str
    problem: bool = False          # shown in the Attention colour


@dataclass(frozen=True)
class StatusSection:
    title: str
    rows: Sequence[StatusRow]
    note: str | None = None        # one line under the section, e.g. "nothing parked"


def status_card(sections: Sequence[StatusSection]) -> dict[str, Any]:
    body: list[dict] = [block("🩺 **Firebell status**", size="Large", weight="Bolder")]
    for section in sections:
        body.append(block(f"**{section.title}**", spacing="Medium"))
        for row in section.rows:  # plain text runs: states name settings like JIRA_URL
            state = {"type": "TextRun", "text": row.state[:400]}
            if row.problem:
                state["color"] = "Attention"
            body.append({"type": "RichTextBlock", "inlines": [
                {"type": "TextRun", "text": f"{row.name}: ", "weight": "Bolder"}, state]})
        if section.note:
            body.append(plain(section.note, limit=300, subtle=True))
    return card(body)
