"""Pages on the write path: `incident page` records the page (and its timeline entry) and
queues the PagerDuty incident that pages; PagerDuty's webhooks about that incident then move the
page (triggered, acknowledged by whom, resolved) and the incident's card shows it.

`page_of` is the one place that decides whether a PagerDuty event is about a page: its
PagerDuty incident id, or its incident_key (the first webhook can arrive before the job that
made the incident has recorded its id). Such an event never opens an incident of its own for a
page linked to one; a page sent without an incident lets it open one as usual (that card then
shows the page's PagerDuty incident)."""
from __future__ import annotations

import secrets
from typing import Any, Iterable

from sqlalchemy.ext.asyncio import AsyncConnection

from handlers.context import Context
from handlers.effects.incident_cards import refresh_cards
from handlers.effects.pagerduty_page import queue_page
from incidents import alerts as a
from incidents import paging as rules
from incidents.alerts import AlertEvent
from incidents.model import Actor, Incident
from incidents.paging import PageTarget
from storage import pages as store
from storage.timeline import note

TITLE_LIMIT = 1024


async def request_page(ctx: Context, conn: AsyncConnection, actor: Actor, target: PageTarget,
                       incident: Incident | None, message: str) -> int:
    now = ctx.now()
    page_id = await store.insert(conn, {
        "incident_id": incident.id if incident else None, "target_kind": target.kind,
        "target": target.key, "target_label": target.label,
        "title": _title(incident, message, actor, target), "message": message or None,
        "requested_by": actor.label, "pd_service_id": target.service_id,
        "escalation_policy_id": target.escalation_policy_id, "assignee_id": target.assignee_id,
        # Random, so two Firebells on one PagerDuty account never take each other's pages.
        "incident_key": f"firebell-page-{secrets.token_hex(8)}"}, now)
    await queue_page(ctx, conn, page_id, incident.id if incident else None)
    if incident is not None:
        await note(conn, incident.id, kind="page", actor=actor, at=now,
                   text=f"paged {target.label} in PagerDuty" + (f": {message}" if message else ""))
        await refresh_cards(ctx, conn, incident.id)
    return page_id


def _title(incident: Incident | None, message: str, actor: Actor, target: PageTarget) -> str:
    about = message or (incident.title if incident else f"{actor.label} pages {target.label} "
                                                        "from Teams")
    return (f"{incident.ref}: {about}" if incident else about)[:TITLE_LIMIT]


class Pages:
    """The pages a webhook batch's events may be about, looked up once per batch."""

    def __init__(self, rows: Iterable[dict[str, Any]]):
        self.by_id = {r["pd_incident_id"]: r for r in rows if r["pd_incident_id"]}
        self.by_key = {r["incident_key"]: r for r in rows}

    @classmethod
    async def load(cls, conn: AsyncConnection, events: Iterable[AlertEvent]) -> "Pages":
        events = [e for e in events if e.source == "pagerduty"]
        return cls(await store.matching(conn, [e.external_id for e in events],
                                        [e.incident_key for e in events if e.incident_key],
                                        lock=True))

    def page_of(self, event: AlertEvent) -> dict[str, Any] | None:
        if event.source != "pagerduty":
            return None
        return self.by_id.get(event.external_id) or (
            self.by_key.get(event.incident_key) if event.incident_key else None)

    def remember(self, page: dict[str, Any]) -> None:
        self.by_key[page["incident_key"]] = page
        if page["pd_incident_id"]:
            self.by_id[page["pd_incident_id"]] = page


async def apply_page_event(ctx: Context, conn: AsyncConnection, page: dict[str, Any],
                           event: AlertEvent) -> dict[str, Any]:
    """What PagerDuty says about a page's incident; returns the page as it is now."""
    if event.kind == a.ANNOTATED and event.note and page["incident_id"]:
        await note(conn, page["incident_id"], kind="note", at=event.occurred_at,
                   actor=Actor(event.actor or "PagerDuty", "pagerduty"),
                   text=f"PagerDuty note on the page to {page['target_label']}: {event.note}")
    changes, said = _page_changes(page, event)
    if not changes:
        return page
    now = ctx.now()
    await store.set_fields(conn, page["id"], now, **changes)
    page = {**page, **changes}
    if page["incident_id"] and said:
        number = f" (PagerDuty #{page['pd_number']})" if page["pd_number"] else ""
        await note(conn, page["incident_id"], kind="page", at=event.occurred_at,
                   actor=Actor(event.actor or "PagerDuty", "pagerduty"),
                   text=f"page to {page['target_label']}{number} {said}")
        await refresh_cards(ctx, conn, page["incident_id"])
    return page


def _page_changes(page: dict[str, Any], event: AlertEvent) -> tuple[dict[str, Any], str | None]:
    changes: dict[str, Any] = {}
    for column, value in (("pd_incident_id", event.external_id), ("pd_number", event.number),
                          ("html_url", event.html_url)):
        if value and not page[column]:
            changes[column] = value
    if event.assignees and list(event.assignees) != list(page["assignees"] or []):
        changes["assignees"] = list(event.assignees)
    if page["last_event_at"] and event.occurred_at < page["last_event_at"]:
        return changes, None  # late: a newer state is already known
    status, said = _status_after(page, event)
    if status and status != page["status"]:
        changes.update(status=status, last_event_at=event.occurred_at)
        if status == rules.ACKNOWLEDGED:
            changes.update(acknowledged_by=event.actor or "PagerDuty",
                           acknowledged_at=event.occurred_at)
        if status == rules.RESOLVED:
            changes["resolved_at"] = event.occurred_at
        return changes, said
    return changes, None


def _status_after(page: dict[str, Any], event: AlertEvent) -> tuple[str | None, str | None]:
    kind = event.kind
    if kind == a.ACKNOWLEDGED:
        return rules.ACKNOWLEDGED, f"acknowledged by {event.actor or 'PagerDuty'}"
    if kind == a.RESOLVED:
        return rules.RESOLVED, "resolved in PagerDuty"
    if kind in (a.TRIGGERED, a.REOPENED, a.UNACKNOWLEDGED):
        said = "unacknowledged" if kind == a.UNACKNOWLEDGED else (
            "reopened" if page["status"] == rules.RESOLVED else "triggered, paging")
        return rules.TRIGGERED, said
    return None, None
