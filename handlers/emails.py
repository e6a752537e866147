"""Incident e-mails: on trigger (levels configurable) to the owning team, the on-call and the
stakeholders; on close, the RCA summary. Rendered at send time from stored state (rule 5)."""
from __future__ import annotations

from typing import Any
from urllib.parse import quote

from sqlalchemy.ext.asyncio import AsyncConnection

from cards.email import IncidentMail, closed_mail, triggered_mail
from handlers.changes import note
from handlers.context import Context
from handlers.jobs import job
from handlers.postmortems import impact_of, page_url
from incidents import postmortem as pm_rules
from incidents.model import FIREBELL, Incident
from storage import conversations
from storage import incidents as store
from storage import postmortems as pm_store
from storage.outbox import Job


@job("incident_email")
async def send_incident_email(ctx: Context, job: Job) -> dict[str, Any]:
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
    from integrations.mailer import Email
    message_id = await ctx.mailer.send(Email(
        to=to, cc=cc, subject=subject, text=text, html=html,
        message_id=f"<firebell.{incident.ref}.{event}.{job.id}@firebell>"))
    async with ctx.db.write() as conn:
        await note(conn, incident.id, kind="email", actor=FIREBELL, at=ctx.now(),
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
    return IncidentMail(
        incident=incident, team_name=team.name if team else None,
        teams_link=await teams_link(conn, incident),
        page_link=page_url(ctx, postmortem),
        runbook=service.runbook if service else None,
        oncall=ctx.catalog.display_name(service.primary) if service and service.primary else None,
        impact_usd=impact_of(ctx, incident, postmortem), postmortem=postmortem or {},
        action_items=await pm_store.action_items(conn, incident.id),
        waiver=pm_rules.waiver_text(postmortem, ctx.catalog.display_name))


async def teams_link(conn: AsyncConnection, incident: Incident) -> str | None:
    """A deep link to the incident's card in its Teams channel, once it has been posted."""
    for msg in await conversations.card_messages_of(conn, incident.id):
        conv = await conversations.get(conn, msg["conversation_id"])
        if msg["activity_id"] and conv and conv["kind"] == "channel":
            channel = quote(msg["conversation_id"], safe="")
            return (f"https://teams.microsoft.com/l/message/{channel}/{msg['activity_id']}"
                    f"?parentMessageId={msg['activity_id']}")
    return None
