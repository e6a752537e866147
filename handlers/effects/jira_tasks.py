"""JIRA: a task for each postmortem and each RCA action item, in the owning team's project,
labelled with the incident id (the label is how a retry finds the task it already made).
Statuses and due dates flow back by a periodic pull (handlers/effects/jira_status.py)."""
from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from handlers.context import Context
from handlers.effects.incident_cards import refresh_cards
from handlers.effects.registry import Clients, effect
from handlers.reads import links
from incidents.model import FIREBELL, Incident
from integrations.errors import PermanentFailure, TemporaryFailure
from storage import incidents as store
from storage import outbox
from storage import postmortems as pm_store
from storage.outbox import Job
from storage.timeline import note


async def queue_postmortem_task(ctx: Context, conn: AsyncConnection, incident: Incident) -> None:
    await _queue(ctx, conn, incident, "jira_postmortem", f"jira_postmortem:{incident.id}")


async def queue_action_item_task(ctx: Context, conn: AsyncConnection, incident: Incident,
                                 item_id: int) -> None:
    await _queue(ctx, conn, incident, "jira_action_item", f"jira_action_item:{item_id}",
                 {"item_id": item_id})


async def _queue(ctx: Context, conn: AsyncConnection, incident: Incident, kind: str,
                 once_key: str, payload: dict[str, Any] | None = None) -> None:
    if ctx.configured.jira:  # else the card says JIRA is not configured
        await outbox.enqueue(ctx.db, conn, kind, now=ctx.now(), incident_id=incident.id,
                             once_key=once_key, payload=payload or {})


def _project(ctx: Context, incident: Incident) -> str:
    team = ctx.catalog.team(incident.team)
    if team is None or not team.jira_project:
        raise PermanentFailure(f"{incident.ref} has no team with a jira_project in the catalog "
                               f"(team: {incident.team or 'none'})")
    return team.jira_project


@effect("jira_postmortem", system="jira", shown_as="JIRA")
async def file_postmortem_task(ctx: Context, clients: Clients, job: Job) -> dict[str, Any]:
    async with ctx.db.read() as conn:
        incident = await store.get(conn, job.incident_id)
        postmortem = await pm_store.get(conn, job.incident_id)
    if incident is None or postmortem is None:
        return {"skipped": "no postmortem"}
    service = ctx.catalog.service(incident.service)
    task = await clients.jira.ensure_task(
        _project(ctx, incident), f"Postmortem: {incident.ref} {incident.title}"[:250],
        f"Postmortem of {incident.ref} ({incident.service or 'unknown service'}, "
        f"{incident.level}).\nRCA: {links.postmortem_page(ctx, postmortem)}",
        [f"firebell-{incident.ref}-postmortem", f"firebell-{incident.ref}", "firebell"],
        assignee_email=postmortem.get("owner") or (service.primary if service else None),
        due_date=postmortem["due_at"].date() if postmortem.get("due_at") else None)
    async with ctx.db.write() as conn:
        await pm_store.set_fields(conn, incident.id, jira_key=task.key)
        if task.created:
            await note(conn, incident.id, kind="jira", actor=FIREBELL, at=ctx.now(),
                       text=f"JIRA task {task.key} filed for the postmortem")
        await refresh_cards(ctx, conn, incident.id)
    return {"key": task.key, "created": task.created}


@effect("jira_action_item", system="jira", shown_as="JIRA")
async def file_action_item_task(ctx: Context, clients: Clients, job: Job) -> dict[str, Any]:
    async with ctx.db.read() as conn:
        incident = await store.get(conn, job.incident_id)
        item = await pm_store.action_item(conn, job.payload["item_id"])
        postmortem = await pm_store.get(conn, job.incident_id)
    if incident is None or item is None:
        return {"skipped": "action item removed"}
    if postmortem and not postmortem.get("jira_key"):
        raise TemporaryFailure("waiting for the postmortem's JIRA task to link to")
    task = await clients.jira.ensure_task(
        _project(ctx, incident), item["title"][:250],
        f"Action item from the postmortem of {incident.ref}.\n"
        f"RCA: {links.postmortem_page(ctx, postmortem)}",
        [f"firebell-{incident.ref}-action-{item['id']}", f"firebell-{incident.ref}", "firebell"],
        assignee_email=item.get("owner"), due_date=item.get("due_date"),
        link_to=(postmortem or {}).get("jira_key"))
    async with ctx.db.write() as conn:
        await pm_store.update_action_item(conn, item["id"], jira_key=task.key)
        if task.created:
            await note(conn, incident.id, kind="jira", actor=FIREBELL, at=ctx.now(),
                       text=f"JIRA task {task.key} filed for action item “{item['title'][:80]}”")
        await refresh_cards(ctx, conn, incident.id)
    return {"key": task.key, "created": task.created}
