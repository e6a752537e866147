"""The incident record as the rest of Firebell sees it (a stored row, read-only)."""
from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, Mapping

_REF = re.compile(r"^\s*(?:inc-?)?#?(\d{1,12})\s*$", re.IGNORECASE)


def ref(incident_id: int) -> str:
    return f"INC-{incident_id}"


def parse_ref(text: str | None) -> int | None:
    """`INC-7`, `inc-7`, `#7` or `7` -> 7; anything else -> None."""
    m = _REF.match(text or "")
    return int(m.group(1)) if m else None


@dataclass(frozen=True)
class Incident:
    id: int
    source: str
    external_id: str | None
    title: str
    service: str | None
    team: str | None
    level: str
    status: str
    triggered_at: datetime
    fingerprint: str
    version: int
    created_at: datetime
    updated_at: datetime
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    first_acknowledged_at: datetime | None = None
    resolved_at: datetime | None = None
    closed_at: datetime | None = None
    commander: str | None = None
    declared_by: str | None = None
    priority: str | None = None
    urgency: str | None = None
    pd_number: int | None = None
    html_url: str | None = None
    incident_key: str | None = None
    conference_url: str | None = None
    conference_number: str | None = None
    assignees: list[str] = field(default_factory=list)
    details: Mapping[str, Any] = field(default_factory=dict)
    last_event_at: datetime | None = None
    correlated: bool = False
    parent_id: int | None = None
    link_kind: str | None = None
    link_by: str | None = None
    link_reason: str | None = None
    no_auto_link: bool = False
    recurrence_of: int | None = None
    duplicate_window_until: datetime | None = None
    postmortem_required: bool = False       # sticky: see incidents.postmortem.required_after
    private: bool = False                   # seen by its members and admins only
    maintenance_id: int | None = None       # stored unannounced during that maintenance window
    routed: str | None = None               # "recorded": a routing rule kept it off Teams

    @property
    def ref(self) -> str:
        return ref(self.id)

    @property
    def is_open(self) -> bool:
        return self.status == "open"

    @property
    def announced(self) -> bool:
        """People were told of it (its card is out, in a channel or its private chat); not one
        still undecided, held back by a maintenance window or only recorded by routing."""
        return self.correlated or self.private

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> "Incident":
        values = {name: row[name] for name in _FIELDS if name in row}
        if len(values) < len(_FIELDS):   # a partial row: the dataclass fills in (or refuses)
            return cls(**values)
        # A whole row (every select of the incidents table): set the fields directly. Every
        # correlation decision reads a dozen rows, and a frozen dataclass's __init__ sets its
        # 45 fields one object.__setattr__ at a time.
        incident = object.__new__(cls)
        incident.__dict__.update(values)
        return incident


_FIELDS = tuple(f.name for f in fields(Incident))


@dataclass(frozen=True)
class Actor:
    """Who did something: a Teams user, a PagerDuty user, or Firebell itself."""
    name: str
    via: str                      # teams | pagerduty | alertmanager | firebell | api
    email: str | None = None
    aad_object_id: str | None = None

    @property
    def label(self) -> str:
        return self.name or self.email or "someone"


FIREBELL = Actor("Firebell", "firebell")
