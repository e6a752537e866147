"""What every webhook door produces: a Delivery (zero or more AlertEvents) or a Rejection."""
from __future__ import annotations

import orjson
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

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


def parse_json_object(body: bytes) -> dict[str, Any]:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise Rejected(400, f"body is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise Rejected(400, "body must be a JSON object")
    return doc


def parse_time(value: Any, where: str) -> datetime:
    if not isinstance(value, str):
        raise Rejected(400, f"{where} must be an ISO 8601 timestamp")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise Rejected(400, f"{where} is not an ISO 8601 timestamp: {value[:40]!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


def text(value: Any, limit: int) -> str | None:
    """Optional string fields: anything else is dropped, and length is capped so one huge field
    cannot blow up a card or a row."""
    if value is None or isinstance(value, (dict, list)):
        return None
    s = str(value).strip()
    return s[:limit] if s else None


def mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
