"""Status updates for stakeholders: what people outside the response are told, in four phases,
on a cadence per level (the catalog's `levels: update_every: {service-down: 30m}`).

The rules: which phases exist, how a cadence is written, when an update is overdue (and which
overdue spell a reminder belongs to, so there is at most one reminder per cadence), and the
figures a digest shows (how many updates, the median gap between them). Pure."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Iterable, Mapping, Sequence

from incidents.durations import parse_duration
from incidents.metrics import MEDIAN, percentile

PHASES = ("investigating", "identified", "monitoring", "resolved")
PHASE_ICON = {"investigating": "🔍", "identified": "🎯", "monitoring": "👀", "resolved": "✅"}
TEXT_LIMIT = 1500
# Reminders are checked every 30 s (scheduler/periodic.py): a shorter cadence could not be kept.
SHORTEST_CADENCE = timedelta(seconds=30)


def normalise_phase(word: str | None) -> str | None:
    w = (word or "").strip().lower()
    return w if w in PHASES else None


def parse_update_every(raw: Any, levels: Sequence[str]) -> dict[str, timedelta]:
    """`levels: update_every:` -> {level: cadence}; ValueError naming what is wrong."""
    return _level_durations(raw, levels, "update_every",
                            "{service-down: 30m, high-error-rate: 60m}", "30m, 60m or 90s")


def parse_ack_within(raw: Any, levels: Sequence[str]) -> dict[str, timedelta]:
    """`levels: ack_within:` -> {level: time to acknowledge}; ValueError naming what is wrong.
    An incident at one of these levels not acknowledged in that time is escalated: one
    reminder in the channel, @mentioning the on-call and the standby."""
    return _level_durations(raw, levels, "ack_within", "{service-down: 5m}", "5m or 90s")


def _level_durations(raw: Any, levels: Sequence[str], key: str, example: str,
                     like: str) -> dict[str, timedelta]:
    """A `levels:` map of level -> duration (at least SHORTEST_CADENCE)."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ValueError(f"levels.{key}: expected a mapping of level -> duration, e.g. {example}")
    out: dict[str, timedelta] = {}
    for level, value in raw.items():
        if level not in levels:
            raise ValueError(f"levels.{key}: unknown level {level!r}; known: {list(levels)}")
        every = parse_duration(value)
        if every is None:
            raise ValueError(f"levels.{key}.{level}: {value!r} is not a duration like {like}")
        if every < SHORTEST_CADENCE:
            raise ValueError(f"levels.{key}.{level}: {value!r} is shorter than "
                             f"{int(SHORTEST_CADENCE.total_seconds())}s")
        out[str(level)] = every
    return out


def overdue_spell(last: datetime, now: datetime, every: timedelta) -> int | None:
    """How many whole cadences have passed since `last` (the last update, or the trigger when
    there was none), or None while the next update is not due. A reminder is keyed on (last,
    spell): one per cadence, and a new update starts the count again."""
    if now - last < every:
        return None
    return int((now - last) / every)


def cadence_text(every: timedelta) -> str:
    seconds = int(every.total_seconds())
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    if seconds % 60 == 0:
        return f"{seconds // 60} min"
    return f"{seconds} s"


@dataclass(frozen=True)
class UpdateFigures:
    """One incident's stakeholder updates over a report period."""
    incident_id: int
    title: str
    team: str | None
    level: str
    count: int
    median_gap_seconds: float | None     # None with fewer than two updates


def update_figures(incidents: Iterable[Mapping[str, Any]],
                   updates: Iterable[Mapping[str, Any]]) -> list[UpdateFigures]:
    """Per incident (rows with id, title, team, level), its updates (rows with incident_id and
    posted_at): the count and the median gap between consecutive updates. Incidents with the
    most updates first."""
    times: dict[int, list[datetime]] = {}
    for u in updates:
        times.setdefault(u["incident_id"], []).append(u["posted_at"])
    out = []
    for i in incidents:
        posted = sorted(times.get(i["id"], []))
        gaps = [(b - a).total_seconds() for a, b in zip(posted, posted[1:])]
        out.append(UpdateFigures(i["id"], i["title"], i["team"], i["level"], len(posted),
                                 percentile(gaps, MEDIAN) if gaps else None))
    out.sort(key=lambda f: (-f.count, f.incident_id))
    return out
