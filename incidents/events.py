"""What an alert event means for an incident, as rules: the row of a new incident (service, team
and level from the catalog), its first timeline entry, and what a later event changes on a known
one (status, acknowledgement, facts like priority or the conference bridge). Pure: the
ingestion batch (handlers/ingest/batch.py) reads and writes."""
from __future__ import annotations

from datetime import timedelta
from typing import Any

from incidents import alerts as a
from incidents import postmortem as pm_rules
from incidents.alerts import AlertEvent
from incidents.catalog import Catalog
from incidents.fingerprint import title_fingerprint
from incidents.lifecycle import OPEN, RESOLVED
from incidents.model import Actor, Incident

Key = tuple[str, str]


def rows_by_key(rows: list[dict[str, Any]]) -> dict[Key, dict[str, Any]]:
    return {(r["source"], r["external_id"]): r for r in rows}


def new_incident_row(catalog: Catalog, event: AlertEvent, *, duplicate_window: timedelta,
                     recurrence_of: int | None = None) -> dict[str, Any]:
    """The row of a new incident: service, team and level from the catalog."""
    service = catalog.service_by_pagerduty_id(event.service_ref) or catalog.service(event.service)
    service_name = service.name if service else event.service
    team = service.owner_team if service else _team_from_labels(catalog, event.labels)
    title = event.title or f"PagerDuty incident {event.external_id} (details to follow)"
    level = catalog.levels.level_for(title, event.labels)
    resolved = event.kind == a.RESOLVED
    acked = event.kind == a.ACKNOWLEDGED
    started = event.created_at or event.occurred_at
    return {
        "source": event.source, "external_id": event.external_id, "title": title,
        "service": service_name, "team": team,
        "level": level,
        "postmortem_required": pm_rules.required_after(False, level, True, catalog.levels),
        "status": RESOLVED if resolved else OPEN, "triggered_at": started,
        "resolved_at": event.occurred_at if resolved else None,
        "acknowledged_by": actor_of(event).label if acked else None,
        "acknowledged_at": event.occurred_at if acked else None,
        "first_acknowledged_at": event.occurred_at if acked else None,
        "fingerprint": event.fingerprint or title_fingerprint(service_name, title),
        "last_event_at": event.occurred_at, "recurrence_of": recurrence_of,
        "duplicate_window_until": started + duplicate_window,
        "details": _details(event),
        "assignees": [], "priority": None, "urgency": None, "pd_number": None,
        "html_url": None, "incident_key": None, "conference_url": None,
        "conference_number": None, **_facts(event)}


def opened_entry(incident_id: int, event: AlertEvent, service: str | None) -> dict[str, Any]:
    actor = actor_of(event)
    return {"incident_id": incident_id, "at": event.created_at or event.occurred_at,
            "kind": "triggered", "text": _opened_text(event, service), "via": actor.via,
            "actor": actor.label, "data": {"event_id": event.event_id}}


def status_changes(incident: Incident, event: AlertEvent) -> tuple[dict[str, Any], str | None]:
    # A late event (older than the newest status event applied) must not undo a newer one.
    if incident.last_event_at and event.occurred_at < incident.last_event_at:
        return {}, None
    who = actor_of(event).label
    kind, status = event.kind, incident.status
    if kind == a.ACKNOWLEDGED and status == OPEN and not incident.acknowledged_by:
        return {"acknowledged_by": who, "acknowledged_at": event.occurred_at,
                "first_acknowledged_at": incident.first_acknowledged_at or event.occurred_at}, \
            f"acknowledged by {who}"
    if kind == a.UNACKNOWLEDGED and status == OPEN and incident.acknowledged_by:
        return {"acknowledged_by": None, "acknowledged_at": None}, "unacknowledged"
    if kind == a.RESOLVED and status == OPEN:
        return {"status": RESOLVED, "resolved_at": event.occurred_at}, "resolved"
    reopen = kind == a.REOPENED or (kind == a.TRIGGERED and event.source == "alertmanager")
    if reopen and status != OPEN:
        return {"status": OPEN, "resolved_at": None, "closed_at": None, "acknowledged_by": None,
                "acknowledged_at": None}, "reopened"
    return {}, None


def fact_changes(incident: Incident, event: AlertEvent) -> tuple[dict[str, Any], list[str]]:
    """Priority, urgency, bridge, assignees, alert states: what is new in this event."""
    changes: dict[str, Any] = {}
    said: list[str] = []
    for field_name, value in _facts(event).items():
        if value and value != getattr(incident, field_name):
            changes[field_name] = value
    if "priority" in changes:
        said.append(f"priority {incident.priority or 'none'} → {changes['priority']}")
    if "conference_url" in changes:
        said.append("conference bridge attached")
    if "assignees" in changes:
        said.append("assigned to " + ", ".join(changes["assignees"]))
    if event.title and incident.title.endswith("(details to follow)"):
        changes["title"] = event.title
    if event.source == "alertmanager" and event.alerts:
        details = {**incident.details, "alerts": list(event.alerts)}
        if details != dict(incident.details):
            changes["details"] = details
            said.append(event.detail or "alert states changed")
    if event.originals:
        details = changes.get("details") or dict(incident.details)
        original = {**details.get("original", {}), **event.originals}
        if original != details.get("original"):
            changes["details"] = {**details, "original": original}
    return changes, said


def _details(event: AlertEvent) -> dict[str, Any]:
    details: dict[str, Any] = {"labels": dict(event.labels), "alerts": list(event.alerts)} \
        if event.source == "alertmanager" else {}
    if event.originals:  # what the sender said where Firebell stored something else
        details["original"] = dict(event.originals)
    return details


def _facts(event: AlertEvent) -> dict[str, Any]:
    facts: dict[str, Any] = {
        "priority": event.priority, "urgency": event.urgency, "pd_number": event.number,
        "html_url": event.html_url, "incident_key": event.incident_key,
        "conference_url": event.conference_url, "conference_number": event.conference_number,
    }
    if event.assignees:
        facts["assignees"] = list(event.assignees)
    return {k: v for k, v in facts.items() if v is not None}


def _opened_text(event: AlertEvent, service: str | None) -> str:
    if event.source == "alertmanager":
        return f"Alertmanager group firing on {service or 'an unknown service'} ({event.detail})"
    number = f" #{event.number}" if event.number else ""
    return f"Triggered in PagerDuty{number} on {service or 'an unknown service'}"


def actor_of(event: AlertEvent) -> Actor:
    if event.actor:
        return Actor(event.actor, event.source)
    return Actor("PagerDuty" if event.source == "pagerduty" else "Alertmanager", event.source)


def _team_from_labels(catalog: Catalog, labels: Any) -> str | None:
    team = catalog.find_team(str(labels.get("team", ""))) if labels else None
    return team.key if team else None
