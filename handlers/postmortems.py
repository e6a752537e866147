"""Postmortems: started when a postmortem-level root incident is announced (or its level rises),
filled from the RCA form card, complete when the required sections and an owned, dated action
item are there. Closing waits for it, even after the level was lowered, unless an incident
commander or admin waived it (`incident waive`)."""
from __future__ import annotations

from typing import Any, Mapping

from sqlalchemy.ext.asyncio import AsyncConnection

from cards.rca import postmortem_card
from handlers.changes import note
from handlers.context import Context
from incidents import postmortem as rules
from incidents.model import FIREBELL, Incident
from storage import incidents as store
from storage import outbox
from storage import postmortems as pm_store


def page_url(ctx: Context, postmortem: Mapping[str, Any] | None) -> str | None:
    """The postmortem page's address (append `.md` for Markdown): its secret link token, never
    the incident id. The one place that builds it; None without a postmortem."""
    token = (postmortem or {}).get("link_token")
    return f"{ctx.policy.public_base_url}/postmortems/{token}" if token else None


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
    entries = await store.timeline(conn, incident.id)
    if not await pm_store.create(ctx.db, conn, incident.id, owner=owner,
                                 timeline=rules.timeline_text(entries), now=ctx.now()):
        return False
    await note(conn, incident.id, kind="postmortem", actor=FIREBELL, at=ctx.now(),
               text=f"postmortem started (owner: {ctx.catalog.display_name(owner) or 'nobody yet'})"
                    f"; RCA form: `incident rca {incident.ref}`")
    await queue_jira_task(ctx, conn, incident, "jira_postmortem", f"jira_postmortem:{incident.id}")
    return True


async def queue_jira_task(ctx: Context, conn: AsyncConnection, incident: Incident, kind: str,
                          once_key: str, payload: dict[str, Any] | None = None) -> None:
    if ctx.jira is None:
        return  # the card says JIRA is not configured
    await outbox.enqueue(ctx.db, conn, kind, now=ctx.now(), incident_id=incident.id,
                         once_key=once_key, payload=payload or {})


async def missing_for(ctx: Context, conn: AsyncConnection, incident: Incident) -> list[str]:
    """Why the incident cannot be closed yet ([] when it can). The postmortem is needed while
    the incident is (or, as a root, ever was) at a postmortem level, unless it was waived."""
    if not rules.needed(incident, ctx.catalog.levels):
        return []
    postmortem = await pm_store.get(conn, incident.id)
    if rules.waived(postmortem):
        return []
    return rules.missing(postmortem, await pm_store.action_items(conn, incident.id))


async def summary_card(ctx: Context, conn: AsyncConnection, incident: Incident) -> dict[str, Any]:
    postmortem = await pm_store.get(conn, incident.id) or {}
    items = await pm_store.action_items(conn, incident.id)
    jira = ctx.jira.browse_url(postmortem["jira_key"]) if ctx.jira and postmortem.get("jira_key") \
        else None
    return postmortem_card(incident, postmortem, items, missing=rules.missing(postmortem, items),
                           page_url=page_url(ctx, postmortem), jira_url=jira,
                           impact_usd=impact_of(ctx, incident, postmortem))


def impact_of(ctx: Context, incident: Incident, postmortem: dict[str, Any] | None) -> float | None:
    service = ctx.catalog.service(incident.service)
    if not service or not service.revenue_per_minute_usd or incident.parent_id is not None:
        return None
    minutes = rules.impact_minutes(incident.triggered_at, incident.resolved_at, ctx.now(),
                                   (postmortem or {}).get("impact_minutes"))
    return rules.impact_usd(service.revenue_per_minute_usd, minutes)
