"""How an outside call failed, in the two ways the outbox cares about."""
from __future__ import annotations


class TemporaryFailure(Exception):
    """Try again later (timeouts, 5xx, 429). `retry_after` is the server's own wish, in seconds."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class PermanentFailure(Exception):
    """Retrying will not help (a 4xx other than 429/408): park the job and say why."""


def retry_after_seconds(value: str | None) -> float | None:
    """`Retry-After` as seconds (PagerDuty, Teams, JIRA and Graph all send delta-seconds;
    an HTTP date is accepted too)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime
    from datetime import datetime, timezone
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def classify_status(status: int, body: str, retry_after: str | None, what: str) -> Exception:
    """An HTTP error status as the failure the outbox should see."""
    detail = f"{what}: HTTP {status} {body[:300]}".strip()
    if status in (408, 425, 429) or status >= 500:
        return TemporaryFailure(detail, retry_after_seconds(retry_after))
    return PermanentFailure(detail)
