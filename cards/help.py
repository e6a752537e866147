"""The help card: every command, grouped the way an on-call engineer reaches for them. The
commands come from the command registry (handlers/commands/registry.py), as (section, [(usage,
summary)]).

Placeholders are written ‹INC-n›, not <INC-n>: FactSet text is Markdown, and Teams (like the Playground)
drops anything that looks like an HTML tag, so `incident ack <INC-n>` would show as `incident ack`."""
from __future__ import annotations

from typing import Any, Sequence

from cards.common import block, card, execute

Sections = Sequence[tuple[str, Sequence[tuple[str, str]]]]


def help_card(sections: Sections, levels: Sequence[str],
              note: str | None = None) -> dict[str, Any]:
    body: list[dict] = [block("🔥 **Firebell** — incidents in Teams", size="Large",
                              weight="Bolder")]
    if note:
        body.append(block(note, color="Attention"))
    body.append(block("Type commands with or without the leading slash; in a channel, "
                      "@mention Firebell first. Incident ids: INC-7, inc-7 or 7.", isSubtle=True))
    for group, rows in sections:
        body.append(block(f"**{group}**", spacing="Medium"))
        body.append({"type": "FactSet", "facts": [{"title": cmd, "value": what}
                                                  for cmd, what in rows]})
    body.append(block("Levels: " + ", ".join(levels) + " (most to least severe)", isSubtle=True))
    body.append(block("Anyone may acknowledge and add notes; changing what an incident means "
                      "(level, status, links, commander, postmortem) is for its responders.",
                      isSubtle=True))
    return card(body, [execute("Declare an incident", "declare_form", {})])
