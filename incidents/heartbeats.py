"""Heartbeats (dead-man's switches): something that should say "I am alive" every `interval` and
whose silence is an incident. Declared in the catalog's top-level `heartbeats:` list; checked
here as pure rules (what a catalog entry may say, when a heartbeat counts as missing, which
Alertmanager alert is a beat). Storage, the door and the sweep apply them.

    heartbeats:
      - {name: alert-pipeline, service: monitoring, interval: 5m, grace: 2m,
         token_env: FIREBELL_HEARTBEAT_ALERT_PIPELINE_TOKEN, alertname: Watchdog}

A beat comes through `POST /webhooks/heartbeat/<name>` with the bearer token held in the
environment variable `token_env` names, or, when the entry names an `alertname` (and optionally
`labels`), as Alertmanager's always-firing alert of that name (its `Watchdog`).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Iterable, Mapping

from incidents.durations import format_duration, parse_duration

NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
SHORTEST = timedelta(seconds=10)
LONGEST = timedelta(days=7)

# What a heartbeat is, seen from Firebell.
WAITING = "waiting"   # no beat yet since Firebell started watching it; not late yet
UP = "up"             # beat within interval + grace
MISSING = "missing"   # silent for longer than interval + grace


@dataclass(frozen=True)
class Heartbeat:
    name: str
    service: str
    interval: timedelta
    grace: timedelta
    token_env: str | None = None
    level: str | None = None           # None: the catalog's level rules decide, from the title
    alertname: str | None = None       # Alertmanager's always-firing alert that counts as a beat
    labels: Mapping[str, str] = field(default_factory=dict)  # ... when its labels match these

    @property
    def allowed_silence(self) -> timedelta:
        return self.interval + self.grace

    def every(self) -> str:
        return f"every {format_duration(self.interval)}, grace {format_duration(self.grace)}"


def parse_heartbeats(raw: Any, services: Iterable[str], levels: Iterable[str],
                     problems: list[str]) -> dict[str, Heartbeat]:
    """The catalog's `heartbeats:` list; every problem is added to `problems` with where it is."""
    if raw is None:
        return {}
    if not isinstance(raw, list):
        problems.append("heartbeats: expected a list of {name, service, interval, grace, "
                        "token_env}")
        return {}
    known_services, known_levels = set(services), set(levels)
    found: dict[str, Heartbeat] = {}
    for i, entry in enumerate(raw):
        beat = _heartbeat(entry, f"heartbeats[{i}]", known_services, known_levels, problems)
        if beat is None:
            continue
        if beat.name in found:
            problems.append(f"heartbeats[{i}]: a second heartbeat named {beat.name!r}")
            continue
        found[beat.name] = beat
    _no_shared_watchdog(found.values(), problems)
    return found


def _heartbeat(entry: Any, where: str, services: set[str], levels: set[str],
               problems: list[str]) -> Heartbeat | None:
    if not isinstance(entry, dict):
        problems.append(f"{where}: expected {{name, service, interval, grace, token_env}}")
        return None
    before = len(problems)
    name = str(entry.get("name") or "")
    if not NAME.match(name):
        problems.append(f"{where}: name {entry.get('name')!r} must be lower-case letters, digits, "
                        "'.', '_' or '-' (it is part of the URL /webhooks/heartbeat/<name>)")
    where = f"{where} {name!r}" if name else where
    unknown = set(entry) - {"name", "service", "interval", "grace", "token_env", "level",
                            "alertname", "labels"}
    if unknown:
        problems.append(f"{where}: unknown key(s) {sorted(unknown)}")
    service = str(entry.get("service") or "")
    if service not in services:
        problems.append(f"{where}: service {entry.get('service')!r} is not a service in the "
                        "catalog (the service whose incident a missing beat opens)")
    interval = _span(entry.get("interval"), f"{where}.interval", problems)
    grace = _span(entry.get("grace", "0s"), f"{where}.grace", problems, zero_ok=True)
    level = entry.get("level")
    if level is not None and str(level) not in levels:
        problems.append(f"{where}.level: unknown level {level!r}; known: {sorted(levels)}")
    alertname, labels = _watchdog(entry, where, problems)
    token_env = entry.get("token_env")
    if token_env is not None and not _ENV_NAME.match(str(token_env)):
        problems.append(f"{where}.token_env: {token_env!r} is not an environment variable name")
    if token_env is None and alertname is None:
        problems.append(f"{where}: needs token_env (the environment variable holding its bearer "
                        "token) or alertname (Alertmanager's always-firing alert)")
    if len(problems) > before:
        return None
    return Heartbeat(name, service, interval, grace, str(token_env) if token_env else None,
                     str(level) if level is not None else None, alertname, labels)


def _span(value: Any, where: str, problems: list[str], *, zero_ok: bool = False) -> timedelta:
    span = parse_duration(value)
    if span is None:
        problems.append(f"{where}: {value!r} is not a duration like 90s, 5m or 1h30m")
        return SHORTEST
    if (span < SHORTEST and not (zero_ok and not span)) or span > LONGEST:
        problems.append(f"{where}: {value!r} must be between {format_duration(SHORTEST)} and "
                        f"{LONGEST.days} days")
    return span


def _watchdog(entry: dict, where: str, problems: list[str]) -> tuple[str | None, dict]:
    alertname = entry.get("alertname")
    labels = entry.get("labels") or {}
    if alertname is not None and (not isinstance(alertname, str) or not alertname.strip()):
        problems.append(f"{where}.alertname: expected the name of an Alertmanager alert")
        alertname = None
    if not isinstance(labels, dict) or not all(isinstance(v, (str, int)) for v in
                                               labels.values()):
        problems.append(f"{where}.labels: expected a mapping of label -> value")
        labels = {}
    if labels and alertname is None:
        problems.append(f"{where}.labels: only used with alertname")
    return (alertname.strip() if alertname else None), {str(k): str(v) for k, v in labels.items()}


def _no_shared_watchdog(beats: Iterable[Heartbeat], problems: list[str]) -> None:
    seen: dict[tuple, str] = {}
    for beat in beats:
        if beat.alertname is None:
            continue
        key = (beat.alertname, tuple(sorted(beat.labels.items())))
        if key in seen:
            problems.append(f"heartbeats: {seen[key]!r} and {beat.name!r} both take the "
                            f"{beat.alertname} alert with the same labels; give each `labels`")
        seen[key] = beat.name


# -- the rules the door and the sweep apply ---------------------------------------------------

def watchdog_of(beats: Iterable[Heartbeat], labels: Mapping[str, str]) -> str | None:
    """The heartbeat an Alertmanager alert with these labels beats, if any: its alertname is the
    heartbeat's and every label the heartbeat names has the value it says."""
    name = labels.get("alertname")
    for beat in beats:
        if beat.alertname and beat.alertname == name and all(
                labels.get(k) == v for k, v in beat.labels.items()):
            return beat.name
    return None


@dataclass(frozen=True)
class Verdict:
    state: str                       # WAITING | UP | MISSING
    silent_since: datetime           # the last beat, or when Firebell started watching
    watched_since: datetime          # possibly reset: see `verdict`

    def silent_for(self, now: datetime) -> timedelta:
        return now - self.silent_since


def verdict(beat: Heartbeat, *, last_beat: datetime | None, watched_since: datetime,
            last_swept: datetime | None, now: datetime) -> Verdict:
    """Is the heartbeat up, still waiting for its first beat, or missing?

    Silence only counts while Firebell was watching: after a gap in the sweeps longer than the
    allowed silence (Firebell was down, or not running at all, and beats sent then were
    refused), watching starts again now, so a restart is not read as every sender's outage.
    Up: a beat within the allowed silence; waiting: none yet since watching (re)started."""
    allowed = beat.allowed_silence
    if now - (last_swept or watched_since) > allowed:
        watched_since = max(watched_since, now)
    since = max(last_beat, watched_since) if last_beat else watched_since
    if now - since > allowed:
        return Verdict(MISSING, since, watched_since)
    state = UP if last_beat and now - last_beat <= allowed else WAITING
    return Verdict(state, since, watched_since)


def silence_minutes(silent_for: timedelta) -> int:
    """"for N min" in a title: whole minutes, at least 1."""
    return max(1, math.floor(silent_for.total_seconds() / 60))


def missing_title(beat: Heartbeat, silent_for: timedelta) -> str:
    return f"No heartbeat from {beat.name} for {silence_minutes(silent_for)} min"


def outage_id(beat: Heartbeat, silent_since: datetime) -> str:
    """The incident's natural id: one per heartbeat and silence (keyed on when the silence
    began), so two sweeps of the same silence open one incident."""
    return f"{beat.name}@{silent_since.strftime('%Y-%m-%dT%H:%M:%S.%fZ')}"
