"""A report's figures: the queries of storage/reports.py run side by side on their own
connections, folded into Figures per period bucket and scope (incidents/period_figures.py), and
the figures of complete months cached (report_rollups) for the six-month trend."""
from __future__ import annotations

import asyncio
import json
from datetime import datetime
from hashlib import sha256
from typing import Sequence

from handlers.context import Context
from incidents import metrics as m
from incidents.metrics import Figures
from incidents.period_figures import PeriodFigures
from incidents.periods import Period
from storage import reports as store


def revenue(ctx: Context) -> dict[str, float]:
    return {s.name: s.revenue_per_minute_usd for s in ctx.catalog.services.values()}


async def read(ctx: Context, query, *args, **kwargs):
    """One query on its own connection, so a report's independent queries run side by side."""
    async with ctx.db.read() as conn:
        return await query(conn, *args, **kwargs)


async def period_figures(ctx: Context, edges: Sequence[datetime], as_of: datetime, *,
                         by_service: bool, earlier: datetime | None = None,
                         details: bool = True, closed: bool = True
                         ) -> dict[int, dict[str, Figures]]:
    """Figures per bucket per scope (team key, NO_TEAM, ALL) over consecutive buckets.
    With `earlier`, bucket -1 holds the MTTA / MTTR of [earlier, edges[0]). Without
    `details`, only what a trend needs (new, linked, MTTA, MTTR, impact)."""
    rank_edges = [earlier, *edges] if earlier else list(edges)
    # Company-wide percentiles for the buckets themselves only: the earlier stretch is
    # compared per team (a second pooled sort of every incident would double the cost).
    queries = [read(ctx, store.new_counts, edges, by_service=by_service),
               read(ctx, store.duration_percentiles, rank_edges, company=False),
               read(ctx, store.duration_percentiles, edges, company=True),
               read(ctx, store.impact_minutes, edges, as_of)]
    if details:
        queries += [read(ctx, store.ended_counts, "resolved_at", edges),
                    read(ctx, store.open_at, edges[-1])]
        if closed:
            queries.append(read(ctx, store.ended_counts, "closed_at", edges))
    results = await asyncio.gather(*queries)
    folded = PeriodFigures(ctx.catalog.team_name)
    counts, team_ranks, company_ranks, impact = results[:4]
    folded.add_new(counts, by_service=by_service)
    if details:
        folded.add_ended(results[4], "resolved")
        folded.add_still_open(results[5], len(edges) - 2)
        if closed:
            folded.add_ended(results[6], "closed")
    folded.add_percentiles(team_ranks, offset=1 if earlier else 0)
    folded.add_percentiles(company_ranks)
    folded.add_impact(impact, revenue(ctx))
    return folded.result()


def _revenue_hash(ctx: Context) -> str:
    return sha256(json.dumps(sorted(revenue(ctx).items())).encode()).hexdigest()


async def trend_months(ctx: Context, months: Sequence[Period],
                        now: datetime) -> list[dict[str, Figures]]:
    """Figures of the earlier months of a trend: cached once a month is over (report_rollups),
    recomputed when anything they depend on changed since."""
    revenue_hash = _revenue_hash(ctx)
    async with ctx.db.read() as conn:
        cached = await store.rollups(conn, "month", [p.key for p in months])
        fresh = {}
        for p in months:
            row = cached.get(p.key)
            if row and await store.rollup_is_fresh(conn, row, start=p.start, end=p.end,
                                                   revenue_hash=revenue_hash):
                fresh[p.key] = {k: m.figures_from_json(v) for k, v in row["figures"].items()}
    stale = [p for p in months if p.key not in fresh]
    if stale:
        # One pass over the stale stretch, a bucket per month (cached or not, they are adjacent).
        first = months.index(stale[0])
        span = months[first:]
        buckets = await period_figures(ctx, [p.start for p in span] + [span[-1].end],
                                 min(now, span[-1].end), by_service=False, details=False)
        computed = [(p, buckets.get(i, {})) for i, p in enumerate(span) if p.key not in fresh]
        fresh.update({p.key: scopes for p, scopes in computed})
        await save_rollups(ctx, computed, now)
    return [fresh[p.key] for p in months]


async def save_rollups(ctx: Context, computed: Sequence[tuple[Period, dict[str, Figures]]],
                        now: datetime) -> None:
    revenue_hash = _revenue_hash(ctx)
    async with ctx.db.write() as conn:
        for p, scopes in computed:
            if p.end > now:
                continue  # not over yet: nothing to cache
            lo, hi = await store.id_range(conn, p.start, p.end)
            await store.save_rollup(ctx.db, conn, kind="month", period=p.key, start=p.start,
                                    end=p.end, first_id=lo, last_id=hi,
                                    revenue_hash=revenue_hash,
                                    figures={k: m.figures_to_json(f) for k, f in scopes.items()},
                                    computed_at=now)
