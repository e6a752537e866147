"""Postmortem rules: what a complete RCA needs, when it is due, and the timeline it starts with."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone, tzinfo
from typing import Any, Callable, Iterable, Mapping, Sequence
from zoneinfo import ZoneInfo

from incidents.clock import zoned
from incidents.levels import LevelPolicy

# Field -> how the card and page call it. Order is the RCA template's order.
RCA_SECTIONS = (
    ("summary", "Summary"),
    ("customer_impact", "Customer impact (who, how many, how long)"),
    ("detection", "Detection (how and when we knew)"),
    ("timeline", "Timeline"),
    ("root_cause", "Root cause"),
    ("trigger", "Trigger"),
    ("resolution", "Resolution and recovery"),
    ("went_well", "What went well"),
    ("went_badly", "What went badly"),
    ("lessons", "Lessons learned"),
)
REQUIRED = ("summary", "customer_impact", "detection", "root_cause", "resolution")
FIELD_LIMIT = 4000
ACTION_TITLE_LIMIT = 250


@dataclass(frozen=True)
class ActionItemDraft:
    title: str
    owner: str | None
    due_date: date | None
    item_id: int | None = None


def required_after(already: bool, level: str, is_root: bool, levels: LevelPolicy) -> bool:
    """The sticky rule: once a root incident has been at a level that needs a postmortem, its
    postmortem stays required whatever its level becomes (lowering the level afterwards must
    not make the lesson disappear). Only a waiver lifts it, and the waiver is recorded."""
    return already or (is_root and levels.needs_postmortem_for(level))


def needed(incident: Any, levels: LevelPolicy) -> bool:
    """Does this incident need a postmortem now (before any waiver)? Children fold into their
    root's postmortem."""
    return incident.parent_id is None and required_after(
        bool(incident.postmortem_required), incident.level, True, levels)


def waived(postmortem: Mapping[str, Any] | None) -> bool:
    return bool(postmortem and postmortem.get("waived_at"))


def waiver_text(postmortem: Mapping[str, Any] | None,
                name: Callable[[str | None], str | None] = lambda who: who,
                stamp: Callable[[datetime], str] = lambda at: zoned(at, timezone.utc)
                ) -> str | None:
    """"waived by Sarah Kim on 2025-03-11 09:30 CET: false alarm, rolled back" (None if not
    waived); `stamp` writes the time for where it is read (a card: the reader's zone)."""
    if not waived(postmortem):
        return None
    who = name(postmortem.get("waived_by")) or postmortem.get("waived_by") or "someone"
    return (f"waived by {who} on {stamp(postmortem['waived_at'])}: "
            f"{postmortem.get('waiver_reason') or 'no reason given'}")


def missing(postmortem: Mapping[str, Any] | None, items: Sequence[Mapping[str, Any]]) -> list[str]:
    """What still stops the RCA from being complete, in words for the card."""
    if postmortem is None:
        return ["the postmortem has not been started (`incident rca INC-n`)"]
    labels = dict(RCA_SECTIONS)
    out = [labels[f].split(" (")[0].lower() for f in REQUIRED
           if not (postmortem.get(f) or "").strip()]
    if not any(i.get("title") and i.get("owner") and i.get("due_date") for i in items):
        out.append("at least one action item with an owner and a due date")
    return out


def due_after(resolved_at: datetime, business_days: int, tz: ZoneInfo) -> datetime:
    """`business_days` working days (Mon-Fri) after the resolve, at the same local time."""
    local = resolved_at.astimezone(tz)
    day, left = local, business_days
    while left > 0:
        day += timedelta(days=1)
        if day.weekday() < 5:
            left -= 1
    return day.astimezone(resolved_at.tzinfo)


def impact_minutes(triggered_at: datetime, resolved_at: datetime | None, now: datetime,
                   override: int | None = None) -> float:
    if override is not None:
        return float(override)
    end = resolved_at or now
    return max(0.0, (end - triggered_at).total_seconds() / 60)


def impact_usd(revenue_per_minute: float, minutes: float) -> float:
    return round(revenue_per_minute * minutes, 2)


def timeline_line(entry: Mapping[str, Any], zone: tzinfo = timezone.utc) -> str:
    """"2025-03-14 15:00 CET — text (who)": in the catalog's zone, named (people read the RCA
    on its page and in exports)."""
    who = f" ({entry['actor']})" if entry.get("actor") else ""
    return f"{zoned(entry['at'], zone)} — {entry['text']}{who}"


def timeline_text(entries: Iterable[Mapping[str, Any]], zone: tzinfo = timezone.utc) -> str:
    """The incident timeline as the RCA's starting point, one line per entry."""
    return _within_limit("\n".join(timeline_line(e, zone) for e in entries))


def refill_timeline(text: str | None, entries: Sequence[Mapping[str, Any]],
                    through: int | None, zone: tzinfo = timezone.utc) -> tuple[str, int | None]:
    """The RCA timeline with the incident timeline's entries after `through` (an entry id) put
    in at their place in time. What people wrote, changed or deleted stays as they left it:
    only entries never offered before are added. With no `through` (a postmortem from before
    it was recorded) an entry is new when its line is not in the text yet.
    Returns (text, the newest entry id offered)."""
    lines = (text or "").splitlines()
    present = set(lines)
    newest = through
    for e in entries:
        newest = max(newest or 0, e["id"])
        if through is not None and e["id"] <= through:
            continue
        line = timeline_line(e, zone)
        if through is None and line in present:
            continue
        lines.insert(_place(lines, line[:16]), line)
    return _within_limit("\n".join(lines)), newest


_STAMP = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d")


def _place(lines: Sequence[str], stamp: str) -> int:
    """Before the first line stamped later than `stamp`, so after the earlier lines and the
    unstamped notes a person wrote under them; at the end when nothing is later."""
    for i, line in enumerate(lines):
        if _STAMP.match(line) and line[:16] > stamp:
            return i
    return len(lines)


def _within_limit(text: str) -> str:
    return text if len(text) <= FIELD_LIMIT else text[: FIELD_LIMIT - 1] + "…"


def impact_of(catalog: Any, incident: Any, postmortem: Mapping[str, Any] | None,
              now: datetime) -> float | None:
    """Business impact in USD of a root incident: its service's revenue per minute times the
    minutes of customer impact (trigger to resolve, or the RCA's own figure); an open incident
    counts up to `now`. None where the service has no revenue figure, and for linked children
    (their impact is their root's)."""
    service = catalog.service(incident.service)
    if not service or not service.revenue_per_minute_usd or incident.parent_id is not None:
        return None
    minutes = impact_minutes(incident.triggered_at, incident.resolved_at, now,
                             (postmortem or {}).get("impact_minutes"))
    return impact_usd(service.revenue_per_minute_usd, minutes)
