"""Times and numbers from outside that Firebell's columns and arithmetic can hold.

A time in year 1 or 9999 parses, but converting it to UTC can overflow, and correlation later
subtracts its windows (minutes to days) from an incident's start: a start in year 1 made every
try of that correlation job fail. Nothing Firebell handles happened before 2000 or after 2100,
so that is the accepted range, with room for any window on both sides.
Numbers go into INTEGER columns: 32 bits on PostgreSQL, 64 on SQLite; the smaller one counts.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

EARLIEST = datetime(2000, 1, 1, tzinfo=timezone.utc)
LATEST = datetime(2100, 1, 1, tzinfo=timezone.utc)
ACCEPTED_TIMES = "between 2000-01-01 and 2100-01-01 (UTC)"
INT32 = range(-(2**31), 2**31)


def accepted_time(at: datetime) -> datetime | None:
    """`at` in UTC (naive means UTC), or None outside the accepted range."""
    if at.tzinfo is None:
        at = at.replace(tzinfo=timezone.utc)
    try:
        utc = at.astimezone(timezone.utc)
    except OverflowError:  # 9999-12-31T23:59-05:00 is in year 10000 in UTC
        return None
    return utc if EARLIEST <= utc < LATEST else None


def int32(value: Any) -> int | None:
    """A whole number an INTEGER column holds on every database; None for anything else."""
    if isinstance(value, int) and not isinstance(value, bool) and value in INT32:
        return value
    return None
