"""Two-way PagerDuty: Acknowledge and Resolve clicked in Teams also acknowledge and resolve the
PagerDuty incident, so escalation stops. The webhook PagerDuty sends back then changes nothing
(the incident is already in that state)."""
from __future__ import annotations

from typing import Any

from handlers.changes import note
from handlers.context import Context
from handlers.jobs import job
from incidents.model import FIREBELL
from storage import incidents as store
from storage.outbox import Job


@job("pagerduty_status")
async def set_pagerduty_status(ctx: Context, job: Job) -> dict[str, Any]:
    async with ctx.db.read() as conn:
        incident = await store.get(conn, job.incident_id)
    if incident is None or not incident.external_id:
        return {"skipped": "no PagerDuty incident"}
    status = job.payload["status"]
    result = await ctx.pagerduty.set_status(incident.external_id, status)
    async with ctx.db.write() as conn:
        await note(conn, incident.id, kind="pagerduty", actor=FIREBELL, at=ctx.now(),
                   text=f"PagerDuty incident {incident.external_id} {status} from Teams")
    return {"status": status, "result": str(result)}
