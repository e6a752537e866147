"""Routing rules: per service or team, which levels post a card, which are only recorded (no
card; listed in the weekly digest), which open a war room and which channel each goes to. Pure
rules; the catalog declares them and the write path applies them when it announces a root.

    routing:
      low_urgency: record          # a low-urgency PagerDuty incident: record (default) or post
      rules:
        - team: search             # or `service: search-service` (a service's rule comes first)
          post: [service-down, high-error-rate]
          record: [high-latency, minor]
          war_room: [service-down, high-error-rate]
          channel: {service-down: sre}   # level -> the channel subscribed for that team

A level a rule does not mention posts, as without rules. A channel also narrows what it takes
with `incident subscribe <team> level>=<level>`: below that level, the team's incidents are
recorded only.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import yaml

from incidents.levels import LevelPolicy

POST, RECORD = "post", "record"
SERVICE, TEAM = "service", "team"
_FILTER = re.compile(r"^level\s*>=\s*([a-z0-9_-]+)$", re.IGNORECASE)


@dataclass(frozen=True)
class RoutingRule:
    target_kind: str                   # service | team
    target: str
    post: frozenset[str] = frozenset()
    record: frozenset[str] = frozenset()
    war_room: frozenset[str] | None = None   # None: the catalog's `levels: war_room`
    channel: Mapping[str, str] = field(default_factory=dict)   # level -> team key or default

    @property
    def label(self) -> str:
        return f"{self.target_kind} {self.target}"


@dataclass(frozen=True)
class Routing:
    rules: tuple[RoutingRule, ...] = ()
    low_urgency: str = RECORD

    def rule_for(self, service: str | None, team: str | None) -> RoutingRule | None:
        """The service's own rule, else its team's."""
        return next((r for r in self.rules if r.target_kind == SERVICE and r.target == service),
                    None) or next((r for r in self.rules
                                   if r.target_kind == TEAM and r.target == team), None)


@dataclass(frozen=True)
class Route:
    channel_team: str | None           # whose channel gets the card (None: the incident's team)
    recorded_because: str | None       # set: no card, only recorded (and why)


def route(routing: Routing, *, service: str | None, team: str | None, level: str,
          source: str, urgency: str | None) -> Route:
    rule = routing.rule_for(service, team)
    channel = rule.channel.get(level) if rule else None
    if rule and level in rule.record:
        return Route(channel, f"the routing rule of {rule.label} records {level}")
    explicit = bool(rule and level in rule.post)
    if source == "pagerduty" and (urgency or "").lower() == "low" and not explicit \
            and routing.low_urgency == RECORD:
        return Route(channel, "a low-urgency PagerDuty incident (routing: low_urgency)")
    return Route(channel, None)


def needs_war_room(routing: Routing, levels: LevelPolicy, service: str | None,
                   team: str | None, level: str) -> bool:
    rule = routing.rule_for(service, team)
    if rule is not None and rule.war_room is not None:
        return level in rule.war_room
    return levels.needs_war_room(level)


def admits(policy: LevelPolicy, min_level: str | None, level: str) -> bool:
    """A channel subscribed with `level>=min_level` takes `level`."""
    return min_level is None or not policy.is_lower(min_level, level)


def parse_filter(text: str, policy: LevelPolicy) -> str:
    """`level>=high-error-rate` -> "high-error-rate"; ValueError saying what is accepted."""
    m = _FILTER.match(text.strip())
    level = policy.normalise(m.group(1)) if m else None
    if level is None:
        raise ValueError(f"`{text[:60]}` is not a filter: say `level>=<level>`, one of "
                         + ", ".join(policy.levels) + " (most severe first)")
    return level


# -- the catalog's `routing:` -----------------------------------------------------------------

def parse_routing(raw: Any, services: Iterable[str], teams: Iterable[str],
                  levels: Iterable[str], problems: list[str],
                  lines: Mapping[int, int] | None = None) -> Routing:
    """Every problem names where it is: the rule's index and, from a file, its line."""
    if raw is None:
        return Routing()
    if not isinstance(raw, dict):
        problems.append("routing: expected a mapping with `rules` (and `low_urgency`)")
        return Routing()
    low = str(raw.get("low_urgency", RECORD))
    if low not in (POST, RECORD):
        problems.append(f"routing.low_urgency: {low!r} must be `record` or `post`")
    items = raw.get("rules") or []
    if not isinstance(items, list):
        problems.append("routing.rules: expected a list of rules")
        items = []
    known = _Known(set(services), set(teams), tuple(levels))
    rules = []
    for i, item in enumerate(items):
        line = (lines or {}).get(i)
        where = (f"catalog line {line}: " if line else "") + f"routing.rules[{i}]"
        found = _rule(item, where, known, problems)
        if found is not None:
            if any((r.target_kind, r.target) == (found.target_kind, found.target)
                   for r in rules):
                problems.append(f"{where}: a second rule for {found.label}")
            rules.append(found)
    return Routing(tuple(rules), low if low in (POST, RECORD) else RECORD)


@dataclass(frozen=True)
class _Known:
    services: set[str]
    teams: set[str]
    levels: tuple[str, ...]


def _rule(item: Any, where: str, known: _Known, problems: list[str]) -> RoutingRule | None:
    if not isinstance(item, dict):
        problems.append(f"{where}: expected {{service or team, post, record, war_room, "
                        "channel}")
        return None
    service, team = item.get("service"), item.get("team")
    if bool(service) == bool(team):
        problems.append(f"{where}: name exactly one of `service` or `team`")
        return None
    kind, target = (SERVICE, str(service)) if service else (TEAM, str(team))
    if target not in (known.services if kind == SERVICE else known.teams):
        problems.append(f"{where}: unknown {kind} {target!r}")
        return None
    unknown_keys = set(item) - {"service", "team", "post", "record", "war_room", "channel"}
    if unknown_keys:
        problems.append(f"{where}: unknown key(s) {sorted(unknown_keys)}; a rule has post, "
                        "record, war_room and channel")
    post = _levels(item.get("post"), f"{where}.post", known, problems)
    record = _levels(item.get("record"), f"{where}.record", known, problems)
    if post & record:
        problems.append(f"{where}: {sorted(post & record)} both posted and recorded")
    war_room = None if item.get("war_room") is None else \
        _levels(item.get("war_room"), f"{where}.war_room", known, problems)
    return RoutingRule(kind, target, post, record, war_room,
                       _channels(item.get("channel"), f"{where}.channel", known, problems))


def _levels(raw: Any, where: str, known: _Known, problems: list[str]) -> frozenset[str]:
    if raw is None:
        return frozenset()
    if not isinstance(raw, list):
        problems.append(f"{where}: expected a list of levels")
        return frozenset()
    for level in raw:
        if level not in known.levels:
            problems.append(f"{where}: unknown level {level!r}; known: {list(known.levels)}")
    return frozenset(str(level) for level in raw if level in known.levels)


def _channels(raw: Any, where: str, known: _Known, problems: list[str]) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        problems.append(f"{where}: expected a mapping of level -> team (whose channel)")
        return {}
    out = {}
    for level, team in raw.items():
        if level not in known.levels:
            problems.append(f"{where}: unknown level {level!r}; known: {list(known.levels)}")
        elif str(team) != "default" and str(team) not in known.teams:
            problems.append(f"{where}.{level}: unknown team {team!r} (a team key, or "
                            "`default`)")
        else:
            out[str(level)] = str(team)
    return out


def rule_lines(text: str) -> dict[int, int]:
    """Line numbers (1-based) of the rules in `routing: rules:` of a catalog file's text, so a
    problem names the line to fix. {} when the text has none (or is not YAML)."""
    try:
        root = yaml.compose(text)
    except yaml.YAMLError:
        return {}
    rules = _child(_child(root, "routing"), "rules")
    if not isinstance(rules, yaml.SequenceNode):
        return {}
    return {i: node.start_mark.line + 1 for i, node in enumerate(rules.value)}


def _child(node: Any, key: str) -> Any:
    if not isinstance(node, yaml.MappingNode):
        return None
    return next((v for k, v in node.value if getattr(k, "value", None) == key), None)
