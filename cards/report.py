"""The monthly report card (per team, or every team): counts by level, the six-month MTTA / MTTR
trend (a chart image served by Firebell, plus the figures as text), impact and postmortem
completion. Also the `report history` card."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Mapping, Sequence

from cards.common import block, card, facts, plain, when
from cards.digest import _cells, header, level_line, more, private_line
from incidents.metrics import Figures, TrendPoint, completion_rate, duration, money
from incidents.periods import Period

MAX_TEAMS = 20


@dataclass(frozen=True)
class MonthlyTeamRow:
    key: str
    name: str
    figures: Figures
    postmortems_done: int
    postmortems_needed: int


@dataclass(frozen=True)
class MonthlyReport:
    scope: str                                   # a team key, or "company"
    name: str
    period: Period
    figures: Figures
    trend: Sequence[TrendPoint]                  # oldest first, the report month last
    postmortems_done: int = 0
    postmortems_needed: int = 0
    teams: Sequence[MonthlyTeamRow] = ()
    people: Mapping[str, str] = field(default_factory=dict)
    private: int = 0                             # private incidents counted above, never named


def rate_text(done: int, needed: int) -> str:
    rate = completion_rate(done, needed)
    return "no postmortems were needed" if rate is None else f"{done}/{needed} ({rate:.0%})"


def monthly_report_card(r: MonthlyReport, *, chart_url: str | None = None) -> dict[str, Any]:
    f = r.figures
    body: list[dict] = [header("📈 Monthly incident report", r.name, r.period.label)]
    if f.new == 0 and f.linked == 0 and not r.postmortems_needed:
        # One line, not a table of dashes.
        body.append(block(f"No incidents in {r.period.label}. 🎉", weight="Bolder",
                          color="Good"))
        return card(body)
    linked = f" (+{f.linked} linked)" if f.linked else ""
    body.append(facts([
        ("Incidents", f"{f.new}{linked}"), ("Resolved", str(f.resolved)),
        ("Open at the end of the month", str(f.still_open)),
        ("MTTA (median · p90)", f"{duration(f.mtta.median)} · {duration(f.mtta.p90)}"),
        ("MTTR (median · p90)", f"{duration(f.mttr.median)} · {duration(f.mttr.p90)}"),
        ("Estimated impact", f"≈ {money(f.impact_usd)}"),
        ("Postmortems complete", rate_text(r.postmortems_done, r.postmortems_needed))]))
    body += private_line(r.private)
    if (line := level_line(f.by_level)) is not None:
        body.append(line)
    if chart_url:
        body.append({"type": "Image", "url": chart_url, "size": "Stretch", "spacing": "Medium",
                     "altText": "Incidents per month and MTTA / MTTR medians, last 6 months"})
    body.append(block("**Last 6 months**", spacing="Medium"))
    body.append(_cells([("Month", False), ("Incidents", False), ("MTTA", False),
                        ("MTTR", False), ("Impact", False)], bold=True, first_plain=False))
    for p in r.trend:
        body.append(_cells([(p.label, False), (str(p.new), False),
                            (duration(p.mtta.median), False), (duration(p.mttr.median), False),
                            (money(p.impact_usd), False)], first_plain=False))
    # Teams with nothing to report this month are left out of the table.
    teams = [t for t in r.teams if t.figures.new or t.figures.linked or t.postmortems_needed]
    if r.scope == "company" and teams:
        body.append(block("**By team this month** (MTTA · MTTR medians)", spacing="Medium"))
        body.append(_cells([("Team", False), ("Incidents", False), ("MTTA · MTTR", False),
                            ("Impact", False), ("RCAs done", False)], bold=True))
        for t in teams[:MAX_TEAMS]:
            tf = t.figures
            rate = completion_rate(t.postmortems_done, t.postmortems_needed)
            body.append(_cells([(t.name, False), (str(tf.new), False),
                                (f"{duration(tf.mtta.median)} · {duration(tf.mttr.median)}",
                                 False), (money(tf.impact_usd), False),
                                ("—" if rate is None else f"{rate:.0%}", False)]))
        if (extra := more(min(MAX_TEAMS, len(teams)), len(teams), "teams")):
            body.append(extra)
        if len(teams) < len(r.teams):
            body.append(block(f"{len(r.teams) - len(teams)} other team(s) had no incidents.",
                              isSubtle=True, spacing="Small"))
    return card(body)


@dataclass(frozen=True)
class HistoryRow:
    kind: str
    period: str
    target: str
    created_at: datetime
    state: str                     # sent | queued | failed (…)


def history_card(rows: Sequence[HistoryRow], *, heading: str, total: int) -> dict[str, Any]:
    body: list[dict] = [block(f"**{heading}**", size="Medium")]
    if not rows:
        body.append(block("Nothing delivered yet. Digests go out on schedule; "
                          "`incident report weekly` shows one now.", isSubtle=True))
    for r in rows[:30]:
        icon = {"sent": "✅", "queued": "⏳"}.get(r.state, "⚠️")
        body.append({"type": "Container", "separator": True, "items": [
            block(f"{icon} **{r.kind}** · {r.period} · {when(r.created_at)}"),
            plain(f"{r.target}: {r.state}", limit=300, subtle=True)]})
    if (extra := more(min(30, len(rows)), total, "deliveries")):
        body.append(extra)
    return card(body)
