"""The declare form: what `incident declare` with no title opens."""
from __future__ import annotations

from typing import Any, Sequence

from cards.common import block, card, execute, plain

TITLE_LIMIT = 250


def declare_form(services: Sequence[str], levels: Sequence[str], *, title: str = "",
                 error: str | None = None) -> dict[str, Any]:
    body: list[dict] = [block("🔥 **Declare an incident**", size="Medium")]
    if error:
        body.append(plain(error, limit=1000, color="Attention"))  # quotes what was typed: no Markdown
    body += [
        {"type": "Input.Text", "id": "title", "label": "What is broken?", "isRequired": True,
         "maxLength": TITLE_LIMIT, "value": title, "placeholder": "checkout is down",
         "errorMessage": "A short title is required"},
        # Nothing chosen (the placeholder) sends "": Firebell guesses. A choice whose value is ""
        # is invalid for the Adaptive Cards SDK (PropertyCantBeNull), so there is none.
        {"type": "Input.ChoiceSet", "id": "service", "label": "Service", "style": "compact",
         "placeholder": "(let Firebell guess)",
         "choices": [{"title": s, "value": s} for s in services]},
        {"type": "Input.ChoiceSet", "id": "level", "label": "Level", "style": "compact",
         "placeholder": "(from the title)",
         "choices": [{"title": lv, "value": lv} for lv in levels]},
    ]
    return card(body, [execute("Declare", "declare", {}, style="destructive")])
