"""Load what an incident card shows from storage: cards render from stored state, never from
the event that triggered them (docs/ARCHITECTURE.md)."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from cards.incident import Delivery, IncidentView, Paged, incident_card
from handlers.context import Context
from handlers.effects.registry import shown_as
from handlers.reads import links
from handlers.reads.postmortem import missing_for
from handlers.reads.running import running_view
from handlers.reads.similar import similar_incidents
from incidents import paging
from incidents import postmortem as pm_rules
from incidents.maintenance import window_ref
from incidents.model import Incident
from storage import incidents as store
from storage import outbox
from storage import pages as pages_store
from storage import postmortems as pm_store
from storage import timeline


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
        team_name=team.name if team else incident.team,
        runbook=service.runbook if service else None,
        oncall=oncall, parent=parent, children=children,
        impacted_services=_impacted(children),
        deliveries=_deliveries(jobs, incident),
        needs_postmortem=pm_rules.needed(incident, catalog.levels),
        postmortem_missing=await missing_for(ctx, conn, incident),
        postmortem_waiver=pm_rules.waiver_text(postmortem, catalog.display_name),
        links=await _links(ctx, conn, incident, postmortem),
        notices=_notices(ctx, incident),
        impact_usd=pm_rules.impact_of(catalog, incident, postmortem, ctx.now()),
        commander_name=catalog.display_name(incident.commander) if incident.commander else None,
        similar=await similar_incidents(ctx, conn, incident),
        timeline=await timeline.entries(conn, incident.id) if with_timeline else None,
        running=await running_view(ctx, conn, incident),
        pages=await _pages(conn, incident))


async def render_card(ctx: Context, conn: AsyncConnection, incident: Incident) -> dict[str, Any]:
    return incident_card(await load_view(ctx, conn, incident))


async def _links(ctx: Context, conn: AsyncConnection, incident: Incident,
                 postmortem: dict[str, Any] | None) -> list[tuple[str, str]]:
    out = []
    room = await pm_store.war_room(conn, incident.parent_id or incident.id)
    if room and room["web_url"]:
        out.append(("War room", room["web_url"]))
    if postmortem:
        out.append(("Postmortem", links.postmortem_page(ctx, postmortem)))
        jira = links.jira_task(ctx, postmortem.get("jira_key"))
        if jira:
            out.append((postmortem["jira_key"], jira))
    return out


async def _pages(conn: AsyncConnection, incident: Incident) -> list[Paged]:
    return [Paged(p["target_label"], paging.page_state(p), p["status"] == paging.ACKNOWLEDGED)
            for p in await pages_store.of_incident(conn, incident.id)]


def _notices(ctx: Context, incident: Incident) -> list[str]:
    """Steps Firebell skips because they are not configured, or because the incident is in
    maintenance or only recorded: said, never silent."""
    levels, out = ctx.catalog.levels, []
    if not incident.correlated and incident.maintenance_id is not None:
        out.append(f"In maintenance ({window_ref(incident.maintenance_id)}): stored without a "
                   "card in the channel, war room, JIRA task, e-mail or reminder until the "
                   "window ends.")
    elif not incident.correlated and incident.routed:
        out.append("Recorded only (routing rules): no card in the channel, war room, JIRA "
                   "task, e-mail or reminder; listed in the weekly digest.")
    root = incident.parent_id is None
    if root and ctx.catalog.needs_war_room(incident.service, incident.team, incident.level) \
            and not ctx.configured.graph:
        out.append("War room: not opened — Microsoft Graph is not configured "
                   "(GRAPH_CLIENT_ID, GRAPH_CLIENT_SECRET, GRAPH_TENANT_ID).")
    if pm_rules.needed(incident, levels) and not ctx.configured.jira:
        out.append("JIRA: no postmortem task — JIRA is not configured "
                   "(JIRA_URL, JIRA_EMAIL, JIRA_API_TOKEN).")
    if incident.source == "pagerduty" and not ctx.configured.pagerduty:
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
        system = shown_as(job["kind"])
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
