"""Two-way PagerDuty: Acknowledge and Resolve clicked in Teams also acknowledge and resolve the
PagerDuty incident, so escalation stops. The webhook PagerDuty sends back then changes nothing
(the incident is already in that state)."""
from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from handlers.context import Context
from handlers.effects.registry import Clients, effect
from incidents.model import FIREBELL, Incident
from storage import incidents as store
from storage import outbox
from storage.outbox import Job
from storage.timeline import note


async def queue_status(ctx: Context, conn: AsyncConnection, incident: Incident,
                       status: str) -> None:
    """`status`: acknowledged | resolved. Only for PagerDuty's own incidents, and only when
    PagerDuty is connected (else the card says Teams changes are Firebell-only)."""
    if ctx.configured.pagerduty and incident.source == "pagerduty" and incident.external_id:
        await outbox.enqueue(ctx.db, conn, "pagerduty_status", now=ctx.now(),
                             incident_id=incident.id, payload={"status": status},
                             once_key=f"pagerduty_status:{incident.id}:{status}:"
                                      f"{incident.version}")


@effect("pagerduty_status", system="pagerduty", shown_as="PagerDuty")
async def set_pagerduty_status(ctx: Context, clients: Clients, job: Job) -> dict[str, Any]:
    async with ctx.db.read() as conn:
        incident = await store.get(conn, job.incident_id)
    if incident is None or not incident.external_id:
        return {"skipped": "no PagerDuty incident"}
    status = job.payload["status"]
    result = await clients.pagerduty.set_status(incident.external_id, status)
    async with ctx.db.write() as conn:
        await note(conn, incident.id, kind="pagerduty", actor=FIREBELL, at=ctx.now(),
                   text=f"PagerDuty incident {incident.external_id} {status} from Teams")
    return {"status": status, "result": str(result)}
