"""JIRA: a task for each postmortem and each RCA action item, in the owning team's project,
labelled with the incident id (the label is how a retry finds the task it already made), and
statuses and due dates flowing back by a periodic sync."""
from __future__ import annotations

from typing import Any

from handlers.card_queue import refresh_cards
from handlers.changes import note
from handlers.context import Context
from handlers.jobs import job
from handlers.postmortems import page_url
from incidents.model import FIREBELL, Incident
from integrations.errors import PermanentFailure, TemporaryFailure
from storage import incidents as store
from storage import postmortems as pm_store
from storage.outbox import Job


def _project(ctx: Context, incident: Incident) -> str:
    team = ctx.catalog.team(incident.team)
    if team is None or not team.jira_project:
        raise PermanentFailure(f"{incident.ref} has no team with a jira_project in the catalog "
                               f"(team: {incident.team or 'none'})")
    return team.jira_project


@job("jira_postmortem")
async def file_postmortem_task(ctx: Context, job: Job) -> dict[str, Any]:
    async with ctx.db.read() as conn:
        incident = await store.get(conn, job.incident_id)
        postmortem = await pm_store.get(conn, job.incident_id)
    if incident is None or postmortem is None:
        return {"skipped": "no postmortem"}
    service = ctx.catalog.service(incident.service)
    task = await ctx.jira.ensure_task(
        _project(ctx, incident), f"Postmortem: {incident.ref} {incident.title}"[:250],
        f"Postmortem of {incident.ref} ({incident.service or 'unknown service'}, "
        f"{incident.level}).\nRCA: {page_url(ctx, postmortem)}",
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


@job("jira_action_item")
async def file_action_item_task(ctx: Context, job: Job) -> dict[str, Any]:
    async with ctx.db.read() as conn:
        incident = await store.get(conn, job.incident_id)
        item = await pm_store.action_item(conn, job.payload["item_id"])
        postmortem = await pm_store.get(conn, job.incident_id)
    if incident is None or item is None:
        return {"skipped": "action item removed"}
    if postmortem and not postmortem.get("jira_key"):
        raise TemporaryFailure("waiting for the postmortem's JIRA task to link to")
    task = await ctx.jira.ensure_task(
        _project(ctx, incident), item["title"][:250],
        f"Action item from the postmortem of {incident.ref}.\nRCA: {page_url(ctx, postmortem)}",
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


async def sync_statuses(ctx: Context) -> int:
    """Periodic: read the tasks' statuses and due dates back from JIRA. Returns items changed."""
    if ctx.jira is None:
        return 0
    async with ctx.db.read() as conn:
        items = await pm_store.open_action_items_with_jira(conn)
    if not items:
        return 0
    found = await ctx.jira.statuses([i["jira_key"] for i in items])
    changed = 0
    async with ctx.db.write() as conn:
        for item in items:
            status = found.get(item["jira_key"].upper())
            if status is None:
                continue
            values = {"jira_status": status.status_name, "jira_done": status.done}
            if status.due_date:
                values["due_date"] = status.due_date
            if any(item.get(k) != v for k, v in values.items()):
                await pm_store.update_action_item(conn, item["id"], updated_at=ctx.now(), **values)
                await refresh_cards(ctx, conn, item["incident_id"])
                changed += 1
    return changed
