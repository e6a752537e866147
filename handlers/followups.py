"""What a change to a root incident implies beyond its card: postmortem, war room, JIRA,
e-mail, PagerDuty. Each is queued as an outbox job in the caller's transaction; none is called
here. Duplicates and cascade children get none of their own: they fold into their root."""
from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from handlers.context import Context
from handlers.postmortems import ensure_postmortem
from incidents import postmortem as pm_rules
from incidents.model import Actor, Incident
from storage import outbox
from storage import postmortems as pm_store


async def on_announce(ctx: Context, conn: AsyncConnection, incident: Incident) -> None:
    """A new root incident: everything its level calls for."""
    await ensure_postmortem(ctx, conn, incident)
    await ensure_war_room(ctx, conn, incident)
    if ctx.mailer is not None and incident.level in ctx.policy.trigger_email_levels:
        await outbox.enqueue(ctx.db, conn, "incident_email", now=ctx.now(),
                             incident_id=incident.id, payload={"event": "triggered"},
                             once_key=f"email:triggered:{incident.id}")


async def on_level_change(ctx: Context, conn: AsyncConnection, incident: Incident) -> None:
    if incident.parent_id is None and incident.correlated:
        await ensure_postmortem(ctx, conn, incident)
        await ensure_war_room(ctx, conn, incident)


async def ensure_war_room(ctx: Context, conn: AsyncConnection, incident: Incident) -> None:
    if ctx.graph is None or not ctx.catalog.levels.needs_war_room(incident.level):
        return
    await outbox.enqueue(ctx.db, conn, "war_room", now=ctx.now(), incident_id=incident.id,
                         once_key=f"war_room:{incident.id}")


async def on_linked(ctx: Context, conn: AsyncConnection, child: Incident, root: Incident) -> None:
    """A child joins its root's war room instead of getting one."""
    if ctx.graph is None or not ctx.catalog.levels.needs_war_room(root.level):
        return
    await outbox.enqueue(ctx.db, conn, "war_room_join", now=ctx.now(), incident_id=root.id,
                         payload={"child_id": child.id},
                         once_key=f"war_room_join:{root.id}:{child.id}")


async def on_status_change(ctx: Context, conn: AsyncConnection, before: Incident,
                           after: Incident, actor: Actor) -> None:
    if actor.via == "teams" and after.source == "pagerduty" and after.external_id:
        await _sync_pagerduty(ctx, conn, before, after)
    if after.status == "resolved" and after.parent_id is None:
        due = pm_rules.due_after(after.resolved_at or ctx.now(),
                                 ctx.policy.postmortem_due_business_days, ctx.catalog.timezone)
        await pm_store.set_fields(conn, after.id, due_at=due)
    if after.status == "closed":
        from handlers.reports import queue_close_summary  # reports build on follow-ups
        await queue_close_summary(ctx, conn, after)
        if ctx.mailer is not None:
            await outbox.enqueue(ctx.db, conn, "incident_email", now=ctx.now(),
                                 incident_id=after.id, payload={"event": "closed"},
                                 once_key=f"email:closed:{after.id}:{after.version}")


async def on_acknowledged(ctx: Context, conn: AsyncConnection, incident: Incident,
                          actor: Actor) -> None:
    if actor.via == "teams" and incident.source == "pagerduty" and incident.external_id:
        await _queue_pagerduty(ctx, conn, incident, "acknowledged")


async def _sync_pagerduty(ctx: Context, conn: AsyncConnection, before: Incident,
                          after: Incident) -> None:
    if after.status == "resolved":
        await _queue_pagerduty(ctx, conn, after, "resolved")


async def _queue_pagerduty(ctx: Context, conn: AsyncConnection, incident: Incident,
                           status: str) -> None:
    if ctx.pagerduty is None:
        return  # the card says changes are Firebell-only
    await outbox.enqueue(ctx.db, conn, "pagerduty_status", now=ctx.now(), incident_id=incident.id,
                         payload={"status": status},
                         once_key=f"pagerduty_status:{incident.id}:{status}:{incident.version}")
