"""What every webhook door produces: a Delivery (zero or more AlertEvents) or a Rejection."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from incidents.limits import ACCEPTED_TIMES, accepted_time
from incidents.alerts import AlertEvent


class Rejected(Exception):
    """The sender's mistake: answer `status` with `reason`, store nothing."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class Delivery:
    source: str
    delivery_id: str | None           # X-Webhook-Id when the sender gives one
    events: tuple[AlertEvent, ...]
    ignored: tuple[str, ...] = ()     # event types we received but do not act on
    beats: tuple[str, ...] = ()       # heartbeats this delivery beats (Alertmanager's Watchdog)


def parse_time(value: Any, where: str) -> datetime:
    """A time the event cannot do without: malformed or out of range is the sender's mistake."""
    parsed = _iso(value, where)
    at = accepted_time(parsed)
    if at is None:
        raise Rejected(400, f"{where} must be {ACCEPTED_TIMES}, not {value[:40]!r}")
    return at


def optional_time(value: Any, where: str, originals: dict[str, str], key: str
                  ) -> datetime | None:
    """A time that only adds detail: out of range, it is left out and what was sent is kept in
    `originals[key]` (the incident's details show it). Malformed is still a 400."""
    if not value:
        return None
    at = accepted_time(_iso(value, where))
    if at is None:
        originals[key] = value[:100]
    return at


def _iso(value: Any, where: str) -> datetime:
    if not isinstance(value, str):
        raise Rejected(400, f"{where} must be an ISO 8601 timestamp")
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise Rejected(400, f"{where} is not an ISO 8601 timestamp: {value[:40]!r}") from None


def text(value: Any, limit: int) -> str | None:
    """Optional string fields: anything else is dropped, and length is capped so one huge field
    cannot blow up a card or a row."""
    if value is None or isinstance(value, (dict, list)):
        return None
    s = str(value).strip()
    return s[:limit] if s else None


def mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def listing(value: Any) -> list[Any]:
    """A sender's list, or none: `"assignments": true` is a malformed field, not a crash."""
    return value if isinstance(value, list) else []
