"""Incident metrics: the rules behind digests, reports and stats. Pure; the SQL that feeds them
lives in storage/reports.py and aggregates in the database.

Definitions (also in the README):
- Only root incidents count. Duplicates and cascade children are folded into their root: they
  are listed as "linked" but add nothing to counts by level/service, MTTA, MTTR or impact.
- An incident belongs to the period in which it was *triggered* (PagerDuty's convention), so its
  MTTA and MTTR are those of the period's incidents. "Resolved" and "closed" count the incidents
  resolved or closed during the period, whenever they started; "still open" counts incidents
  open at the period's end.
- MTTA: from trigger to the *first* acknowledgement, over the incidents that were acknowledged.
  A reopen does not reset it.
- MTTR: from trigger to the *final* resolve (a reopened incident resolves again later), over
  resolved incidents.
- Median and p90 use linear interpolation between ranks (PostgreSQL's percentile_cont).
- Business impact: the root service's revenue_per_minute_usd x minutes of customer impact
  (trigger -> resolve, or the RCA's impact_minutes when given). An incident still open counts up
  to the end of the period, or up to now for a period that has not ended.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Iterable, Mapping

MEDIAN, P90 = 0.5, 0.9
# Percentiles as fractions, so the SQL can find the two ranks around each one in integers.
FRACTIONS = {MEDIAN: (1, 2), P90: (9, 10)}


def rank_bounds(n: int, p: float) -> tuple[int, int]:
    """0-based ranks (lower, upper) whose values interpolate the p-th percentile of n values.
    Mirrors the integer arithmetic in storage/reports.py."""
    num, den = FRACTIONS[p]
    return (n - 1) * num // den, ((n - 1) * num + den - 1) // den


def interpolate(n: int, p: float, lower: float, upper: float) -> float:
    """percentile_cont: the value at fractional rank (n-1)*p between its two neighbours."""
    lo, _ = rank_bounds(n, p)
    return lower + ((n - 1) * p - lo) * (upper - lower)


def percentile(values: Iterable[float], p: float) -> float | None:
    """Reference implementation over a list (tests, and small in-memory sets)."""
    ordered = sorted(values)
    if not ordered:
        return None
    lo, hi = rank_bounds(len(ordered), p)
    return interpolate(len(ordered), p, ordered[lo], ordered[hi])


@dataclass(frozen=True)
class Percentiles:
    n: int = 0
    median: float | None = None   # seconds
    p90: float | None = None      # seconds

    @classmethod
    def from_ranks(cls, n: int, at_rank: Mapping[int, float]) -> "Percentiles":
        """From the few ranked values the SQL returned for one group."""
        def value(p: float) -> float | None:
            lo, hi = rank_bounds(n, p)
            if lo not in at_rank or hi not in at_rank:
                return None
            return interpolate(n, p, at_rank[lo], at_rank[hi])
        return cls(n, value(MEDIAN), value(P90)) if n else cls()


@dataclass
class Figures:
    """What happened in one scope (a team, or everyone) during one period."""
    new: int = 0
    resolved: int = 0
    closed: int = 0
    still_open: int = 0
    linked: int = 0                       # duplicates / cascade children folded into roots
    by_level: dict[str, int] = field(default_factory=dict)
    by_service: dict[str, int] = field(default_factory=dict)
    by_team: dict[str, int] = field(default_factory=dict)
    mtta: Percentiles = field(default_factory=Percentiles)
    mttr: Percentiles = field(default_factory=Percentiles)
    impact_minutes: float = 0.0
    impact_usd: float = 0.0
    impact_open: int = 0                  # still-open incidents counted up to "now"


@dataclass(frozen=True)
class OverduePostmortem:
    incident_id: int
    title: str
    team: str | None
    owner: str | None
    due_at: datetime


@dataclass(frozen=True)
class OverdueAction:
    item_id: int
    incident_id: int
    title: str
    team: str | None
    owner: str | None
    due_date: date
    jira_key: str | None


@dataclass(frozen=True)
class Recurring:
    fingerprint: str
    count: int
    title: str
    service: str | None
    team: str | None
    latest_id: int


@dataclass(frozen=True)
class Costly:
    incident_id: int
    title: str
    service: str | None
    team: str | None
    minutes: float
    usd: float


@dataclass(frozen=True)
class TrendPoint:
    key: str                     # 2025-03
    label: str                   # Mar 2025
    new: int
    mtta: Percentiles
    mttr: Percentiles
    impact_usd: float


def impact_usd(minutes_by_service: Mapping[str | None, float],
               revenue: Mapping[str, float]) -> float:
    """Sum over services of minutes x that service's revenue per minute."""
    return round(sum(m * revenue.get(s or "", 0.0) for s, m in minutes_by_service.items()), 2)


def completion_rate(done: int, needed: int) -> float | None:
    return done / needed if needed else None


def trend_word(now: float | None, before: float | None, *, tolerance: float = 0.1) -> str:
    """How a duration moved against the previous period: lower is better."""
    if now is None or before is None or before <= 0:
        return ""
    change = (now - before) / before
    if change > tolerance:
        return "▲ slower"
    if change < -tolerance:
        return "▼ faster"
    return "≈ same"


def duration(seconds: float | None) -> str:
    """12 s, 4 min, 1 h 05 min, 2 d 3 h."""
    if seconds is None:
        return "—"
    s = int(round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min"
    if s < 86400:
        return f"{s // 3600} h {s % 3600 // 60:02d} min"
    return f"{s // 86400} d {s % 86400 // 3600} h"


def money(usd: float | None) -> str:
    if usd is None:
        return "—"
    if usd >= 1_000_000:
        return f"${usd / 1_000_000:,.1f}M"
    return f"${usd:,.0f}"


def figures_to_json(f: Figures) -> dict:
    out = dict(f.__dict__)
    out["mtta"], out["mttr"] = dict(f.mtta.__dict__), dict(f.mttr.__dict__)
    return out


def figures_from_json(data: Mapping) -> Figures:
    values = dict(data)
    values["mtta"] = Percentiles(**values.get("mtta", {}))
    values["mttr"] = Percentiles(**values.get("mttr", {}))
    return Figures(**values)
