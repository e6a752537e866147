"""Load what a card shows from storage (rule 5: cards render from stored state)."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from cards.incident import Delivery, IncidentView, incident_card
from handlers.context import Context
from handlers.postmortems import impact_of, missing_for, page_url
from handlers.similar import similar_incidents
from incidents import postmortem as pm_rules
from incidents.model import Incident
from storage import incidents as store
from storage import outbox
from storage import postmortems as pm_store

# How each outbox job kind is named on the card; kinds not listed are not shown.
_SYSTEMS = {"post_card": "Teams", "pagerduty_status": "PagerDuty", "war_room": "War room",
            "war_room_join": "War room", "jira_postmortem": "JIRA", "jira_action_item": "JIRA",
            "incident_email": "E-mail"}


async def load_view(ctx: Context, conn: AsyncConnection, incident: Incident, *,
                    with_timeline: bool = False) -> IncidentView:
    catalog = ctx.catalog
    service = catalog.service(incident.service)
    team = catalog.team(incident.team)
    parent = await store.get(conn, incident.parent_id) if incident.parent_id else None
    children = await store.children(conn, incident.id)
    oncall = None
    if service and service.primary:
        oncall = (service.primary, catalog.display_name(service.primary) or service.primary)
    jobs = await outbox.jobs_of(conn, incident.id)
    postmortem = await pm_store.get(conn, incident.id)
    return IncidentView(
        incident=incident, levels=catalog.levels.levels,
        team_name=team.name if team else incident.team, runbook=service.runbook if service else None,
        oncall=oncall, parent=parent, children=children,
        impacted_services=_impacted(children),
        deliveries=_deliveries(jobs, incident),
        needs_postmortem=pm_rules.needed(incident, catalog.levels),
        postmortem_missing=await missing_for(ctx, conn, incident),
        postmortem_waiver=pm_rules.waiver_text(postmortem, catalog.display_name),
        links=await _links(ctx, conn, incident, postmortem),
        notices=_notices(ctx, incident),
        impact_usd=impact_of(ctx, incident, postmortem),
        commander_name=catalog.display_name(incident.commander) if incident.commander else None,
        similar=await similar_incidents(ctx, conn, incident),
        timeline=await store.timeline(conn, incident.id) if with_timeline else None)


async def render_card(ctx: Context, conn: AsyncConnection, incident: Incident) -> dict[str, Any]:
    return incident_card(await load_view(ctx, conn, incident))


async def _links(ctx: Context, conn: AsyncConnection, incident: Incident,
                 postmortem: dict[str, Any] | None) -> list[tuple[str, str]]:
    out = []
    room = await pm_store.war_room(conn, incident.parent_id or incident.id)
    if room and room["web_url"]:
        out.append(("War room", room["web_url"]))
    if postmortem:
        out.append(("Postmortem", page_url(ctx, postmortem)))
        if postmortem.get("jira_key") and ctx.jira is not None:
            out.append((postmortem["jira_key"], ctx.jira.browse_url(postmortem["jira_key"])))
    return out


def _notices(ctx: Context, incident: Incident) -> list[str]:
    """Steps Firebell skips because they are not configured: said, never silent."""
    levels, out = ctx.catalog.levels, []
    root = incident.parent_id is None
    if root and levels.needs_war_room(incident.level) and ctx.graph is None:
        out.append("War room: not opened — Microsoft Graph is not configured "
                   "(GRAPH_CLIENT_ID, GRAPH_CLIENT_SECRET, GRAPH_TENANT_ID).")
    if pm_rules.needed(incident, levels) and ctx.jira is None:
        out.append("JIRA: no postmortem task — JIRA is not configured "
                   "(JIRA_URL, JIRA_EMAIL, JIRA_API_TOKEN).")
    if incident.source == "pagerduty" and ctx.pagerduty is None:
        out.append("Acknowledge and Resolve here are Firebell-only: PagerDuty is not connected "
                   "(PAGERDUTY_API_TOKEN).")
    return out


def _impacted(children: list[Incident]) -> list[str]:
    return list(dict.fromkeys(c.service for c in children
                              if c.link_kind == "cascade" and c.service))


def _deliveries(jobs: list[dict[str, Any]], incident: Incident) -> list[Delivery]:
    """The latest job per system that is not simply done: what is pending or failing."""
    latest: dict[str, dict[str, Any]] = {}
    for job in jobs:
        system = _SYSTEMS.get(job["kind"])
        if system:
            latest[system] = job
    out = []
    for system, job in latest.items():
        state = _state(job, incident)
        if state:
            out.append(Delivery(system, state, problem=job["status"] == "failed"
                                or bool(job["last_error"])))
    return out


def _state(job: dict[str, Any], incident: Incident) -> str | None:
    if job["status"] == "failed":
        return f"failed ({_short(job['last_error'])}); /incident retry {incident.ref}"
    if job["status"] in ("pending", "running") and job["last_error"]:
        return f"failed ({_short(job['last_error'])}), retrying at {_hhmm(job['run_after'])} UTC"
    return None


def _short(error: str | None) -> str:
    return (error or "unknown error").splitlines()[0][:120]


def _hhmm(at: datetime) -> str:
    return at.strftime("%H:%M")
