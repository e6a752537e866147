"""What a command or card action answers: text, a card, or both."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Reply:
    text: str | None = None
    card: dict[str, Any] | None = None
    incident_id: int | None = None   # the card shows this incident: remember where it was posted
    ok: bool = True
    repeated: bool = False           # a redelivered activity: nothing was done again
    live: bool = False               # the card is the incident's live card here: keep it updated
    below: bool = False              # from a card button: post the card as a new message and
                                     # leave the clicked card (a list, search results) as it was

    @classmethod
    def refuse(cls, text: str, card: dict[str, Any] | None = None) -> "Reply":
        return cls(text=text, card=card, ok=False)
