"""Short answers as cards: an error or a confirmation, with an optional hint."""
from __future__ import annotations

from typing import Any

from cards.common import block, card, plain


def notice_card(text: str, *, ok: bool = True, hint: str | None = None) -> dict[str, Any]:
    body = [{"type": "Container", "style": "good" if ok else "attention", "items": [
        block(("✅ " if ok else "⚠️ ") + ("Done" if ok else "Not done"), weight="Bolder"),
        plain(text, limit=1000)]}]
    if hint:
        body.append(block(hint, isSubtle=True))
    return card(body)
