"""What a change to a root incident implies beyond its card: postmortem, war room, meeting
bridge, JIRA, e-mail, PagerDuty, the close summary. Each is queued as an outbox job in the caller's
transaction; none is called here. Duplicates and cascade children get none of their own: they
fold into their root."""
from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from handlers.context import Context
from handlers.effects import incident_email, meeting_bridge, pagerduty_status, war_room
from handlers.incident.postmortem import ensure_postmortem
from handlers.reports.close_summary import queue_close_summary
from incidents import postmortem as pm_rules
from incidents.model import Actor, Incident
from storage import postmortems as pm_store


async def on_announce(ctx: Context, conn: AsyncConnection, incident: Incident) -> None:
    """A new root incident: everything its level calls for."""
    await ensure_postmortem(ctx, conn, incident)
    await war_room.queue_war_room(ctx, conn, incident)
    # The trigger e-mail shows the bridge's link: it waits (a little) for the bridge.
    bridging = await meeting_bridge.queue_automatic(ctx, conn, incident)
    await incident_email.queue_triggered(
        ctx, conn, incident, wait=meeting_bridge.EMAIL_WAITS_AT_MOST if bridging else None)


async def on_level_change(ctx: Context, conn: AsyncConnection, incident: Incident) -> None:
    if incident.parent_id is None and incident.correlated:
        await ensure_postmortem(ctx, conn, incident)
        await war_room.queue_war_room(ctx, conn, incident)
        await meeting_bridge.queue_automatic(ctx, conn, incident)


async def on_linked(ctx: Context, conn: AsyncConnection, child: Incident, root: Incident) -> None:
    await war_room.queue_join(ctx, conn, child, root)


async def on_status_change(ctx: Context, conn: AsyncConnection, before: Incident,
                           after: Incident, actor: Actor) -> None:
    if actor.via == "teams" and after.status == "resolved":
        await pagerduty_status.queue_status(ctx, conn, after, "resolved")
    if after.status == "resolved" and after.parent_id is None:
        due = pm_rules.due_after(after.resolved_at or ctx.now(),
                                 ctx.policy.postmortem_due_business_days, ctx.catalog.timezone)
        await pm_store.set_fields(conn, after.id, due_at=due)
    if after.status == "closed" and after.announced:
        # One nobody was told about (held back in maintenance, recorded only) closes quietly.
        await queue_close_summary(ctx, conn, after)
        await incident_email.queue_closed(ctx, conn, after)


async def on_acknowledged(ctx: Context, conn: AsyncConnection, incident: Incident,
                          actor: Actor) -> None:
    if actor.via == "teams":
        await pagerduty_status.queue_status(ctx, conn, incident, "acknowledged")
