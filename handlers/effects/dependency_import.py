"""PagerDuty's technical service dependencies, imported on a schedule by one replica when a
PagerDuty API token is configured, and stored by service name (the name incidents carry).
Every replica then rebuilds its graph from them (handlers/sync/dependencies.py)."""
from __future__ import annotations

import logging

from handlers.context import Context
from handlers.effects.registry import Clients
from storage import dependencies as store

log = logging.getLogger("firebell.dependencies")


async def import_from_pagerduty(ctx: Context, clients: Clients) -> int:
    """Fetch every PagerDuty service and its dependencies; returns how many edges PagerDuty
    knows."""
    if clients.pagerduty is None:
        return 0
    services = {s.id: s.name for s in await clients.pagerduty.services()}
    found = await clients.pagerduty.technical_service_dependencies(list(services))
    edges = [(services[d.dependent_service_id], services[d.supporting_service_id])
             for d in found
             if d.dependent_service_id in services and d.supporting_service_id in services]
    async with ctx.db.write() as conn:
        count = await store.replace_edges(conn, "pagerduty", edges, ctx.now())
    log.info("imported %d service dependencies from PagerDuty", count)
    return count
