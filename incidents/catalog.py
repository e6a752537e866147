"""The catalog: teams, services, people, standby rotations and level rules.

Loaded once from YAML (the format of shared/fixtures/services.yaml plus an optional `levels`
section) and validated as a whole, so a typo fails at start-up with every problem listed instead
of surfacing as a mis-routed page at 3 a.m.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any, Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from incidents.dependencies import DependencyGraph
from incidents.heartbeats import Heartbeat, parse_heartbeats
from incidents.levels import LevelPolicy, parse_level_policy
from incidents.maintenance import Recurring, parse_recurring
from incidents.routing import Routing, needs_war_room, parse_routing, rule_lines
from incidents.roles import BUILT_IN as BUILT_IN_ROLES
from incidents.roles import parse_roles

_EMAIL = re.compile(r"^[^@\s<>\"']+@[^@\s<>\"']+\.[^@\s<>\"']+$")


class CatalogError(ValueError):
    """The catalog file is unusable; `problems` lists every reason, one line each."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("invalid catalog:\n  - " + "\n  - ".join(problems))


@dataclass(frozen=True)
class Person:
    name: str
    email: str
    pagerduty_user_id: str | None = None


@dataclass(frozen=True)
class Team:
    key: str
    name: str
    email: str | None
    jira_project: str | None
    members: tuple[str, ...]
    incident_commanders: tuple[str, ...] = ()
    pagerduty_team_id: str | None = None
    escalation_policy_id: str | None = None


@dataclass(frozen=True)
class Service:
    name: str
    owner_team: str | None
    runbook: str | None = None
    revenue_per_minute_usd: float = 0.0
    pagerduty_service_id: str | None = None
    tier: int | None = None
    primary: str | None = None
    standby: str | None = None
    calls: tuple[str, ...] = ()
    stakeholders: tuple[str, ...] = ()
    # Other words people use for it ("checkout", "cart"): declare-from-message guesses with them.
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class StandbyRotations:
    """Company-wide weekly rotations (e.g. dba, devops) handing over Monday 09:00 local time."""

    timezone: ZoneInfo
    start: date
    roles: Mapping[str, tuple[str, ...]]
    handover: time = time(9, 0)
    # role -> PagerDuty schedule id: with a PagerDuty token, who is on standby comes from there
    pagerduty_schedules: Mapping[str, str] = field(default_factory=dict)

    def on_standby(self, role: str, at: datetime) -> str | None:
        members = self.roles.get(role)
        if not members:
            return None
        local = at.astimezone(self.timezone)
        # Weeks are counted from the Monday hand-over of the week that contains `start`.
        first = datetime.combine(self.start - timedelta(days=self.start.weekday()), self.handover,
                                 tzinfo=self.timezone)
        weeks = (local - first) // timedelta(weeks=1)
        return members[weeks % len(members)]


@dataclass(frozen=True)
class Catalog:
    timezone: ZoneInfo
    teams: Mapping[str, Team]
    services: Mapping[str, Service]
    people: Mapping[str, Person]  # by lower-case e-mail
    standby: StandbyRotations | None
    levels: LevelPolicy
    graph: DependencyGraph = field(repr=False, default=None)  # type: ignore[assignment]
    roles: tuple[str, ...] = BUILT_IN_ROLES   # besides the commander (incidents/roles.py)
    heartbeats: Mapping[str, Heartbeat] = field(default_factory=dict)  # by name
    maintenance: tuple[Recurring, ...] = ()   # recurring maintenance windows
    routing: Routing = field(default_factory=Routing)

    # -- look-ups used by handlers ---------------------------------------------------------
    def service(self, name: str | None) -> Service | None:
        return self.services.get(name) if name else None

    def service_by_pagerduty_id(self, pd_id: str | None) -> Service | None:
        if not pd_id:
            return None
        return next((s for s in self.services.values() if s.pagerduty_service_id == pd_id), None)

    def team(self, key: str | None) -> Team | None:
        return self.teams.get(key) if key else None

    def find_team(self, word: str) -> Team | None:
        """A team by key or display name, case-insensitive ("checkout", "Data Platform")."""
        w = word.strip().lower()
        return next((t for t in self.teams.values() if w in (t.key.lower(), t.name.lower())), None)

    def person(self, email: str | None) -> Person | None:
        return self.people.get(email.lower()) if email else None

    def display_name(self, email: str | None) -> str | None:
        p = self.person(email)
        return p.name if p else email

    def find_person(self, who: str | None) -> Person | None:
        """A person by e-mail or by name, case-insensitive: the one look-up behind every
        command and form that names someone ("@Priya Raman", "priya.raman@…")."""
        text = (who or "").strip().lstrip("@").strip()
        if not text:
            return None
        return self.person(text) or next(
            (p for p in self.people.values() if p.name.lower() == text.lower()), None)

    def names_by_email(self) -> dict[str, str]:
        return {p.email.lower(): p.name for p in self.people.values()}

    def team_name(self, key: str | None) -> str:
        team = self.team(key)
        return team.name if team else (key or "No team")

    def incident_commanders(self) -> list[str]:
        return sorted({ic for t in self.teams.values() for ic in t.incident_commanders})

    def needs_war_room(self, service: str | None, team: str | None, level: str) -> bool:
        """The routing rule of the service (else its team) decides, else `levels: war_room`."""
        return needs_war_room(self.routing, self.levels, service, team, level)


# -- loading ---------------------------------------------------------------------------------

def load_catalog(path: str | Path) -> Catalog:
    try:
        text = Path(path).read_text(encoding="utf-8")
        raw = yaml.safe_load(text)
    except FileNotFoundError:
        raise CatalogError([f"catalog file {path} does not exist"]) from None
    except yaml.YAMLError as exc:
        raise CatalogError([f"catalog file {path} is not valid YAML: {exc}"]) from None
    return parse_catalog(raw, routing_lines=rule_lines(text))


def parse_catalog(raw: Any, *, routing_lines: Mapping[int, int] | None = None) -> Catalog:
    if not isinstance(raw, dict):
        raise CatalogError(["the catalog must be a YAML mapping with teams, services and people"])
    problems: list[str] = []
    tz = _zone(raw.get("timezone", "UTC"), "timezone", problems)
    people = _people(raw.get("people") or [], problems)
    teams = _teams(raw.get("teams") or {}, problems)
    services = _services(raw.get("services") or [], teams, problems)
    standby = _standby(raw.get("standby"), tz, problems)
    roles = parse_roles(raw.get("roles"), problems)
    try:
        levels = parse_level_policy(raw.get("levels"))
    except ValueError as exc:
        problems.append(str(exc))
        levels = parse_level_policy(None)
    heartbeats = parse_heartbeats(raw.get("heartbeats"), services, levels.levels, problems)
    maintenance = parse_recurring(raw.get("maintenance"), services, teams, tz, problems)
    routing = parse_routing(raw.get("routing"), services, teams, levels.levels, problems,
                            routing_lines)
    if problems:
        raise CatalogError(problems)
    graph = DependencyGraph({s.name: s.calls for s in services.values()})
    return Catalog(tz, teams, services, people, standby, levels, graph, roles=roles,
                   heartbeats=heartbeats, maintenance=maintenance, routing=routing)


def _zone(name: Any, where: str, problems: list[str]) -> ZoneInfo:
    try:
        return ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError):
        problems.append(f"{where}: unknown time zone {name!r}")
        return ZoneInfo("UTC")


def _email(value: Any, where: str, problems: list[str]) -> str:
    text = str(value or "").strip()
    if not _EMAIL.match(text):
        problems.append(f"{where}: bad e-mail address {value!r}")
    return text.lower()


def _emails(values: Any, where: str, problems: list[str]) -> tuple[str, ...]:
    if values is None:
        return ()
    if not isinstance(values, list):
        problems.append(f"{where}: expected a list of e-mail addresses")
        return ()
    return tuple(_email(v, where, problems) for v in values)


def _people(items: Any, problems: list[str]) -> dict[str, Person]:
    people: dict[str, Person] = {}
    for i, p in enumerate(items if isinstance(items, list) else []):
        if not isinstance(p, dict) or not p.get("name"):
            problems.append(f"people[{i}]: needs a name and an email")
            continue
        email = _email(p.get("email"), f"people[{i}] {p['name']!r}", problems)
        people[email] = Person(str(p["name"]), email, p.get("pagerduty_user_id"))
    return people


def _teams(items: Any, problems: list[str]) -> dict[str, Team]:
    if not isinstance(items, dict):
        problems.append("teams: expected a mapping of team key -> team")
        return {}
    teams: dict[str, Team] = {}
    for key, t in items.items():
        t = t or {}
        where = f"teams.{key}"
        email = _email(t["email"], f"{where}.email", problems) if t.get("email") else None
        teams[str(key)] = Team(
            key=str(key), name=str(t.get("name") or key), email=email,
            jira_project=t.get("jira_project"),
            members=_emails(t.get("members"), f"{where}.members", problems),
            incident_commanders=_emails(t.get("incident_commanders"),
                                        f"{where}.incident_commanders", problems),
            pagerduty_team_id=t.get("pagerduty_team_id"),
            escalation_policy_id=t.get("escalation_policy_id"))
    return teams


def _services(items: Any, teams: Mapping[str, Team], problems: list[str]) -> dict[str, Service]:
    if not isinstance(items, list):
        problems.append("services: expected a list of services")
        return {}
    services: dict[str, Service] = {}
    for i, s in enumerate(items):
        if not isinstance(s, dict) or not s.get("name"):
            problems.append(f"services[{i}]: every service needs a name")
            continue
        services[str(s["name"])] = _service(s, f"services[{i}] {s['name']!r}", teams, problems)
    for svc in services.values():
        for callee in svc.calls:
            if callee not in services:
                problems.append(f"service {svc.name!r} calls unknown service {callee!r}")
    return services


def _service(s: dict, where: str, teams: Mapping[str, Team], problems: list[str]) -> Service:
    owner = s.get("owner_team")
    if owner is not None and str(owner) not in teams:
        problems.append(f"{where}: owner_team {owner!r} is not a team in the catalog")
    oncall = s.get("oncall") or {}
    try:
        revenue = float(s.get("revenue_per_minute_usd") or 0)
    except (TypeError, ValueError):
        problems.append(f"{where}: revenue_per_minute_usd must be a number")
        revenue = 0.0
    calls = s.get("calls") or []
    if not isinstance(calls, list):
        problems.append(f"{where}: calls must be a list of service names")
        calls = []
    aliases = s.get("aliases") or []
    if not isinstance(aliases, list):
        problems.append(f"{where}: aliases must be a list of words")
        aliases = []
    return Service(
        name=str(s["name"]), owner_team=str(owner) if owner is not None else None,
        runbook=s.get("runbook"), revenue_per_minute_usd=revenue,
        pagerduty_service_id=s.get("pagerduty_service_id"), tier=s.get("tier"),
        primary=_email(oncall["primary"], f"{where}.oncall.primary", problems)
        if oncall.get("primary") else None,
        standby=_email(oncall["standby"], f"{where}.oncall.standby", problems)
        if oncall.get("standby") else None,
        calls=tuple(str(c) for c in calls),
        stakeholders=_emails(s.get("stakeholders"), f"{where}.stakeholders", problems),
        aliases=tuple(str(a).lower() for a in aliases))


def _standby(raw: Any, default_tz: ZoneInfo, problems: list[str]) -> StandbyRotations | None:
    if not raw:
        return None
    tz = _zone(raw.get("timezone", default_tz.key), "standby.timezone", problems)
    start = raw.get("start")
    if isinstance(start, str):
        try:
            start = date.fromisoformat(start)
        except ValueError:
            start = None
    if not isinstance(start, date):
        problems.append("standby.start: expected a date like 2025-01-06")
        start = date(2025, 1, 6)
    schedules = raw.get("pagerduty_schedules") or {}
    if not isinstance(schedules, dict):
        problems.append("standby.pagerduty_schedules: expected a mapping of role -> schedule id")
        schedules = {}
    roles = {k: _emails(v, f"standby.{k}", problems) for k, v in raw.items()
             if k not in ("timezone", "start", "pagerduty_schedules")}
    unknown = set(schedules) - set(roles)
    if unknown:
        problems.append(f"standby.pagerduty_schedules: no rotation named {sorted(unknown)}")
    return StandbyRotations(tz, start, roles, pagerduty_schedules={
        str(k): str(v) for k, v in schedules.items()})


def war_room_members(catalog: Catalog, service_name: str | None, commander: str | None,
                     at: datetime, oncall: "OnCallNow | None" = None) -> list[str]:
    """Who joins a war room: the service's primary on-call and standby, the DBA and DevOps on
    standby this week, the service's stakeholders and the incident commanders (in that order,
    each once). `oncall` (from PagerDuty, when configured) overrides the catalog's rotations. A
    service the catalog does not know brings only the commanders and standbys."""
    now = oncall or on_call_now(catalog, at)
    service = catalog.service(service_name)
    people: list[str | None] = []
    if service:
        people += list(now.services.get(service.name, (None, None)))
    people += [now.roles.get(role) for role in ("dba", "devops")]
    if service:
        people += list(service.stakeholders)
    people += [commander, *catalog.incident_commanders()]
    return list(dict.fromkeys(p.lower() for p in people if p and "@" in p))


@dataclass(frozen=True)
class OnCallNow:
    """Who is on call right now: per service (primary, standby) and per standby role."""
    services: Mapping[str, tuple[str | None, str | None]]
    roles: Mapping[str, str | None]
    source: str


def on_call_now(catalog: Catalog, at: datetime,
                pagerduty: Mapping[str, str] | None = None) -> OnCallNow:
    """The catalog's on-call and weekly rotations, overridden by what PagerDuty says when a
    sync brought it: `pagerduty` maps "policy:<id>:<level>" and "schedule:<id>" to e-mails
    (level 1 of a team's escalation policy is its primary, level 2 its standby)."""
    pd = pagerduty or {}
    services = {}
    for s in catalog.services.values():
        team = catalog.team(s.owner_team)
        policy = team.escalation_policy_id if team else None
        services[s.name] = (pd.get(f"policy:{policy}:1") or s.primary,
                            pd.get(f"policy:{policy}:2") or s.standby)
    roles: dict[str, str | None] = {}
    if catalog.standby:
        for role in catalog.standby.roles:
            schedule = catalog.standby.pagerduty_schedules.get(role)
            roles[role] = pd.get(f"schedule:{schedule}") or catalog.standby.on_standby(role, at)
    source = "PagerDuty's on-call schedules" if pd else \
        "the catalog's on-call and weekly standby rotations"
    return OnCallNow(services, roles, source)
