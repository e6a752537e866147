"""The help card: every command, grouped the way an on-call engineer reaches for them. The
commands come from the command registry (handlers/commands/registry.py), as (section, [(usage,
summary)]).

Placeholders are written ‹INC-n›, not <INC-n>: FactSet text is Markdown, and Teams (like the Playground)
drops anything that looks like an HTML tag, so `incident ack <INC-n>` would show as `incident ack`.
Each command sits on a line of its own and never breaks inside a word (see `unbroken`)."""
from __future__ import annotations

from typing import Any, Sequence

from cards.common import block, card, execute

# Inside a word of a command a line may not break: a non-breaking hyphen for "-", and a word
# joiner after "|" and "/" (browsers break after them). Lines still break at spaces, between
# words. handlers/commands/parsing.clean_text reads both back as typed.
_KEEP_WHOLE = str.maketrans({"-": "\u2011", "|": "|\u2060", "/": "/\u2060"})


def unbroken(command: str) -> str:
    return command.translate(_KEEP_WHOLE)


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
        for cmd, what in rows:
            # The command on a line of its own, the whole width (a FactSet's title column
            # broke "‹INC-" / "n›" and "histor" / "y"), then what it does.
            body.append(block(unbroken(cmd), fontType="Monospace", spacing="Small"))
            body.append(block(what, isSubtle=True, spacing="None"))
    body.append(block("Levels: " + ", ".join(levels) + " (most to least severe)", isSubtle=True))
    body.append(block("Anyone may acknowledge and add notes; changing what an incident means "
                      "(level, status, links, commander, postmortem) is for its responders.",
                      isSubtle=True))
    return card(body, [execute("Declare an incident", "declare_form", {})])
