"""`incident report weekly|monthly|history [team] [period]` and `incident stats [team] [period]`:
the digests and figures of handlers/reports/, on demand, as the reply. Anyone may."""
from __future__ import annotations

from typing import Any

from cards.report import HistoryRow, history_card
from cards.stats import stats_card
from handlers.commands.parsing import optional_words, with_usage
from handlers.commands.registry import Where, command
from handlers.commands.reply import Reply
from handlers.context import Context
from handlers.reports.compile import COMPANY, compile_report
from handlers.reports.deliver import chart_link
from handlers.reports.figures import period_figures
from handlers.reports.settings import MONTHLY, WEEKLY
from incidents.metrics import Figures
from incidents.period_figures import ALL
from incidents.model import Actor
from incidents.periods import MONTH, WEEK, last_complete, parse_period
from storage import reports as store


def _team_from_words(ctx: Context, words: list[str]) -> tuple[str | None, list[str]]:
    """Find a team among the words (keys or display names, several words allowed)."""
    for size in range(len(words), 0, -1):
        for start in range(0, len(words) - size + 1):
            found = ctx.catalog.find_team(" ".join(words[start:start + size]))
            if found:
                return found.key, words[:start] + words[start + size:]
    return None, words


@command("report", usage="incident report weekly|monthly|history [last] [team] [period]",
         summary="Digests on demand: this week so far, or `last` week", section="Look",
         parse=optional_words)
async def report_command(ctx: Context, actor: Actor, args: dict[str, Any], where: Where) -> Reply:
    words = list(args.get("words") or [])
    kind = (words.pop(0).lower() if words else "weekly")
    kind = {"week": WEEKLY, "month": MONTHLY}.get(kind, kind)
    team, rest = _team_from_words(ctx, words)
    if kind == "history":
        return await _history(ctx, team)
    if kind not in (WEEKLY, MONTHLY):
        return Reply.refuse("Usage: `incident report weekly|monthly|history [last] [team] "
                            "[period]`, e.g. `incident report weekly last checkout`.")
    now = ctx.now()
    tz = ctx.catalog.timezone
    # On demand the weekly digest is this week so far; `last` is the last complete week (the
    # one the scheduled digest sends). A monthly report is of the last complete month.
    period = parse_period("week", now, tz) if kind == WEEKLY else None
    if rest and rest[0].lower() in ("last", "previous"):
        period, rest = last_complete(WEEK if kind == WEEKLY else MONTH, now, tz), rest[1:]
    if rest:
        period = parse_period(rest[0], now, tz)
        if period is None or period.kind not in (WEEK, MONTH):
            unknown = " ".join(rest)[:40]
            return Reply.refuse(with_usage(f"`{unknown}` is neither a team nor a week/month "
                                           "(e.g. 2025-W11, 2025-03, last-week). Teams: "
                                           + ", ".join(ctx.catalog.teams) + ".",
                                           "incident report weekly|monthly|history [last] "
                                           "[team] [period]"))
    compiled = await compile_report(ctx, kind, now=now, period=period)
    scope = team or COMPANY
    chart_url = None
    if kind == MONTHLY:
        async with ctx.db.write() as conn:
            chart_url = await chart_link(ctx, conn, compiled, scope, now)
    return Reply(card=compiled.card(scope, chart_url))


async def _history(ctx: Context, team: str | None) -> Reply:
    targets_of = [f"channel:{team}", f"email:{team}"] if team else None
    async with ctx.db.read() as conn:
        rows = await store.delivery_history(conn, targets=targets_of, limit=31)
    shown = [HistoryRow(r["kind"], r["period"], r["target"], r["created_at"], _state(r["jobs"]))
             for r in rows[:30]]
    heading = "Report history" + (f" for {ctx.catalog.team_name(team)}" if team else "")
    return Reply(card=history_card(shown, heading=heading, total=len(rows)))


def _state(jobs: list[dict[str, Any]]) -> str:
    states = {j["status"] for j in jobs}
    if not states or states <= {"done"}:
        return "sent" if states else "recorded"
    if states & {"failed", "cancelled"}:
        errors = "; ".join(j.get("last_error") or "" for j in jobs if j.get("last_error"))
        return "failed" + (f" ({errors[:150]})" if errors else "")
    return "queued"


@command("stats", usage="incident stats [team] [period]",
         summary="Counts, MTTA, MTTR, impact", section="Look", parse=optional_words)
async def stats_command(ctx: Context, actor: Actor, args: dict[str, Any], where: Where) -> Reply:
    words = list(args.get("words") or [])
    team, rest = _team_from_words(ctx, words)
    now = ctx.now()
    period = parse_period(rest[0] if rest else None, now, ctx.catalog.timezone)
    if period is None or len(rest) > 1:
        return Reply.refuse(f"`{' '.join(rest)[:40]}` is not a team or a period. Periods: "
                            "week, last-week, month, last-month, 7d, 30d, 90d, 2025-W11, "
                            "2025-03. Teams: " + ", ".join(ctx.catalog.teams) + ".")
    figures = (await period_figures(ctx, [period.start, period.end], min(now, period.end),
                              by_service=True)).get(0, {})
    scope = team or ALL
    name = ctx.catalog.team_name(team) if team else "All teams"
    return Reply(card=stats_card(name, period, figures.get(scope, Figures())))
