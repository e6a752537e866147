"""Incident levels and the ordered rules that map an alert to one.

A level says how bad an incident is and which follow-ups it needs: service-down, high error rate
and high latency need a postmortem; minor does not. Rules live in the catalog (`levels:`) so a
team can tune them without a deploy; the defaults below cover the common alert wording.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Mapping

from incidents.updates import parse_ack_within, parse_update_every

SERVICE_DOWN = "service-down"
HIGH_ERROR_RATE = "high-error-rate"
HIGH_LATENCY = "high-latency"
MINOR = "minor"
DEFAULT_LEVELS = (SERVICE_DOWN, HIGH_ERROR_RATE, HIGH_LATENCY, MINOR)

_DEFAULT_RULES = (
    (SERVICE_DOWN, r"\b(down|outage|unavailable|unreachable|not responding|crash ?loop\w*"
                   r"|\d+/\d+ pods ready|health ?checks? failing)\b"),
    (HIGH_ERROR_RATE, r"\b(5xx|error rate|errors?|exceptions?|failures?|failing)\b"),
    (HIGH_LATENCY, r"\b(latency|slow|p9[059]|timeouts?|response time|lag)\b"),
)

_LABEL_LEVELS = {"critical": SERVICE_DOWN, "page": SERVICE_DOWN}


@dataclass(frozen=True)
class LevelRule:
    level: str
    pattern: re.Pattern[str]

    def matches(self, text: str) -> bool:
        return bool(self.pattern.search(text))


@dataclass(frozen=True)
class LevelPolicy:
    rules: tuple[LevelRule, ...]
    levels: tuple[str, ...]
    needs_postmortem: frozenset[str]
    war_room: frozenset[str]
    default: str = MINOR
    # How often stakeholders hear from a running incident, per level (`update_every`).
    update_every: Mapping[str, timedelta] = field(default_factory=dict)
    # How soon an incident at that level must be acknowledged before it is escalated.
    ack_within: Mapping[str, timedelta] = field(default_factory=dict)

    def level_for(self, title: str, labels: Mapping[str, str] | None = None) -> str:
        """First rule whose pattern matches the title, the alert name or a label value."""
        texts = [title or ""]
        if labels:
            texts += [_words(labels.get("alertname", "")), labels.get("level", "")]
        for rule in self.rules:
            if any(rule.matches(t) for t in texts if t):
                return rule.level
        severity = (labels or {}).get("severity", "").lower()
        return _LABEL_LEVELS.get(severity, self.default)

    def needs_postmortem_for(self, level: str) -> bool:
        return level in self.needs_postmortem

    def needs_war_room(self, level: str) -> bool:
        return level in self.war_room

    def is_lower(self, before: str, after: str) -> bool:
        """`after` is less severe than `before`: later in `levels`, which runs from most to
        least severe (the order `incident help` lists them in). A level the catalog no longer
        has counts as the most severe, so leaving it is always a lowering."""
        rank = {level: i for i, level in enumerate(self.levels)}
        return rank.get(after, -1) > rank.get(before, -1)

    def normalise(self, word: str) -> str | None:
        """A level from user input ("service down", "SERVICE-DOWN", "minor")."""
        w = re.sub(r"[\s_]+", "-", (word or "").strip().lower())
        return w if w in self.levels else None


def lowering_needs_reason(policy: LevelPolicy, before: str, after: str, *, status: str,
                          postmortem_started: bool) -> str | None:
    """Why changing `before` -> `after` needs a reason, or None when it does not. Lowering
    an incident that is over, or whose postmortem has started, rewrites what it meant after
    the fact: the timeline must say who did it and why."""
    if not policy.is_lower(before, after):
        return None
    if status != "open":
        return f"it is {status}"
    if postmortem_started:
        return "its postmortem has started"
    return None


def _words(name: str) -> str:
    """"SearchServiceHighLatency" -> "Search Service High Latency", so word rules match."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", " ", name).replace("_", " ")


def parse_level_policy(raw: Any) -> LevelPolicy:
    """`levels:` in the catalog: rules (ordered, first match wins), needs_postmortem, war_room,
    update_every, ack_within."""
    raw = raw or {}
    if not isinstance(raw, dict):
        raise ValueError("levels: expected a mapping with rules, needs_postmortem and war_room")
    rules = [_rule(r, i) for i, r in enumerate(raw.get("rules") or [])]
    rules += [LevelRule(lvl, re.compile(p, re.IGNORECASE)) for lvl, p in _DEFAULT_RULES]
    levels = tuple(dict.fromkeys([*DEFAULT_LEVELS, *(r.level for r in rules)]))
    needs_pm = frozenset(raw.get("needs_postmortem") or (SERVICE_DOWN, HIGH_ERROR_RATE, HIGH_LATENCY))
    war_room = frozenset(raw.get("war_room") or (SERVICE_DOWN,))
    unknown = (needs_pm | war_room) - set(levels)
    if unknown:
        raise ValueError(f"levels: unknown level(s) {sorted(unknown)}; known: {list(levels)}")
    return LevelPolicy(tuple(rules), levels, needs_pm, war_room,
                       update_every=parse_update_every(raw.get("update_every"), levels),
                       ack_within=parse_ack_within(raw.get("ack_within"), levels))


def _rule(raw: Any, i: int) -> LevelRule:
    if not isinstance(raw, dict) or "level" not in raw or "match" not in raw:
        raise ValueError(f"levels.rules[{i}]: expected {{level: ..., match: <regex>}}")
    try:
        return LevelRule(str(raw["level"]), re.compile(str(raw["match"]), re.IGNORECASE))
    except re.error as exc:
        raise ValueError(f"levels.rules[{i}]: bad regex {raw['match']!r}: {exc}") from None
