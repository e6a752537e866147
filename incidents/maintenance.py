"""Maintenance windows: a service or a team is being worked on, so its alerts are recorded but
nobody is disturbed. Pure rules: what the catalog's recurring windows say and when they are on,
what `incident maintenance` accepts, and how a window is named (`MW-3`). Storage keeps the windows
(one row per window, recurring ones included once they start) and the write path applies them.

    maintenance:
      - {name: order-db-patching, service: order-db, cron: "0 3 * * sun", duration: 2h,
         reason: weekly OS patching}

`cron` is read in the catalog's time zone (five fields, as crontab: minute hour day month
weekday); a window lasts `duration` from each time it fires.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any, Iterable, Mapping
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

from incidents.durations import format_duration, parse_duration

SERVICE, TEAM = "service", "team"
REASON_LIMIT = 300
SHORTEST = timedelta(minutes=1)
LONGEST = timedelta(days=7)
NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,59}$")
_REF = re.compile(r"^\s*mw-?(\d{1,12})\s*$", re.IGNORECASE)
_UNTIL = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


def window_ref(window_id: int) -> str:
    return f"MW-{window_id}"


def parse_window_ref(text: str | None) -> int | None:
    """`MW-3`, `mw-3` or `mw3` -> 3; anything else -> None (a bare number could be an INC)."""
    m = _REF.match(text or "")
    return int(m.group(1)) if m else None


@dataclass(frozen=True)
class Recurring:
    """A recurring window from the catalog."""
    name: str
    target_kind: str          # service | team
    target: str
    cron: str
    duration: timedelta
    trigger: CronTrigger
    reason: str | None = None

    def started_last(self, now: datetime) -> datetime | None:
        """When the occurrence that is on at `now` started, or None when none is on."""
        start = self.trigger.get_next_fire_time(None, now - self.duration)
        # An occurrence starting exactly at `now - duration` has just ended.
        if start is not None and now - self.duration < start <= now:
            return start
        return None

    def key(self, start: datetime) -> str:
        """One row per occurrence, whoever (which replica, which look) stores it first."""
        return f"{self.name}@{start.astimezone(ZoneInfo('UTC')):%Y-%m-%dT%H:%MZ}"


def covers(target_kind: str, target: str, service: str | None, team: str | None) -> bool:
    """A window on a team covers every incident of that team; one on a service, its own."""
    return (service == target) if target_kind == SERVICE else (team == target)


def parse_recurring(raw: Any, services: Iterable[str], teams: Iterable[str], tz: ZoneInfo,
                    problems: list[str]) -> tuple[Recurring, ...]:
    """The catalog's `maintenance:` list; every problem is added with where it is."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        problems.append("maintenance: expected a list of {name, service or team, cron, "
                        "duration, reason}")
        return ()
    services, teams = set(services), set(teams)
    found: dict[str, Recurring] = {}
    for i, entry in enumerate(raw):
        window = _recurring(entry, f"maintenance[{i}]", services, teams, tz, problems)
        if window is None:
            continue
        if window.name in found:
            problems.append(f"maintenance[{i}]: the name {window.name!r} is used twice")
        found[window.name] = window
    return tuple(found.values())


def _recurring(entry: Any, where: str, services: set[str], teams: set[str], tz: ZoneInfo,
               problems: list[str]) -> Recurring | None:
    if not isinstance(entry, dict):
        problems.append(f"{where}: expected {{name, service or team, cron, duration}}")
        return None
    name = str(entry.get("name") or "")
    if not NAME.match(name):
        problems.append(f"{where}: name {entry.get('name')!r} must be lower case letters, "
                        "digits, dots, dashes or underscores")
    where = f"{where} {name!r}"
    kind, target = _target(entry, where, services, teams, problems)
    duration = parse_duration(entry.get("duration"))
    if duration is None or not SHORTEST <= duration <= LONGEST:
        problems.append(f"{where}: duration {entry.get('duration')!r} must be like 90m or 2h "
                        f"(between {format_duration(SHORTEST)} and 7 days)")
    try:
        trigger = CronTrigger.from_crontab(str(entry.get("cron") or ""), timezone=tz)
    except ValueError as exc:
        problems.append(f"{where}: cron {entry.get('cron')!r} is not a crontab line "
                        f"(minute hour day month weekday): {exc}")
        trigger = None
    reason = entry.get("reason")
    if kind is None or duration is None or trigger is None:
        return None
    return Recurring(name, kind, target, str(entry["cron"]), duration, trigger,
                     str(reason)[:REASON_LIMIT] if reason else None)


def _target(entry: Mapping[str, Any], where: str, services: set[str], teams: set[str],
            problems: list[str]) -> tuple[str | None, str]:
    service, team = entry.get("service"), entry.get("team")
    if bool(service) == bool(team):
        problems.append(f"{where}: name exactly one of `service` or `team`")
        return None, ""
    if service and str(service) not in services:
        problems.append(f"{where}: unknown service {service!r}")
        return None, ""
    if team and str(team) not in teams:
        problems.append(f"{where}: unknown team {team!r}")
        return None, ""
    return (SERVICE, str(service)) if service else (TEAM, str(team))


# -- what `incident maintenance <service|team> <duration | until HH:MM> [reason]` says ---------

class BadLength(ValueError):
    """The length of a window could not be read; the message says what is accepted."""


def window_end(words: list[str], now: datetime, tz: ZoneInfo) -> tuple[datetime, list[str]]:
    """(when the window ends, the words left for the reason) from `2h`, `90m` or
    `until 23:30` (the catalog's time zone; a time already past today means tomorrow)."""
    if not words:
        raise BadLength("say how long: a duration like `2h` or `90m`, or `until HH:MM`")
    if words[0].lower() == "until":
        m = _UNTIL.match(words[1]) if len(words) > 1 else None
        if m is None:
            raise BadLength("`until` takes a time like `until 23:30` (24-hour clock, "
                            f"{tz.key} time)")
        local = now.astimezone(tz)
        end = datetime.combine(local.date(), time(int(m.group(1)), int(m.group(2))), tzinfo=tz)
        if end <= local:
            end += timedelta(days=1)
        return end.astimezone(now.tzinfo), words[2:]
    span = parse_duration(words[0])
    if span is None:
        raise BadLength(f"{words[0]!r} is not a duration: say `2h`, `90m` or `1h30m`, or "
                        "`until HH:MM`")
    if not SHORTEST <= span <= LONGEST:
        raise BadLength("a window lasts between 1 minute and 7 days")
    return now + span, words[1:]


@dataclass(frozen=True)
class Tally:
    """What happened during a window, for its summary."""
    stored: int
    resolved: int
    still_open: tuple[tuple[int, str], ...]   # (incident id, title) of those still firing

    @property
    def text(self) -> str:
        return (f"{self.stored} alert{'s' if self.stored != 1 else ''} stored as incidents, "
                f"{self.resolved} resolved during the window, {len(self.still_open)} still open")
