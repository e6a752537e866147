"""Incident e-mails: on trigger (levels configurable) to the owning team, the on-call and the
stakeholders; on close, the RCA summary. Rendered at send time from stored state."""
from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from handlers.context import Context
from handlers.effects.registry import Clients, effect
from handlers.reads import links
from incidents import postmortem as pm_rules
from incidents.clock import zoned
from incidents.model import FIREBELL, Incident
from integrations.mailer import Email
from mail.incident import IncidentMail, closed_mail, triggered_mail
from storage import bridges
from storage import incidents as store
from storage import outbox
from storage import postmortems as pm_store
from storage import timeline
from storage.outbox import Job


async def queue_triggered(ctx: Context, conn: AsyncConnection, incident: Incident, *,
                          wait: timedelta | None = None) -> None:
    """`wait`: the e-mail waits (at most that long) for something it shows that is being made,
    the meeting bridge; hurry_triggered sends it as soon as that is there. None for a private
    incident: its stakeholders are not among its members."""
    if incident.private:
        return
    if ctx.configured.email and incident.level in ctx.policy.trigger_email_levels:
        await outbox.enqueue(ctx.db, conn, "incident_email", now=ctx.now(),
                             incident_id=incident.id, payload={"event": "triggered"},
                             once_key=_triggered_key(incident.id),
                             run_after=ctx.now() + wait if wait else None)


async def hurry_triggered(ctx: Context, conn: AsyncConnection, incident_id: int) -> None:
    """What the trigger e-mail waited for is there: send it now."""
    await outbox.hurry(conn, _triggered_key(incident_id), ctx.now())


def _triggered_key(incident_id: int) -> str:
    return f"email:triggered:{incident_id}"


async def queue_closed(ctx: Context, conn: AsyncConnection, incident: Incident) -> None:
    """Once per close: a reopened and closed-again incident gets a new e-mail (none for a
    private incident: it would go to the service's stakeholders)."""
    if ctx.configured.email and not incident.private:
        await outbox.enqueue(ctx.db, conn, "incident_email", now=ctx.now(),
                             incident_id=incident.id, payload={"event": "closed"},
                             once_key=f"email:closed:{incident.id}:{incident.version}")


@effect("incident_email", system="smtp", shown_as="E-mail")
async def send_incident_email(ctx: Context, clients: Clients, job: Job) -> dict[str, Any]:
    event = job.payload["event"]
    async with ctx.db.read() as conn:
        incident = await store.get(conn, job.incident_id)
        if incident is None:
            return {"skipped": "incident gone"}
        mail = await _mail(ctx, conn, incident)
    subject, text, html = (triggered_mail if event == "triggered" else closed_mail)(mail)
    to, cc = recipients(ctx, incident, event)
    if not to:
        return {"skipped": "nobody to write to: the team has no e-mail in the catalog"}
    message_id = await clients.mailer.send(Email(
        to=to, cc=cc, subject=subject, text=text, html=html,
        message_id=f"<firebell.{incident.ref}.{event}.{job.id}@firebell>"))
    async with ctx.db.write() as conn:
        await timeline.note(conn, incident.id, kind="email", actor=FIREBELL, at=ctx.now(),
                            text=f"e-mail sent ({event}) to {', '.join(to + cc)}")
    return {"message_id": message_id, "to": to, "cc": cc}


def recipients(ctx: Context, incident: Incident, event: str) -> tuple[list[str], list[str]]:
    catalog = ctx.catalog
    team = catalog.team(incident.team)
    service = catalog.service(incident.service)
    to = [team.email] if team and team.email else []
    cc = []
    if service:
        if event == "triggered" and service.primary:
            to.append(service.primary)
        cc += list(service.stakeholders)
    if incident.commander and "@" in incident.commander:
        cc.append(incident.commander)
    to = list(dict.fromkeys(to))
    return to, [c for c in dict.fromkeys(cc) if c not in to]


async def _mail(ctx: Context, conn: AsyncConnection, incident: Incident) -> IncidentMail:
    service = ctx.catalog.service(incident.service)
    team = ctx.catalog.team(incident.team)
    postmortem = await pm_store.get(conn, incident.id)
    bridge = await bridges.get(conn, incident.parent_id or incident.id)
    return IncidentMail(
        incident=incident, team_name=team.name if team else None,
        teams_link=await links.card_in_channel(conn, incident),
        page_link=links.postmortem_page(ctx, postmortem),
        runbook=service.runbook if service else None,
        oncall=ctx.catalog.display_name(service.primary) if service and service.primary else None,
        impact_usd=pm_rules.impact_of(ctx.catalog, incident, postmortem, ctx.now()),
        postmortem=postmortem or {}, action_items=await pm_store.action_items(conn, incident.id),
        waiver=pm_rules.waiver_text(postmortem, ctx.catalog.display_name,
                                    stamp=lambda at: zoned(at, ctx.catalog.timezone)),
        bridge=bridge["join_url"] if bridge else None, timezone=ctx.catalog.timezone)
