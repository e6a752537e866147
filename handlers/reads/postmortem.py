"""What a postmortem looks like from outside: what still stops the incident from closing, and
its summary card."""
from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from cards.rca import postmortem_card
from handlers.context import Context
from handlers.reads import links
from incidents import postmortem as rules
from incidents.model import Incident
from storage import postmortems as pm_store


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
    return postmortem_card(incident, postmortem, items, missing=rules.missing(postmortem, items),
                           page_url=links.postmortem_page(ctx, postmortem),
                           jira_url=links.jira_task(ctx, postmortem.get("jira_key")),
                           impact_usd=rules.impact_of(ctx.catalog, incident, postmortem,
                                                      ctx.now()))
