"""Starting a postmortem: when a root incident that needs one is announced (or its level rises),
or when a responder opens the RCA form. It starts as a draft with the incident's timeline,
owned by the commander (else the on-call), and files its JIRA task."""
from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from handlers.context import Context
from handlers.effects.jira_tasks import queue_postmortem_task
from incidents import postmortem as rules
from incidents.model import FIREBELL, Incident
from storage import postmortems as pm_store
from storage import timeline


async def ensure_postmortem(ctx: Context, conn: AsyncConnection, incident: Incident, *,
                            force: bool = False) -> bool:
    """Start the postmortem of a root incident that needs one (its level, or a postmortem level
    it had before: incidents.postmortem.needed); True if started now."""
    if incident.parent_id is not None:
        return False
    if not force and not rules.needed(incident, ctx.catalog.levels):
        return False
    service = ctx.catalog.service(incident.service)
    owner = incident.commander or (service.primary if service else None)
    entries = await timeline.entries_with_ids(conn, incident.id)
    if not await pm_store.create(ctx.db, conn, incident.id, owner=owner,
                                 timeline=rules.timeline_text(entries, ctx.catalog.timezone),
                                 now=ctx.now(),
                                 timeline_through=max((e["id"] for e in entries), default=None)):
        return False
    await timeline.note(conn, incident.id, kind="postmortem", actor=FIREBELL, at=ctx.now(),
                        text=f"postmortem started (owner: "
                             f"{ctx.catalog.display_name(owner) or 'nobody yet'}); RCA form: "
                             f"`incident rca {incident.ref}`")
    await queue_postmortem_task(ctx, conn, incident)
    return True
