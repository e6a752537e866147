"""A page from Teams (`incident page`): a PagerDuty incident created through the REST API (`POST
/incidents`, `From: PAGERDUTY_FROM_EMAIL`) on the target's escalation policy, or assigned to
the person, exactly once: one outbox job per page (its once_key), and the page's own
`incident_key`, under which PagerDuty refuses a second open incident. A retry after a lost
answer first asks PagerDuty for the incident under that key, so it never pages twice. The
PagerDuty incident's id, number and link are recorded on the page; the incident's cards show it.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from handlers.context import Context
from handlers.effects.incident_cards import refresh_cards
from handlers.effects.registry import Clients, effect
from incidents import paging as rules
from incidents.model import FIREBELL, ref
from integrations.errors import PermanentFailure
from integrations.pagerduty import CreatedIncident
from storage import outbox
from storage import pages as store
from storage.outbox import Job
from storage.timeline import note

KIND = "pagerduty_page"


async def queue_page(ctx: Context, conn: AsyncConnection, page_id: int,
                     incident_id: int | None) -> None:
    await outbox.enqueue(ctx.db, conn, KIND, now=ctx.now(), incident_id=incident_id,
                         payload={"page": page_id}, once_key=f"{KIND}:{page_id}")


@effect(KIND, system="pagerduty", shown_as="PagerDuty page")
async def create_page(ctx: Context, clients: Clients, job: Job) -> dict[str, Any]:
    async with ctx.db.read() as conn:
        page = await store.get(conn, job.payload["page"])
    if page is None:
        return {"skipped": "no such page"}
    if page["pd_incident_id"]:
        return {"pd_incident": page["pd_incident_id"]}  # made by an earlier attempt
    if clients.pagerduty is None:
        raise PermanentFailure("PagerDuty is not configured: set PAGERDUTY_API_TOKEN and "
                               "PAGERDUTY_FROM_EMAIL")
    made = None
    if job.attempts > 1:  # the earlier attempt may have made it and lost PagerDuty's answer
        made = await clients.pagerduty.find_incident_by_key(page["incident_key"])
    if made is None:
        made = await clients.pagerduty.create_incident(
            title=page["title"], service_id=page["pd_service_id"],
            incident_key=page["incident_key"],
            details=_details(page), escalation_policy_id=page["escalation_policy_id"],
            assignee_ids=[page["assignee_id"]] if page["assignee_id"] else [])

    async def record(conn: AsyncConnection) -> None:
        await _record(ctx, conn, page["id"], made)
    await ctx.db.write_patiently(record, for_seconds=job.lease_left(ctx.now()))
    return {"pd_incident": made.id, "number": made.number, "created": made.created}


async def _record(ctx: Context, conn: AsyncConnection, page_id: int,
                  made: CreatedIncident) -> None:
    page = await store.get(conn, page_id, lock=True)
    now = ctx.now()
    values: dict[str, Any] = {"pd_incident_id": made.id, "pd_number": page["pd_number"]
                              or made.number, "html_url": page["html_url"] or made.html_url}
    if page["status"] == rules.REQUESTED:  # PagerDuty's webhook may have told more already
        values["status"] = rules.TRIGGERED
    await store.set_fields(conn, page_id, now, **values)
    if page["incident_id"]:
        number = f" #{made.number}" if made.number else ""
        await note(conn, page["incident_id"], kind="page", actor=FIREBELL, at=now,
                   text=f"PagerDuty incident{number} made: paging {page['target_label']}")
        await refresh_cards(ctx, conn, page["incident_id"])


def _details(page: dict[str, Any]) -> str:
    lines = [f"Paged from Microsoft Teams by {page['requested_by']} via Firebell."]
    if page["incident_id"]:
        lines.append(f"For Firebell incident {ref(page['incident_id'])}.")
    if page["message"]:
        lines.append(f"Message: {page['message']}")
    return "\n".join(lines)
