"""Load what a card shows from storage (rule 5: cards render from stored state)."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from cards.incident import Delivery, IncidentView, incident_card
from handlers.context import Context
from incidents.model import Incident
from storage import incidents as store
from storage import outbox

# How each outbox job kind is named on the card; kinds not listed are not shown.
_SYSTEMS = {"post_card": "Teams", "pagerduty_sync": "PagerDuty", "war_room": "War room",
            "jira_postmortem": "JIRA", "jira_action_item": "JIRA", "email": "E-mail"}


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
    return IncidentView(
        incident=incident, levels=catalog.levels.levels,
        team_name=team.name if team else incident.team, runbook=service.runbook if service else None,
        oncall=oncall, parent=parent, children=children,
        impacted_services=_impacted(children),
        deliveries=_deliveries(jobs, incident),
        needs_postmortem=catalog.levels.needs_postmortem_for(incident.level),
        timeline=await store.timeline(conn, incident.id) if with_timeline else None)


async def render_card(ctx: Context, conn: AsyncConnection, incident: Incident) -> dict[str, Any]:
    return incident_card(await load_view(ctx, conn, incident))


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
