"""Alert ingestion, in named stages: remember (idempotency) -> open or apply -> queue correlation.

Runs inside the caller's transaction: the webhook door commits several deliveries together
(group commit), and a batch is set-based where a storm needs it — one statement for the event
ids, one to find known incidents, one to insert the new ones — and per incident where an event
changes one. Makes no outside call. A new incident gets no card yet: its correlation job decides
first whether it is a root (card, war room, ...) or folds into another incident.
"""
from __future__ import annotations

from typing import Any, Sequence

from sqlalchemy.ext.asyncio import AsyncConnection

from handlers.changes import change, note
from handlers.context import Context
from incidents import alerts as a
from incidents.alerts import AlertEvent
from incidents import postmortem as pm_rules
from incidents.fingerprint import title_fingerprint
from incidents.lifecycle import CLOSED, OPEN, RESOLVED
from incidents.model import Actor, Incident
from storage import inbound, outbox
from storage import incidents as store

CREATED, UPDATED, UNCHANGED, REPEATED = "created", "updated", "unchanged", "repeated"
Key = tuple[str, str]


async def ingest_batch(ctx: Context, conn: AsyncConnection,
                       deliveries: Sequence[Sequence[AlertEvent]]) -> list[list[str]]:
    """Every event of every delivery, in arrival order; one outcome per event."""
    batch = _Batch(ctx, conn)
    await batch.start([e for d in deliveries for e in d])
    outcomes = [[await batch.ingest(e) for e in delivery] for delivery in deliveries]
    await batch.flush()
    return outcomes


class _Batch:
    def __init__(self, ctx: Context, conn: AsyncConnection):
        self.ctx, self.conn, self.now = ctx, conn, ctx.now()
        self.owned: set[str] = set()
        self.known: dict[Key, Incident] = {}
        self.stale: set[Key] = set()                        # changed here: read it again
        self.pending: dict[Key, tuple[AlertEvent, int | None]] = {}   # new, not inserted yet

    async def start(self, events: list[AlertEvent]) -> None:
        self.owned = await inbound.claim_many(self.ctx.db, self.conn,
                                              [e.event_id for e in events], self.now)
        keys = [(e.source, e.external_id) for e in events if e.event_id in self.owned]
        self.known = await store.by_external_many(self.conn, keys, lock=True)

    async def ingest(self, event: AlertEvent) -> str:
        if event.event_id not in self.owned:
            return REPEATED  # delivered before (or twice in this batch)
        self.owned.discard(event.event_id)
        key = (event.source, event.external_id)
        if key in self.pending:
            await self.flush()  # a later event for an incident this batch creates
        incident = await self._current(key)
        if incident is None:
            self.pending[key] = (event, None)
            return CREATED
        if incident.status == CLOSED and event.source == "alertmanager" \
                and event.kind == a.TRIGGERED:
            # The group fired again after its incident was closed: a new incident, a recurrence.
            await store.update_fields(self.conn, incident, {
                "external_id": f"{incident.external_id}#{incident.ref}"}, self.now)
            self.known.pop(key, None)
            self.pending[key] = (event, incident.id)
            return CREATED
        self.stale.add(key)
        return UPDATED if await apply_event(self.ctx, self.conn, incident, event) else UNCHANGED

    async def _current(self, key: Key) -> Incident | None:
        if key in self.stale:
            self.stale.discard(key)
            found = await store.get_by_external(self.conn, *key, lock=True)
            if found:
                self.known[key] = found
        return self.known.get(key)

    async def flush(self) -> None:
        """Insert the new incidents, their first timeline entries and correlation jobs."""
        if not self.pending:
            return
        pending, self.pending = self.pending, {}
        rows = [incident_row(self.ctx, e, recurrence_of=r) for e, r in pending.values()]
        ids = await store.insert_many(self.ctx.db, self.conn, rows, self.now)
        timeline, jobs = [], []
        for key, (event, _) in pending.items():
            self.stale.add(key)
            if key not in ids:  # another replica created it a moment ago: apply to it
                incident = await self._current(key)
                if incident is not None:
                    await apply_event(self.ctx, self.conn, incident, event)
                continue
            timeline.append(_opened_entry(ids[key], event, rows_by_key(rows)[key]["service"]))
            jobs.append({"kind": "correlate", "incident_id": ids[key],
                         "coalesce_key": f"correlate:{ids[key]}"})
        await store.add_timeline_many(self.conn, timeline)
        await outbox.enqueue_many(self.ctx.db, self.conn, jobs, self.now)


def rows_by_key(rows: list[dict[str, Any]]) -> dict[Key, dict[str, Any]]:
    return {(r["source"], r["external_id"]): r for r in rows}


def incident_row(ctx: Context, event: AlertEvent, *, recurrence_of: int | None = None
                 ) -> dict[str, Any]:
    """The row of a new incident: service, team and level from the catalog."""
    catalog = ctx.catalog
    service = catalog.service_by_pagerduty_id(event.service_ref) or catalog.service(event.service)
    service_name = service.name if service else event.service
    team = service.owner_team if service else _team_from_labels(ctx, event.labels)
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
        "acknowledged_by": _actor(event).label if acked else None,
        "acknowledged_at": event.occurred_at if acked else None,
        "first_acknowledged_at": event.occurred_at if acked else None,
        "fingerprint": event.fingerprint or title_fingerprint(service_name, title),
        "last_event_at": event.occurred_at, "recurrence_of": recurrence_of,
        "duplicate_window_until": started + ctx.policy.duplicate_window,
        "details": _details(event),
        "assignees": [], "priority": None, "urgency": None, "pd_number": None,
        "html_url": None, "incident_key": None, "conference_url": None,
        "conference_number": None, **_facts(event)}


def _opened_entry(incident_id: int, event: AlertEvent, service: str | None) -> dict[str, Any]:
    actor = _actor(event)
    return {"incident_id": incident_id, "at": event.created_at or event.occurred_at,
            "kind": "triggered", "text": _opened_text(event, service), "via": actor.via,
            "actor": actor.label, "data": {"event_id": event.event_id}}


async def apply_event(ctx: Context, conn: AsyncConnection, incident: Incident,
                      event: AlertEvent) -> bool:
    """Apply what the event says to a known incident; False when it changes nothing."""
    changes, said = _fact_changes(incident, event)
    status_changes, status_text = _status_changes(incident, event)
    changes.update(status_changes)
    if status_changes:
        changes["last_event_at"] = event.occurred_at
    if event.kind == a.ANNOTATED and event.note:
        # A note is a timeline entry only; the live card does not show notes.
        await note(conn, incident.id, kind="note", text=event.note, actor=_actor(event),
                   at=event.occurred_at)
        if not changes:
            return True
    if not changes:
        return False
    text = "; ".join(x for x in [status_text, *said] if x)
    await change(ctx, conn, incident, changes, kind=event.kind, actor=_actor(event),
                 text=text or (event.detail or "updated"), at=event.occurred_at,
                 data={"event_id": event.event_id})
    return True


def _status_changes(incident: Incident, event: AlertEvent) -> tuple[dict[str, Any], str | None]:
    # A late event (older than the newest status event applied) must not undo a newer one.
    if incident.last_event_at and event.occurred_at < incident.last_event_at:
        return {}, None
    who = _actor(event).label
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


def _fact_changes(incident: Incident, event: AlertEvent) -> tuple[dict[str, Any], list[str]]:
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


def _actor(event: AlertEvent) -> Actor:
    if event.actor:
        return Actor(event.actor, event.source)
    return Actor("PagerDuty" if event.source == "pagerduty" else "Alertmanager", event.source)


def _team_from_labels(ctx: Context, labels: Any) -> str | None:
    team = ctx.catalog.find_team(str(labels.get("team", ""))) if labels else None
    return team.key if team else None

