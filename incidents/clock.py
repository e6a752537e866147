"""Times people read outside a card (e-mails, the postmortem page, exports, chat text): in the
catalog's time zone, with the zone named, so "14:05" is never ambiguous. (Cards show times in
each reader's own zone instead: cards/common.py `when`.)"""
from __future__ import annotations

from datetime import datetime, timezone, tzinfo


def zoned(at: datetime, tz: tzinfo) -> str:
    """"2025-03-14 15:00 CET" (naive times are UTC, as everywhere in Firebell)."""
    if at.tzinfo is None:
        at = at.replace(tzinfo=timezone.utc)
    local = at.astimezone(tz)
    return f"{local:%Y-%m-%d %H:%M} {local.tzname()}"
