"""Durations as the catalog and commands write them: `90s`, `5m`, `2h`, `1h30m`."""
from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

_DURATION = re.compile(r"^(?:(\d{1,6})h)?(?:(\d{1,6})m)?(?:(\d{1,6})s)?$")


def parse_duration(value: Any) -> timedelta | None:
    """`90s`, `5m`, `2H`, `1h30m` -> a timedelta; None for anything else (a bare number
    included: seconds or minutes would be a guess)."""
    text = str(value).strip().lower() if isinstance(value, (str, int)) else ""
    m = _DURATION.match(text)
    if not text or not m or not any(m.groups()):
        return None
    hours, minutes, seconds = (int(g or 0) for g in m.groups())
    return timedelta(hours=hours, minutes=minutes, seconds=seconds)


def format_duration(span: timedelta) -> str:
    """A timedelta as `parse_duration` reads it back: `1h30m`, `90s` → `1m30s`."""
    seconds = int(span.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    text = "".join(f"{n}{unit}" for n, unit in ((hours, "h"), (minutes, "m"), (seconds, "s"))
                   if n)
    return text or "0s"
