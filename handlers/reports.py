"""Digests and reports: the weekly digest and the monthly report, compiled for every team and
the company, delivered on schedule (exactly once per period and target, caught up after
downtime), plus the summary card posted when an incident closes. The chat commands that show
them on demand are in handlers/report_commands.py.

The figures come from storage/reports.py (aggregated in SQL); the rules from incidents/metrics.py;
cards and e-mails from cards/. Deliveries are outbox jobs (queue_card_message / queue_email)
written in the same transaction as the report_deliveries row that makes them unique.
"""
from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from hashlib import sha256
from typing import Any, Iterable, Sequence

from sqlalchemy.ext.asyncio import AsyncConnection

from cards.charts import TrendBar, trend_chart
from cards.digest import TeamRow, WeeklyDigest, weekly_digest_card
from cards.report import MonthlyReport, MonthlyTeamRow, monthly_report_card
from cards.report_email import monthly_email, weekly_email
from cards.summary import CloseSummary, close_summary_card
from handlers.context import Context
from handlers.messages import queue_card_message, queue_email
from incidents import metrics as m
from incidents import postmortem as pm_rules
from incidents.metrics import Figures, Percentiles
from incidents.model import Incident
from incidents.periods import MONTH, WEEK, Period, Schedule, last_complete, local_date, shift
from storage import conversations
from storage import incidents as incidents_store
from storage import postmortems as pm_store
from storage import reports as store

log = logging.getLogger("firebell.reports")
WEEKLY, MONTHLY = "weekly", "monthly"
COMPANY = "company"
CHART_RETENTION = timedelta(days=400)
ALL = "*"                 # the company-wide scope in query results
NO_TEAM = "—"


@dataclass(frozen=True)
class ReportSettings:
    """Schedules and recipients (FIREBELL_* settings, read in app.py)."""
    weekly: Schedule | None = Schedule(WEEK, time(9, 0), weekday=0)
    monthly: Schedule | None = Schedule(MONTH, time(9, 0), day=1)
    digest_emails: tuple[str, ...] = ()
    reminder_interval: timedelta = timedelta(hours=24)
    stale_after: timedelta = timedelta(hours=4)

    def schedule(self, kind: str) -> Schedule | None:
        return self.weekly if kind == WEEKLY else self.monthly


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
                [TrendBar(p.label.upper(), p.new,
                          p.mtta.median / 60 if p.mtta.median is not None else None,
                          p.mttr.median / 60 if p.mttr.median is not None else None)
                 for p in view.trend], title=f"{view.name}: incidents, MTTA and MTTR")
        return self._charts[scope]


# -- compiling ----------------------------------------------------------------------------------

async def compile_report(ctx: Context, kind: str, *, now: datetime,
                         period: Period | None = None) -> Compiled:
    tz = ctx.catalog.timezone
    period = period or last_complete(WEEK if kind == WEEKLY else MONTH, now, tz)
    if kind == WEEKLY:
        return await _weekly(ctx, period, now)
    return await _monthly(ctx, period, now)


def _revenue(ctx: Context) -> dict[str, float]:
    return {s.name: s.revenue_per_minute_usd for s in ctx.catalog.services.values()}


def _people(ctx: Context) -> dict[str, str]:
    return {p.email.lower(): p.name for p in ctx.catalog.people.values()}


def team_name(ctx: Context, key: str | None) -> str:
    team = ctx.catalog.team(key)
    return team.name if team else (key or "No team")


async def _read(ctx: Context, query, *args, **kwargs):
    """One query on its own connection, so a report's independent queries run side by side."""
    async with ctx.db.read() as conn:
        return await query(conn, *args, **kwargs)


async def period_figures(ctx: Context, edges: Sequence[datetime], as_of: datetime, *,
                   by_service: bool, earlier: datetime | None = None,
                   details: bool = True, closed: bool = True) -> dict[int, dict[str, Figures]]:
    """Figures per bucket per scope (team key, NO_TEAM, ALL) over consecutive buckets.
    With `earlier`, bucket -1 holds the MTTA / MTTR of [earlier, edges[0]). Without
    `details`, only what a trend needs (new, linked, MTTA, MTTR, impact)."""
    out: dict[int, dict[str, Figures]] = {}

    def fig(bucket: int, scope: str) -> Figures:
        return out.setdefault(bucket, {}).setdefault(scope, Figures())

    rank_edges = [earlier, *edges] if earlier else list(edges)
    offset = 1 if earlier else 0
    # Company-wide percentiles for the buckets themselves only: the earlier stretch is
    # compared per team (a second pooled sort of every incident would double the cost).
    queries = [_read(ctx, store.new_counts, edges, by_service=by_service),
               _read(ctx, store.duration_percentiles, rank_edges, company=False),
               _read(ctx, store.duration_percentiles, edges, company=True),
               _read(ctx, store.impact_minutes, edges, as_of)]
    if details:
        queries += [_read(ctx, store.ended_counts, "resolved_at", edges),
                    _read(ctx, store.open_at, edges[-1])]
        if closed:
            queries.append(_read(ctx, store.ended_counts, "closed_at", edges))
    results = await asyncio.gather(*queries)
    counts, team_ranks, company_ranks, impact = results[:4]
    for row in counts:
        for scope in (row["team"] or NO_TEAM, ALL):
            f = fig(row["bucket"], scope)
            if not row["root"]:
                f.linked += row["n"]
                continue
            f.new += row["n"]
            f.by_level[row["level"]] = f.by_level.get(row["level"], 0) + row["n"]
            if by_service:
                svc = row["service"] or "unknown"
                f.by_service[svc] = f.by_service.get(svc, 0) + row["n"]
            if scope == ALL:
                team = team_name(ctx, row["team"])
                f.by_team[team] = f.by_team.get(team, 0) + row["n"]
    if details:
        resolved, still_open = results[4:6]
        ended = [(resolved, "resolved")] + ([(results[6], "closed")] if closed else [])
        for rows, attr in ended:
            for row in rows:
                for scope in (row["team"] or NO_TEAM, ALL):
                    f = fig(row["bucket"], scope)
                    setattr(f, attr, getattr(f, attr) + row["n"])
        for row in still_open:
            for scope in (row["team"] or NO_TEAM, ALL):
                fig(len(edges) - 2, scope).still_open += row["n"]
    ranked = [(row, row["bucket"] - offset) for row in team_ranks]
    ranked += [(row, row["bucket"]) for row in company_ranks]
    for row, bucket in ranked:
        f = fig(bucket, row["scope"] or NO_TEAM)
        f.mtta = Percentiles(row["na"], row["a_median"], row["a_p90"]) if row["na"] \
            else Percentiles()
        f.mttr = Percentiles(row["nr"], row["r_median"], row["r_p90"]) if row["nr"] \
            else Percentiles()
    revenue = _revenue(ctx)
    for row in impact:
        minutes = float(row["minutes"] or 0)
        usd = m.impact_usd({row["service"]: minutes}, revenue)
        for scope in (row["team"] or NO_TEAM, ALL):
            f = fig(row["bucket"], scope)
            f.impact_minutes += minutes
            f.impact_usd = round(f.impact_usd + usd, 2)
            f.impact_open += int(row["open"] or 0)
    for buckets in out.values():
        for f in buckets.values():
            f.by_level = dict(sorted(f.by_level.items(), key=lambda kv: (-kv[1], kv[0])))
            f.by_service = dict(sorted(f.by_service.items(), key=lambda kv: (-kv[1], kv[0])))
            f.by_team = dict(sorted(f.by_team.items(), key=lambda kv: (-kv[1], kv[0])))
    return out


async def _overdue(ctx: Context, now: datetime):
    days = ctx.policy.postmortem_due_business_days
    # A postmortem whose due date was never set is overdue once even the latest possible due
    # date (N business days plus the weekends in between) has passed.
    cutoff = now - timedelta(days=days + 2 * (days // 5 + 1))
    (pm_counts, pm_rows), (ai_counts, ai_rows) = await asyncio.gather(
        _read(ctx, store.overdue_postmortems, now, cutoff),
        _read(ctx, store.overdue_actions, local_date(now, ctx.catalog.timezone)))
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
    both, overdue, recurring_rows, costly = await asyncio.gather(
        period_figures(ctx, [period.start, period.end], as_of, by_service=True,
                       earlier=before.start),
        _overdue(ctx, now),
        _read(ctx, store.recurring, period.start, period.end),
        _read(ctx, store.costliest, period.start, period.end, as_of, _revenue(ctx)))
    week, earlier = both.get(0, {}), both.get(-1, {})
    pm_counts, postmortems, ai_counts, actions = overdue
    recurring = [m.Recurring(r["fingerprint"], r["n"], r["title"], r["service"], r["team"],
                             r["latest_id"]) for r in recurring_rows]
    people = _people(ctx)

    def digest(scope: str, key: str | None) -> WeeklyDigest:
        mine = (lambda team: True) if key is None else (lambda team: team == key)
        rows = []
        if key is None:
            keys = [*_teams_in_scope(ctx), *([NO_TEAM] if NO_TEAM in week else [])]
            rows = [TeamRow(k, team_name(ctx, None if k == NO_TEAM else k),
                            week.get(k, Figures()), earlier.get(k, Figures())) for k in keys]
            rows.sort(key=lambda r: (-r.figures.new, r.name))
        fig_key = ALL if key is None else key
        return WeeklyDigest(
            scope=scope, name="All teams" if key is None else team_name(ctx, key),
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
            people=people)

    return Compiled(WEEKLY, period, digest(COMPANY, None),
                    {k: digest(k, k) for k in _teams_in_scope(ctx)})


async def _monthly(ctx: Context, period: Period, now: datetime) -> Compiled:
    tz = ctx.catalog.timezone
    months = [shift(period, -k, tz) for k in range(5, -1, -1)]
    current, completion_rows = await asyncio.gather(
        # The monthly report shows no "closed" count.
        period_figures(ctx, [period.start, period.end], min(now, period.end), by_service=False,
                       closed=False),
        _read(ctx, store.postmortem_completion, [period.start, period.end],
              ctx.catalog.levels.needs_postmortem),
        )
    figures = {len(months) - 1: current.get(0, {})}
    if period.end <= now:  # next month's report finds this month in the cache
        await _save_rollups(ctx, [(period, current.get(0, {}))], now)
    for i, scopes in enumerate(await _trend_months(ctx, months[:-1], now)):
        figures[i] = scopes
    completion: dict[str, tuple[int, int]] = {}
    for row in completion_rows:
        for scope in (row["team"] or NO_TEAM, ALL):
            done, needed = completion.get(scope, (0, 0))
            completion[scope] = (done + int(row["done"] or 0), needed + int(row["needed"]))
    last = len(months) - 1
    people = _people(ctx)

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
                rows.append(MonthlyTeamRow(k, team_name(ctx, k),
                                           figures.get(last, {}).get(k, Figures()), d, n))
            rows.sort(key=lambda r: (-r.figures.new, r.name))
        return MonthlyReport(scope=scope, name="All teams" if key is None else team_name(ctx, key),
                             period=period, figures=figures.get(last, {}).get(fig_key, Figures()),
                             trend=trend(fig_key), postmortems_done=done,
                             postmortems_needed=needed, teams=rows, people=people)

    return Compiled(MONTHLY, period, report(COMPANY, None),
                    {k: report(k, k) for k in _teams_in_scope(ctx)})


def _revenue_hash(ctx: Context) -> str:
    return sha256(json.dumps(sorted(_revenue(ctx).items())).encode()).hexdigest()


async def _trend_months(ctx: Context, months: Sequence[Period],
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
        await _save_rollups(ctx, computed, now)
    return [fresh[p.key] for p in months]


async def _save_rollups(ctx: Context, computed: Sequence[tuple[Period, dict[str, Figures]]],
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


# -- scheduled delivery ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Target:
    key: str                # report_deliveries.target: channel:<team> | email:<team> | ...
    scope: str              # a team key or "company"
    conversation_id: str | None = None
    emails: tuple[str, ...] = ()


def targets(ctx: Context, subscriptions: dict[str, str],
            digest_emails: Iterable[str]) -> list[Target]:
    out = []
    for team, conversation_id in sorted(subscriptions.items()):
        if team == "default":
            out.append(Target(f"channel:{COMPANY}", COMPANY, conversation_id=conversation_id))
        elif team in ctx.catalog.teams:
            out.append(Target(f"channel:{team}", team, conversation_id=conversation_id))
    if ctx.mailer is None:
        return out  # no SMTP configured: channels only
    for key, team in ctx.catalog.teams.items():
        if team.email:
            out.append(Target(f"email:{key}", key, emails=(team.email,)))
    emails = tuple(dict.fromkeys(e.strip().lower() for e in digest_emails if e.strip()))
    if emails:
        out.append(Target(f"email:{COMPANY}", COMPANY, emails=emails))
    return out


async def deliver_due(ctx: Context, kind: str, settings: ReportSettings, *,
                      now: datetime | None = None) -> int:
    """Send the latest due digest/report to every target that has not had it. Safe to call
    any number of times, from any number of replicas: each (kind, period, target) goes once.
    A delivery missed while Firebell was down is the latest due one until the next one is due,
    so calling this at start-up catches up."""
    schedule = settings.schedule(kind)
    if schedule is None:
        return 0
    now = now or ctx.now()
    period = schedule.due_period(now, ctx.catalog.timezone)
    return await deliver(ctx, kind, period, settings, now=now)


async def deliver(ctx: Context, kind: str, period: Period, settings: ReportSettings, *,
                  now: datetime) -> int:
    async with ctx.db.read() as conn:
        subscriptions = await conversations.all_subscriptions(conn)
        done = await store.delivered_targets(conn, kind, period.key)
    missing = [t for t in targets(ctx, subscriptions, settings.digest_emails)
               if t.key not in done]
    if not missing:
        return 0
    compiled = await compile_report(ctx, kind, now=now, period=period)
    queued = 0
    async with ctx.db.write() as conn:
        if kind == MONTHLY:
            # Cards in Teams keep pointing at their chart: keep a good year and a bit of them.
            await store.forget_charts(conn, now - CHART_RETENTION)
        for target in missing:
            once_key = f"report:{kind}:{period.key}:{target.key}"
            claimed = await store.claim_delivery(
                ctx.db, conn, kind=kind, period=period.key, target=target.key, now=now,
                detail={"jobs": [once_key], "scope": target.scope,
                        "to": target.conversation_id or list(target.emails)})
            if not claimed:
                continue  # another replica got there first
            await _queue(ctx, conn, compiled, target, once_key, now)
            queued += 1
    if queued:
        log.info("%s %s queued for %d target(s)", kind, period.key, queued)
        ctx.wake_worker()
    return queued


async def _queue(ctx: Context, conn: AsyncConnection, compiled: Compiled, target: Target,
                 once_key: str, now: datetime) -> None:
    view = compiled.view(target.scope)
    what = "Weekly incident digest" if compiled.kind == WEEKLY else "Monthly incident report"
    if target.conversation_id:
        chart_url = await chart_link(ctx, conn, compiled, target.scope, now)
        await queue_card_message(ctx, conn, conversation_id=target.conversation_id,
                                 card=compiled.card(target.scope, chart_url),
                                 summary=f"{what}: {view.name}, {compiled.period.label}",
                                 once_key=once_key)
        return
    if compiled.kind == WEEKLY:
        subject, text, html = weekly_email(view)
        images: list[tuple[str, bytes]] = []
    else:
        cid = f"trend.{target.scope}.{compiled.period.key}@firebell"
        subject, text, html = monthly_email(view, chart_cid=cid)
        images = [(cid, compiled.chart(target.scope))]
    await queue_email(ctx, conn, to=list(target.emails), subject=subject, text=text, html=html,
                      once_key=once_key, images=images)


async def chart_link(ctx: Context, conn: AsyncConnection, compiled: Compiled, scope: str,
                     now: datetime) -> str | None:
    png = compiled.chart(scope)
    if png is None:
        return None
    key = await store.save_chart(ctx.db, conn, png, now)
    return f"{ctx.policy.public_base_url}/charts/{key}.png"


# -- the close summary (called by the resolve/close code) -----------------------------------------

async def queue_close_summary(ctx: Context, conn: AsyncConnection, incident: Incident) -> None:
    """When an incident closes, its RCA summary lands as a card in the team's channel (the RCA
    e-mail is sent by handlers/emails.py). Once per close: a reopened and closed-again
    incident gets a new summary."""
    channel = await conversations.channel_for(conn, incident.team)
    if channel is None or incident.parent_id is not None:
        return
    card = close_summary_card(await _close_summary(ctx, conn, incident))
    period = f"{incident.ref}:v{incident.version}"[:40]
    once_key = f"close_summary:{incident.id}:{incident.version}"
    target = f"channel:{incident.team or 'default'}"
    if await store.claim_delivery(ctx.db, conn, kind="close_summary", period=period,
                                  target=target, now=ctx.now(), detail={"jobs": [once_key]}):
        await queue_card_message(ctx, conn, conversation_id=channel, card=card,
                                 summary=f"{incident.ref} closed: {incident.title}",
                                 once_key=once_key, incident_id=incident.id)


async def _close_summary(ctx: Context, conn: AsyncConnection,
                         incident: Incident) -> CloseSummary:
    from handlers.emails import teams_link
    from handlers.postmortems import impact_of, page_url
    postmortem = await pm_store.get(conn, incident.id)
    return CloseSummary(
        incident=incident, team_name=team_name(ctx, incident.team) if incident.team else None,
        postmortem=postmortem or {}, action_items=await pm_store.action_items(conn, incident.id),
        impact_usd=impact_of(ctx, incident, postmortem),
        linked=len(await incidents_store.children(conn, incident.id)), people=_people(ctx),
        page_url=page_url(ctx, postmortem),
        teams_url=await teams_link(conn, incident),
        waiver=pm_rules.waiver_text(postmortem, ctx.catalog.display_name))
