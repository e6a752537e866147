"""AlertEvent: one thing an alerting system told us about one incident, whatever its wire format.

PagerDuty V3, PagerDuty V2 and Alertmanager bodies are parsed into these (handlers/ingest), so
the ingestion use case and everything after it never sees a vendor payload.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Mapping

# What happened, in Firebell's words. PagerDuty's triggered/acknowledged/... map onto these.
TRIGGERED = "triggered"
ACKNOWLEDGED = "acknowledged"
UNACKNOWLEDGED = "unacknowledged"
RESOLVED = "resolved"
REOPENED = "reopened"
ANNOTATED = "annotated"
UPDATED = "updated"  # priority, assignment, escalation, title... : facts change, status does not


@dataclass(frozen=True)
class AlertEvent:
    source: str                      # "pagerduty" | "alertmanager"
    event_id: str                    # natural id: a redelivery or replay carries the same one
    kind: str                        # one of the constants above
    external_id: str                 # PagerDuty incident id / Alertmanager groupKey
    occurred_at: datetime
    title: str | None = None
    service: str | None = None       # service name as the sender knows it
    service_ref: str | None = None   # PagerDuty service id
    actor: str | None = None         # who did it (display name); None = automation
    number: int | None = None
    html_url: str | None = None
    incident_key: str | None = None
    priority: str | None = None
    urgency: str | None = None
    conference_url: str | None = None
    conference_number: str | None = None
    assignees: tuple[str, ...] = ()
    note: str | None = None
    detail: str | None = None        # a one-line description of what changed, for the timeline
    created_at: datetime | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    alerts: tuple[Mapping[str, Any], ...] = ()   # Alertmanager: per-alert fingerprint and status
    fingerprint: str | None = None   # set by senders that know identity better than the title
    # What the sender said where Firebell stores something else (a number beyond the column,
    # a time outside the accepted range): kept in the incident's details as "original".
    originals: Mapping[str, str] = field(default_factory=dict)
