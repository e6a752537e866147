"""The dependency graph correlation uses: the catalog's `calls` edges, plus those imported from
PagerDuty (handlers/effects/dependency_import.py), rebuilt by every replica (cheap, often)."""
from __future__ import annotations

from dataclasses import replace

from handlers.context import Context
from incidents.dependencies import DependencyGraph
from storage import dependencies as store


async def refresh_graph(ctx: Context) -> DependencyGraph:
    async with ctx.db.read() as conn:
        learned = await store.edges(conn)
    base = DependencyGraph({s.name: s.calls for s in ctx.catalog.services.values()})
    graph = base.merged(learned) if learned else base
    ctx.catalog = replace(ctx.catalog, graph=graph)
    return graph
