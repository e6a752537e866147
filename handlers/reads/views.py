"""Load what an incident card shows from storage: cards render from stored state, never from
the event that triggered them (docs/ARCHITECTURE.md)."""
from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from cards.common import when
from cards.incident import Delivery, IncidentView, Paged, incident_card
from handlers.context import Context
from handlers.effects.registry import shown_as
from handlers.reads import links
from handlers.reads.cascade import compact_card, other_teams_root
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

# Who opened an incident that no person declared.
SOURCES = {"pagerduty": "PagerDuty", "alertmanager": "Alertmanager", "heartbeat": "Heartbeat"}


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
    owner = postmortem.get("owner") if postmortem else None
    opened_by, resolved_by = await timeline.opened_and_resolved_by(conn, incident.id)
    return IncidentView(
        incident=incident, levels=catalog.levels.levels,
        team_name=team.name if team else incident.team,
        runbook=service.runbook if service else None,
        oncall=oncall, parent=parent, children=children,
        impacted_services=_impacted(children),
        deliveries=_deliveries(jobs, incident),
        needs_postmortem=pm_rules.needed(incident, catalog.levels),
        postmortem_missing=await missing_for(ctx, conn, incident),
        postmortem_waiver=pm_rules.waiver_text(postmortem, catalog.display_name, stamp=when),
        links=await _links(ctx, conn, incident, postmortem),
        declared_by=_declared_by(incident, opened_by),
        resolved_by=resolved_by if incident.status != "open" else None,
        standby=(catalog.display_name(service.standby) or service.standby)
        if service and service.standby else None,
        postmortem_owner=(catalog.display_name(owner) or owner) if owner else None,
        postmortem_due=postmortem.get("due_at") if postmortem else None,
        impact_usd=pm_rules.impact_of(catalog, incident, postmortem, ctx.now()),
        commander_name=catalog.display_name(incident.commander) if incident.commander else None,
        similar=await similar_incidents(ctx, conn, incident),
        timeline=await timeline.entries(conn, incident.id) if with_timeline else None,
        running=await running_view(ctx, conn, incident),
        pages=await _pages(conn, incident), held_back=_held_back(incident))


async def render_card(ctx: Context, conn: AsyncConnection, incident: Incident) -> dict[str, Any]:
    """The live card: the compact one for a cascade child of another team's root (its team
    follows the root's card), else the full one. `incident show` always gives the full one."""
    root = await other_teams_root(conn, incident)
    if root is not None:
        return compact_card(ctx, incident, root)
    return incident_card(await load_view(ctx, conn, incident))


async def _links(ctx: Context, conn: AsyncConnection, incident: Incident,
                 postmortem: dict[str, Any] | None) -> list[tuple[str, str]]:
    out = []
    room = await pm_store.war_room(conn, incident.parent_id or incident.id)
    if room and room["web_url"]:
        out.append(("Private chat" if incident.private else "War room", room["web_url"]))
    # A private incident's postmortem opens with a member's own link only (the card says how).
    if postmortem and not incident.private:
        out.append(("Postmortem", links.postmortem_page(ctx, postmortem)))
        jira = links.jira_task(ctx, postmortem.get("jira_key"))
        if jira:
            out.append((postmortem["jira_key"], jira))
    return out


async def _pages(conn: AsyncConnection, incident: Incident) -> list[Paged]:
    return [Paged(p["target_label"], paging.page_state(p), p["status"] == paging.ACKNOWLEDGED)
            for p in await pages_store.of_incident(conn, incident.id)]


def _declared_by(incident: Incident, opened_by: str | None) -> str:
    """A person (declared in Teams, or opened by hand in PagerDuty) or the monitoring system."""
    if incident.declared_by:
        return incident.declared_by
    source = SOURCES.get(incident.source, incident.source)
    who = opened_by or source
    # PagerDuty names the person who opened an incident by hand (else it is "PagerDuty").
    return f"{who} (in PagerDuty)" if incident.source == "pagerduty" and who != source else who


def _held_back(incident: Incident) -> str | None:
    """Why an incident has no card in its channel: said on the card `incident show` gives."""
    if incident.correlated:
        return None
    if incident.maintenance_id is not None:
        return (f"In maintenance ({window_ref(incident.maintenance_id)}): stored without a card "
                "in the channel, war room, JIRA task, e-mail or reminder until the window ends.")
    if incident.routed:
        return ("Recorded only (routing rules): no card in the channel, war room, JIRA task, "
                "e-mail or reminder; listed in the weekly digest.")
    return None


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
            failed = job["status"] == "failed"
            out.append(Delivery(system, state, problem=failed or bool(job["last_error"]),
                                retry_at=None if failed else job["run_after"]))
    return out


def _state(job: dict[str, Any], incident: Incident) -> str | None:
    if job["status"] == "failed":
        return f"failed ({_short(job['last_error'])}); /incident retry {incident.ref}"
    if job["status"] in ("pending", "running") and job["last_error"]:
        return f"failed ({_short(job['last_error'])}), retrying"
    return None


def _short(error: str | None) -> str:
    return (error or "unknown error").splitlines()[0][:120]

