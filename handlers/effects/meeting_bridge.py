"""Meeting bridges: a Teams online meeting per incident (Microsoft Graph, createOrGet keyed on
the incident), shown as "Join bridge" on its cards (the channel's and the war room's, updated in
place) and in its trigger e-mail. A service-down root incident gets one on its own; responders
open one for any incident with `incident bridge INC-n`.

Not configured (no Graph, or no FIREBELL_MEETING_ORGANIZER): nothing is queued, the card has no
button, and `incident bridge` and `incident status` say what to set."""
from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from handlers.context import Context
from handlers.effects import incident_email
from handlers.effects.incident_cards import refresh_cards
from handlers.effects.registry import Clients, effect
from incidents import bridge as rules
from incidents.model import FIREBELL, Actor, Incident
from integrations.errors import PermanentFailure
from storage import bridges, outbox
from storage import incidents as store
from storage.outbox import Job
from storage.timeline import note

KIND = "meeting_bridge"
# The trigger e-mail of an incident whose bridge is being opened waits this long for its link
# (it is sent as soon as the bridge is there; without the link if Graph takes longer).
EMAIL_WAITS_AT_MOST = timedelta(seconds=30)


def why_not_configured(ctx: Context) -> str | None:
    """None when bridges work; else what to set."""
    return rules.not_configured(ctx.configured.graph, ctx.configured.meeting_organizer)


def opens_on_its_own(ctx: Context, incident: Incident) -> bool:
    return (ctx.configured.bridge and incident.parent_id is None
            and rules.opens_automatically(incident.level))


async def queue_automatic(ctx: Context, conn: AsyncConnection, incident: Incident) -> bool:
    """A root incident whose level opens a bridge on its own gets one (once)."""
    if not opens_on_its_own(ctx, incident):
        return False
    return await queue_bridge(ctx, conn, incident, FIREBELL)


async def queue_bridge(ctx: Context, conn: AsyncConnection, incident: Incident,
                       asked_by: Actor) -> bool:
    """Queue opening the incident's bridge; False if it was queued before (it is open, being
    opened, or failed: `incident retry`)."""
    if not ctx.configured.bridge:
        return False
    by = None if asked_by.via == "firebell" else asked_by.label
    return await outbox.enqueue(ctx.db, conn, KIND, now=ctx.now(), incident_id=incident.id,
                                payload={"asked_by": by}, once_key=f"{KIND}:{incident.id}")


async def job_state(conn: AsyncConnection, incident_id: int) -> dict[str, Any] | None:
    """The incident's bridge job (status, last_error), if it has one."""
    jobs = [j for j in await outbox.jobs_of(conn, incident_id) if j["kind"] == KIND]
    return jobs[-1] if jobs else None


@effect(KIND, system="graph", shown_as="Meeting bridge")
async def open_bridge(ctx: Context, clients: Clients, job: Job) -> dict[str, Any]:
    async with ctx.db.read() as conn:
        incident = await store.get(conn, job.incident_id)
        found = await bridges.get(conn, job.incident_id)
    if incident is None:
        return {"skipped": "incident gone"}
    if found:
        return {"join_url": found["join_url"], "existing": True}
    organizer = ctx.configured.meeting_organizer
    if clients.graph is None or not organizer:
        raise PermanentFailure(why_not_configured(ctx) or rules.NO_ORGANIZER)
    external_id = rules.external_id(incident, rules.installation_key(ctx.policy.public_base_url))
    meeting = await clients.graph.create_or_get_meeting(organizer, external_id,
                                                        rules.subject(incident))
    async with ctx.db.write() as conn:
        if await bridges.save(ctx.db, conn, incident.id, external_id=external_id,
                              meeting_id=meeting.id, join_url=meeting.join_url,
                              organizer=organizer, now=ctx.now()):
            await _show(ctx, conn, incident, job.payload.get("asked_by"))
    ctx.wake_worker()
    return {"join_url": meeting.join_url, "created": meeting.created}


async def _show(ctx: Context, conn: AsyncConnection, incident: Incident,
                asked_by: str | None) -> None:
    """On the timeline, on every card of the incident and of its linked ones (they show their
    root's bridge), and in the trigger e-mail if that is still waiting for it."""
    asked = f", asked for by {asked_by}" if asked_by else ""
    await note(conn, incident.id, kind="bridge", actor=FIREBELL, at=ctx.now(),
               text=f"meeting bridge opened (Teams meeting; Join bridge on the card{asked})")
    await refresh_cards(ctx, conn, incident.id)
    for child in await store.children(conn, incident.id):
        await refresh_cards(ctx, conn, child.id)
    await incident_email.hurry_triggered(ctx, conn, incident.id)
