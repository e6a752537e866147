"""Compiling the weekly digest and the monthly report: one period's figures for every team and
the company, with what each needs besides (overdue postmortems and action items, recurring and
costliest incidents, the six-month trend and its chart)."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cards.digest import TeamRow, WeeklyDigest, weekly_digest_card
from cards.report import MonthlyReport, MonthlyTeamRow, monthly_report_card
from charts.trend import TrendBar, trend_chart
from handlers.context import Context
from handlers.reports.figures import period_figures, read, revenue, save_rollups, trend_months
from handlers.reports.settings import MONTHLY, WEEKLY
from incidents import metrics as m
from incidents.metrics import Figures
from incidents.period_figures import ALL, NO_TEAM
from incidents.periods import MONTH, WEEK, Period, last_complete, local_date, shift
from incidents.updates import update_figures
from storage import reports as store
from storage import routing as routing_store
from storage import updates as updates_store

COMPANY = "company"


@dataclass
class Compiled:
    """One period's report for every scope (each team, and the company)."""
    kind: str
    period: Period
    company: Any
    teams: dict[str, Any]
    _charts: dict[str, bytes] = field(default_factory=dict)

    def view(self, scope: str):
        return self.company if scope == COMPANY else self.teams[scope]

    def card(self, scope: str, chart_url: str | None = None) -> dict[str, Any]:
        view = self.view(scope)
        if self.kind == WEEKLY:
            return weekly_digest_card(view)
        return monthly_report_card(view, chart_url=chart_url)

    def chart(self, scope: str) -> bytes | None:
        """The monthly trend chart of one scope (PNG), drawn once."""
        if self.kind != MONTHLY:
            return None
        if scope not in self._charts:
            view = self.view(scope)
            self._charts[scope] = trend_chart(
                [TrendBar(p.label, p.new,
                          p.mtta.median / 60 if p.mtta.median is not None else None,
                          p.mttr.median / 60 if p.mttr.median is not None else None)
                 for p in view.trend], title=f"{view.name}: incidents, MTTA and MTTR")
        return self._charts[scope]


async def compile_report(ctx: Context, kind: str, *, now: datetime,
                         period: Period | None = None) -> Compiled:
    tz = ctx.catalog.timezone
    period = period or last_complete(WEEK if kind == WEEKLY else MONTH, now, tz)
    if kind == WEEKLY:
        return await _weekly(ctx, period, now)
    return await _monthly(ctx, period, now)


async def _overdue(ctx: Context, now: datetime):
    days = ctx.policy.postmortem_due_business_days
    # A postmortem whose due date was never set is overdue once even the latest possible due
    # date (N business days plus the weekends in between) has passed.
    cutoff = now - timedelta(days=days + 2 * (days // 5 + 1))
    (pm_counts, pm_rows), (ai_counts, ai_rows) = await asyncio.gather(
        read(ctx, store.overdue_postmortems, now, cutoff),
        read(ctx, store.overdue_actions, local_date(now, ctx.catalog.timezone)))
    postmortems = [m.OverduePostmortem(r["id"], r["title"], r["team"], r["owner"], r["due_at"])
                   for r in pm_rows]
    actions = [m.OverdueAction(r["id"], r["incident_id"], r["title"], r["team"], r["owner"],
                               r["due_date"], r["jira_key"]) for r in ai_rows]
    return pm_counts, postmortems, ai_counts, actions


def _teams_in_scope(ctx: Context) -> list[str]:
    return list(ctx.catalog.teams)


async def _weekly(ctx: Context, period: Period, now: datetime) -> Compiled:
    tz = ctx.catalog.timezone
    before = shift(period, -4, tz)
    as_of = min(now, period.end)
    # The week, and (bucket -1) MTTA / MTTR of the four weeks before it, pooled.
    (both, overdue, recurring_rows, costly, (updated, posted), private,
     recorded) = await asyncio.gather(
        period_figures(ctx, [period.start, period.end], as_of, by_service=True,
                       earlier=before.start),
        _overdue(ctx, now),
        read(ctx, store.recurring, period.start, period.end),
        read(ctx, store.costliest, period.start, period.end, as_of, revenue(ctx)),
        read(ctx, updates_store.of_period, period.start, period.end,
             sorted(ctx.catalog.levels.update_every)),
        read(ctx, store.private_counts, period.start, period.end),
        read(ctx, routing_store.recorded_only, period.start, period.end))
    stakeholder_updates = update_figures(updated, posted)
    week, earlier = both.get(0, {}), both.get(-1, {})
    pm_counts, postmortems, ai_counts, actions = overdue
    recurring = [m.Recurring(r["fingerprint"], r["n"], r["title"], r["service"], r["team"],
                             r["latest_id"]) for r in recurring_rows]
    people = ctx.catalog.names_by_email()

    def digest(scope: str, key: str | None) -> WeeklyDigest:
        mine = (lambda team: True) if key is None else (lambda team: team == key)
        rows = []
        if key is None:
            keys = [*_teams_in_scope(ctx), *([NO_TEAM] if NO_TEAM in week else [])]
            rows = [TeamRow(k, ctx.catalog.team_name(None if k == NO_TEAM else k),
                            week.get(k, Figures()), earlier.get(k, Figures())) for k in keys]
            rows.sort(key=lambda r: (-r.figures.new, r.name))
        fig_key = ALL if key is None else key
        return WeeklyDigest(
            scope=scope, name="All teams" if key is None else ctx.catalog.team_name(key),
            period=period, figures=week.get(fig_key, Figures()),
            before=earlier.get(fig_key, Figures()), teams=rows,
            overdue_postmortems=[p for p in postmortems if mine(p.team)],
            overdue_postmortems_total=sum(n for t, n in pm_counts.items() if mine(t)),
            overdue_actions=[a for a in actions if mine(a.team)],
            overdue_actions_total=sum(n for t, n in ai_counts.items() if mine(t)),
            recurring=[r for r in recurring if mine(r.team)][:5],
            costliest=[m.Costly(c["id"], c["title"], c["service"], c["team"], c["minutes"],
                                c["usd"]) for c in costly
                       if (c["overall_rank"] <= 3 if key is None else c["team"] == key
                           and c["team_rank"] <= 3)],
            people=people, updates=[u for u in stakeholder_updates if mine(u.team)],
            so_far=period.end >= now,
            private=sum(n for t, n in private.items() if mine(t)),
            recorded=[(r["id"], r["level"], r["service"], r["title"]) for r in recorded
                      if mine(r["team"])])

    return Compiled(WEEKLY, period, digest(COMPANY, None),
                    {k: digest(k, k) for k in _teams_in_scope(ctx)})


async def _monthly(ctx: Context, period: Period, now: datetime) -> Compiled:
    tz = ctx.catalog.timezone
    months = [shift(period, -k, tz) for k in range(5, -1, -1)]
    current, completion_rows, private = await asyncio.gather(
        # The monthly report shows no "closed" count.
        period_figures(ctx, [period.start, period.end], min(now, period.end), by_service=False,
                       closed=False),
        read(ctx, store.postmortem_completion, [period.start, period.end],
              ctx.catalog.levels.needs_postmortem),
        read(ctx, store.private_counts, period.start, period.end))
    figures = {len(months) - 1: current.get(0, {})}
    if period.end <= now:  # next month's report finds this month in the cache
        await save_rollups(ctx, [(period, current.get(0, {}))], now)
    for i, scopes in enumerate(await trend_months(ctx, months[:-1], now)):
        figures[i] = scopes
    completion: dict[str, tuple[int, int]] = {}
    for row in completion_rows:
        for scope in (row["team"] or NO_TEAM, ALL):
            done, needed = completion.get(scope, (0, 0))
            completion[scope] = (done + int(row["done"] or 0), needed + int(row["needed"]))
    last = len(months) - 1
    people = ctx.catalog.names_by_email()

    def trend(scope: str) -> list[m.TrendPoint]:
        out = []
        for i, p in enumerate(months):
            f = figures.get(i, {}).get(scope, Figures())
            out.append(m.TrendPoint(p.key, p.label[:3] + " " + p.key[2:4], f.new, f.mtta,
                                    f.mttr, f.impact_usd))
        return out

    def report(scope: str, key: str | None) -> MonthlyReport:
        fig_key = ALL if key is None else key
        done, needed = completion.get(fig_key, (0, 0))
        rows = []
        if key is None:
            for k in _teams_in_scope(ctx):
                d, n = completion.get(k, (0, 0))
                rows.append(MonthlyTeamRow(k, ctx.catalog.team_name(k),
                                           figures.get(last, {}).get(k, Figures()), d, n))
            rows.sort(key=lambda r: (-r.figures.new, r.name))
        name = "All teams" if key is None else ctx.catalog.team_name(key)
        return MonthlyReport(scope=scope, name=name, period=period,
                             figures=figures.get(last, {}).get(fig_key, Figures()),
                             trend=trend(fig_key), postmortems_done=done,
                             postmortems_needed=needed, teams=rows, people=people,
                             private=sum(n for t, n in private.items()
                                         if key is None or t == key))

    return Compiled(MONTHLY, period, report(COMPANY, None),
                    {k: report(k, k) for k in _teams_in_scope(ctx)})
