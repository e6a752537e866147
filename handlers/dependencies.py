"""The dependency graph correlation uses: the catalog's `calls` edges, plus PagerDuty's technical
service dependencies when a PagerDuty API token is configured (imported on a schedule by one
replica, read back by every replica)."""
from __future__ import annotations

import logging
from dataclasses import replace

from handlers.context import Context
from incidents.dependencies import DependencyGraph
from storage import dependencies as store

log = logging.getLogger("firebell.dependencies")


async def import_from_pagerduty(ctx: Context) -> int:
    """Fetch every PagerDuty service and its dependencies; store the edges by service name
    (the name incidents carry). Returns how many edges PagerDuty knows."""
    if ctx.pagerduty is None:
        return 0
    services = {s.id: s.name for s in await ctx.pagerduty.services()}
    found = await ctx.pagerduty.technical_service_dependencies(list(services))
    edges = [(services[d.dependent_service_id], services[d.supporting_service_id])
             for d in found
             if d.dependent_service_id in services and d.supporting_service_id in services]
    async with ctx.db.write() as conn:
        count = await store.replace_edges(conn, "pagerduty", edges, ctx.now())
    await refresh_graph(ctx)
    log.info("imported %d service dependencies from PagerDuty", count)
    return count


async def refresh_graph(ctx: Context) -> DependencyGraph:
    """Rebuild the graph from the catalog and the stored edges (cheap; every replica, often)."""
    async with ctx.db.read() as conn:
        learned = await store.edges(conn)
    base = DependencyGraph({s.name: s.calls for s in ctx.catalog.services.values()})
    graph = base.merged(learned) if learned else base
    ctx.catalog = replace(ctx.catalog, graph=graph)
    return graph
