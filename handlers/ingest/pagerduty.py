"""PagerDuty webhooks, V3 (`{"event": ...}`) and legacy V2 (`{"messages": [...]}`), to AlertEvents.

Keyed on PagerDuty's incident id (`data.id`), never on `incident_key`: after a resolve, the same
key opens a brand-new incident. Idempotency is on the event id, which a redelivery (same
X-Webhook-Id) and a replay (new X-Webhook-Id) both carry.
"""
from __future__ import annotations

from typing import Any

from incidents.limits import int32
from handlers.ingest.body import parse_json_object
from handlers.ingest.delivery import (Delivery, Rejected, listing, mapping, optional_time,
                                        parse_time, text)
from incidents import alerts as a
from incidents.alerts import AlertEvent

TITLE_LIMIT = 1024
NOTE_LIMIT = 8000

_V3_KINDS = {
    "incident.triggered": a.TRIGGERED,
    "incident.acknowledged": a.ACKNOWLEDGED,
    "incident.unacknowledged": a.UNACKNOWLEDGED,
    "incident.resolved": a.RESOLVED,
    "incident.reopened": a.REOPENED,
    "incident.annotated": a.ANNOTATED,
    "incident.status_update_published": a.ANNOTATED,
    "incident.priority_updated": a.UPDATED,
    "incident.reassigned": a.UPDATED,
    "incident.escalated": a.UPDATED,
    "incident.delegated": a.UPDATED,
    "incident.conference_bridge.updated": a.UPDATED,
    "incident.responder.added": a.UPDATED,
}

_V2_KINDS = {
    "incident.trigger": a.TRIGGERED,
    "incident.acknowledge": a.ACKNOWLEDGED,
    "incident.unacknowledge": a.UNACKNOWLEDGED,
    "incident.resolve": a.RESOLVED,
    "incident.reopen": a.REOPENED,
    "incident.annotate": a.ANNOTATED,
    "incident.assign": a.UPDATED,
    "incident.escalate": a.UPDATED,
    "incident.delegate": a.UPDATED,
}

_DETAILS = {
    "incident.priority_updated": "priority changed",
    "incident.reassigned": "reassigned",
    "incident.escalated": "escalated",
    "incident.delegated": "delegated",
    "incident.conference_bridge.updated": "conference bridge updated",
    "incident.responder.added": "responder added",
    "incident.assign": "reassigned",
    "incident.escalate": "escalated",
    "incident.delegate": "delegated",
}


def parse_pagerduty(body: bytes, delivery_id: str | None) -> Delivery:
    """A signed delivery: V3 or V2."""
    doc = parse_json_object(body)
    if isinstance(doc.get("event"), dict):
        return _v3(doc["event"], delivery_id)
    if isinstance(doc.get("messages"), list):
        return _v2(doc["messages"], delivery_id)
    raise Rejected(400, "not a PagerDuty webhook: expected an `event` object (V3) "
                        "or a `messages` list (V2)")


def parse_pagerduty_v2(body: bytes, delivery_id: str | None) -> Delivery:
    """A delivery let in by ?token= alone: V2 and nothing else.

    401, not 400: the token vouches for legacy V2 deliveries only (PagerDuty never signed
    those); anything else, a V3 event above all, is not authenticated by it and must be signed.
    """
    doc = parse_json_object(body)
    if "event" in doc or not isinstance(doc.get("messages"), list):
        raise Rejected(401, "?token= lets in legacy V2 bodies (a `messages` list) only; "
                            "V3 deliveries must carry a valid X-PagerDuty-Signature")
    return _v2(doc["messages"], delivery_id)


# -- V3 ---------------------------------------------------------------------------------------

def _v3(event: dict[str, Any], delivery_id: str | None) -> Delivery:
    event_type = text(event.get("event_type"), 100) or ""
    kind = _V3_KINDS.get(event_type)
    if kind is None or event.get("resource_type", "incident") != "incident":
        return Delivery("pagerduty", delivery_id, (), (event_type or "unknown",))
    event_id = text(event.get("id"), 200)
    if not event_id:
        raise Rejected(400, "event.id is missing")
    occurred_at = parse_time(event.get("occurred_at"), "event.occurred_at")
    data = mapping(event.get("data"))
    agent = mapping(event.get("agent"))
    common = dict(source="pagerduty", event_id=f"pd3:{event_id}", kind=kind,
                  occurred_at=occurred_at, actor=_person(agent),
                  detail=_DETAILS.get(event_type))
    if kind == a.ANNOTATED:
        return Delivery("pagerduty", delivery_id, (_v3_note(data, common),))
    return Delivery("pagerduty", delivery_id, (_v3_incident(data, common),))


def _v3_note(data: dict[str, Any], common: dict[str, Any]) -> AlertEvent:
    # incident.annotated: data is the note; the incident is a reference in data.incident.
    ref = mapping(data.get("incident"))
    incident_id = text(ref.get("id"), 100)
    if not incident_id:
        raise Rejected(400, "event.data.incident.id is missing")
    note = text(data.get("content") or data.get("message"), NOTE_LIMIT)
    return AlertEvent(external_id=incident_id, note=note, html_url=text(ref.get("html_url"), 500),
                      **common)


def _v3_incident(data: dict[str, Any], common: dict[str, Any]) -> AlertEvent:
    incident_id = text(data.get("id"), 100)
    if not incident_id:
        raise Rejected(400, "event.data.id is missing")
    service = mapping(data.get("service"))
    bridge = mapping(data.get("conference_bridge"))
    originals: dict[str, str] = {}
    return AlertEvent(
        external_id=incident_id,
        title=text(data.get("title"), TITLE_LIMIT),
        service=text(service.get("summary"), 200), service_ref=text(service.get("id"), 100),
        number=_number(data.get("number"), originals), html_url=text(data.get("html_url"), 500),
        incident_key=text(data.get("incident_key"), 255),
        priority=text(mapping(data.get("priority")).get("summary"), 50),
        urgency=text(data.get("urgency"), 20),
        conference_url=text(bridge.get("conference_url"), 1000),
        conference_number=text(bridge.get("conference_number"), 100),
        assignees=_names(data.get("assignees")),
        created_at=optional_time(data.get("created_at"), "event.data.created_at", originals,
                                 "created_at"),
        originals=originals, **common)


# -- V2 ---------------------------------------------------------------------------------------

def _v2(messages: list[Any], delivery_id: str | None) -> Delivery:
    events, ignored = [], []
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise Rejected(400, f"messages[{i}] must be an object")
        event_name = text(message.get("event"), 100) or ""
        kind = _V2_KINDS.get(event_name)
        if kind is None:
            ignored.append(event_name or "unknown")
            continue
        events.append(_v2_event(message, kind, event_name, i))
    return Delivery("pagerduty", delivery_id, tuple(events), tuple(ignored))


def _v2_event(message: dict[str, Any], kind: str, event_name: str, i: int) -> AlertEvent:
    incident = mapping(message.get("incident"))
    incident_id = text(incident.get("id"), 100)
    message_id = text(message.get("id"), 200)
    if not incident_id or not message_id:
        raise Rejected(400, f"messages[{i}] needs an id and incident.id")
    entries = message.get("log_entries") if isinstance(message.get("log_entries"), list) else []
    entry = mapping(entries[0]) if entries else {}
    when, where = _v2_when(message, entry, incident, i)
    service = mapping(incident.get("service"))
    channel = mapping(entry.get("channel"))
    originals: dict[str, str] = {}
    return AlertEvent(
        source="pagerduty", event_id=f"pd2:{message_id}", kind=kind, external_id=incident_id,
        occurred_at=parse_time(when, where),
        title=text(incident.get("title") or incident.get("summary"), TITLE_LIMIT),
        service=text(service.get("name") or service.get("summary"), 200),
        service_ref=text(service.get("id"), 100),
        actor=_person(mapping(entry.get("agent"))),
        number=_number(incident.get("incident_number"), originals),
        html_url=text(incident.get("html_url"), 500),
        incident_key=text(incident.get("incident_key"), 255),
        priority=text(mapping(incident.get("priority")).get("summary"), 50),
        urgency=text(incident.get("urgency"), 20),
        assignees=_names([mapping(x).get("assignee")
                          for x in listing(incident.get("assignments"))]),
        note=text(channel.get("content"), NOTE_LIMIT) if kind == a.ANNOTATED else None,
        detail=_DETAILS.get(event_name),
        created_at=optional_time(incident.get("created_at"), f"messages[{i}].incident.created_at",
                                 originals, "created_at"),
        originals=originals)


def _v2_when(message: dict[str, Any], entry: dict[str, Any], incident: dict[str, Any],
             i: int) -> tuple[Any, str]:
    """When the V2 event happened, and the field that says so (for the error message)."""
    if entry.get("created_at"):
        return entry["created_at"], f"messages[{i}].log_entries[0].created_at"
    if incident.get("created_at") and not message.get("created_on"):
        return incident["created_at"], f"messages[{i}].incident.created_at"
    return message.get("created_on"), f"messages[{i}].created_on"


# -- small helpers ----------------------------------------------------------------------------

def _person(agent: dict[str, Any]) -> str | None:
    # Only people count as actors; a service or integration reference means automation.
    if agent.get("type") not in ("user_reference", "user"):
        return None
    return text(agent.get("summary") or agent.get("name"), 200)


def _names(refs: Any) -> tuple[str, ...]:
    if not isinstance(refs, list):
        return ()
    return tuple(n for n in (text(mapping(r).get("summary"), 200) for r in refs) if n)


def _number(value: Any, originals: dict[str, str]) -> int | None:
    """PagerDuty's incident number, shown on cards. One the column cannot hold is left out and
    kept, as sent, in the incident's details: refusing the delivery would lose the page."""
    number = int32(value)
    if number is None and isinstance(value, int) and not isinstance(value, bool):
        originals["number"] = str(value)
    return number
