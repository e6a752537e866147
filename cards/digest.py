"""The weekly digest card: a week's incidents (the last complete week, or this week so far) for
one team or for everyone, rendered from figures the database aggregated (handlers/reports.py).
Names, titles and owners are user or catalog text: TextRuns via plain(), never Markdown."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from cards.common import LEVEL_ICON, block, card, facts, plain
from incidents.metrics import (Costly, Figures, OverdueAction, OverduePostmortem, Recurring,
                               duration, money, trend_word)
from incidents.model import ref
from incidents.periods import Period
from incidents.updates import UpdateFigures

MAX_TEAMS = 15
MAX_LIST = 8


@dataclass(frozen=True)
class TeamRow:
    key: str
    name: str
    figures: Figures
    before: Figures                      # MTTA / MTTR of the previous four weeks


@dataclass(frozen=True)
class WeeklyDigest:
    scope: str                           # a team key, or "company"
    name: str                            # "Checkout", "All teams"
    period: Period
    figures: Figures
    before: Figures
    teams: Sequence[TeamRow] = ()        # the company digest: one row per team
    overdue_postmortems: Sequence[OverduePostmortem] = ()
    overdue_postmortems_total: int = 0
    overdue_actions: Sequence[OverdueAction] = ()
    overdue_actions_total: int = 0
    recurring: Sequence[Recurring] = ()
    costliest: Sequence[Costly] = ()
    people: Mapping[str, str] = field(default_factory=dict)   # e-mail -> name
    # Per incident of the week that had stakeholder updates or a level with a cadence.
    updates: Sequence[UpdateFigures] = ()
    so_far: bool = False                 # the week is not over yet (`incident report weekly`)
    private: int = 0                     # private incidents counted above, never named
    # Kept off Teams by routing (recorded only): (incident id, level, service, title).
    recorded: Sequence[tuple[int, str, str | None, str]] = ()

    @property
    def quiet(self) -> bool:
        return self.figures.new == 0 and self.figures.linked == 0


def person(view: Any, email: str | None) -> str:
    if not email:
        return "no owner"
    return view.people.get(email.lower(), email)


def more(shown: int, total: int, what: str) -> dict | None:
    if total <= shown:
        return None
    return block(f"…and {total - shown} more {what}.", isSubtle=True, spacing="None")


def header(emoji_title: str, name: str, period_label: str) -> dict:
    return {"type": "Container", "style": "accent", "bleed": True, "items": [
        block(emoji_title, size="Medium", weight="Bolder"),
        plain(name, limit=100, weight="Bolder", size_="Large"),
        block(period_label, isSubtle=True, spacing="None")]}


def level_line(by_level: Mapping[str, int]) -> dict | None:
    if not by_level:
        return None
    parts = [f"{LEVEL_ICON.get(level, '⚪')} {level} {n}" for level, n in by_level.items()]
    return plain(" · ".join(parts), limit=400)


def private_line(n: int) -> list[dict]:
    """Private incidents are in the figures, anonymised: a count, never a name."""
    if not n:
        return []
    return [block(f"🔒 {n} private incident{'s' if n != 1 else ''} (counted above, not "
                  "named)", isSubtle=True, spacing="Small")]


def figure_facts(f: Figures, *, period_word: str) -> dict:
    linked = f" (+{f.linked} linked)" if f.linked else ""
    impact = money(f.impact_usd) if f.impact_usd else "$0"
    if f.impact_open:
        impact += f" (incl. {f.impact_open} still open)"
    return facts([("New", f"{f.new}{linked}"), ("Resolved", str(f.resolved)),
                  ("Closed", str(f.closed)), (f"Open at the end of the {period_word}",
                                              str(f.still_open)),
                  ("Estimated impact", f"≈ {impact}")])


def _cells(values: Sequence[tuple[str, bool]], *, bold: bool = False,
           first_plain: bool = True) -> dict:
    columns = []
    for n, (text, subtle) in enumerate(values):
        if n == 0 and first_plain:
            item = plain(text, limit=40, weight="Bolder" if bold else None)
        else:
            item = block(text, isSubtle=subtle, weight="Bolder" if bold else None)
        columns.append({"type": "Column", "width": 3 if n == 0 else 2, "items": [item]})
    return {"type": "ColumnSet", "spacing": "Small", "columns": columns}


def speed_table(rows: Sequence[tuple[str, Figures, Figures]], total: int) -> list[dict]:
    """MTTA / MTTR medians and p90 per row, each against the previous four weeks."""
    out = [block("**Time to acknowledge and to resolve** (median · p90; previous 4 weeks "
                 "below)", spacing="Medium"),
           _cells([("", False), ("MTTA", False), ("MTTR", False), ("Trend", False)], bold=True)]
    for name, now, before in rows:
        out.append(_cells([
            (name, False),
            (f"{duration(now.mtta.median)} · {duration(now.mtta.p90)}\n\n"
             f"{duration(before.mtta.median)} · {duration(before.mtta.p90)}", False),
            (f"{duration(now.mttr.median)} · {duration(now.mttr.p90)}\n\n"
             f"{duration(before.mttr.median)} · {duration(before.mttr.p90)}", False),
            (trend_word(now.mttr.median, before.mttr.median) or "—", True)]))
    extra = more(len(rows), total, "teams")
    return out + ([extra] if extra else [])


def weekly_digest_card(d: WeeklyDigest) -> dict[str, Any]:
    f = d.figures
    body: list[dict] = [header("📊 Weekly incident digest", d.name, d.period.label)]
    if d.quiet:
        # One line, not a table of dashes; what is overdue still needs doing.
        when_ = "this week so far" if d.so_far else "last week"
        body.append(block(f"No incidents {when_}. 🎉", weight="Bolder", color="Good"))
        return card(body + overdue_sections(d))
    body.append(figure_facts(f, period_word="week"))
    body += private_line(d.private)
    if (line := level_line(f.by_level)) is not None:
        body.append(line)
    if d.scope == "company":
        # Teams with no incident this week are left out (they would be rows of "— · —").
        active = [t for t in d.teams if t.figures.new or t.figures.linked]
        rows = [(t.name, t.figures, t.before) for t in active[:MAX_TEAMS]]
        rows.append(("All teams", f, d.before))
        body += speed_table(rows, len(active) + 1)
        if len(active) < len(d.teams):
            body.append(block(f"{len(d.teams) - len(active)} other team(s) had no incidents.",
                              isSubtle=True, spacing="Small"))
        busiest = [(t.name, t.figures.new) for t in d.teams if t.figures.new][:10]
        if busiest:
            body.append(block("**By team**", spacing="Medium"))
            body.append(plain(" · ".join(f"{name} {n}" for name, n in busiest), limit=600))
    else:
        body += speed_table([("This week", f, d.before)], 1)
    if f.by_service:
        top = list(f.by_service.items())[:10]
        body.append(block("**By service**", spacing="Medium"))
        body.append(plain(" · ".join(f"{s} {n}" for s, n in top)
                          + (f" · …{len(f.by_service) - len(top)} more"
                             if len(f.by_service) > len(top) else ""), limit=600))
    body += recurring_section(d.recurring)
    body += costliest_section(d.costliest)
    body += updates_section(d.updates)
    body += recorded_section(d.recorded)
    body += overdue_sections(d)
    return card(body)


def recorded_section(items: Sequence[tuple[int, str, str | None, str]]) -> list[dict]:
    """Incidents routing kept off Teams: listed here so none goes unseen."""
    lines = [f"{ref(i)} · {level} · {service or 'unknown service'} — {title}"
             for i, level, service, title in items[:MAX_LIST]]
    out = _section(f"Recorded only, no card ({len(items)})", lines)
    if out and (extra := more(len(lines), len(items), "incidents")):
        out.append(extra)
    return out


def updates_section(items: Sequence[UpdateFigures]) -> list[dict]:
    """How each incident kept its stakeholders informed: updates, and the median gap between
    them."""
    lines = [f"{ref(u.incident_id)} · {u.count} update{'s' if u.count != 1 else ''} · median "
             f"gap {duration(u.median_gap_seconds)} — {u.title}" for u in items[:MAX_LIST]]
    out = _section("Stakeholder updates", lines)
    if out and (extra := more(len(lines), len(items), "incidents")):
        out.append(extra)
    return out


def recurring_section(items: Sequence[Recurring]) -> list[dict]:
    return _section("Recurring", [
        f"{r.count}× {r.title} ({r.service or 'unknown service'}, latest {ref(r.latest_id)})"
        for r in items[:5]])


def costliest_section(items: Sequence[Costly]) -> list[dict]:
    return _section("Costliest", [
        f"{ref(c.incident_id)} · {c.service or '—'} · {duration(c.minutes * 60)} · "
        f"≈ {money(c.usd)} — {c.title}" for c in items[:3]])


def _section(title: str, lines: Sequence[str]) -> list[dict]:
    """A titled list of one-line facts; nothing at all when there is nothing to list."""
    if not lines:
        return []
    return [block(f"**{title}**", spacing="Medium"), *(plain(x, limit=200) for x in lines)]


def overdue_sections(d: Any) -> list[dict]:
    out: list[dict] = []
    if d.overdue_postmortems_total:
        out.append(block(f"**Postmortems overdue: {d.overdue_postmortems_total}**",
                         spacing="Medium", color="Attention"))
        for p in d.overdue_postmortems[:MAX_LIST]:
            out.append(plain(f"{ref(p.incident_id)} · {person(d, p.owner)} · due "
                             f"{p.due_at:%Y-%m-%d} — {p.title}", limit=200))
        if (extra := more(min(MAX_LIST, len(d.overdue_postmortems)),
                          d.overdue_postmortems_total, "postmortems")):
            out.append(extra)
    if d.overdue_actions_total:
        out.append(block(f"**Action items overdue: {d.overdue_actions_total}**",
                         spacing="Medium", color="Attention"))
        for a in d.overdue_actions[:MAX_LIST]:
            jira = f" · {a.jira_key}" if a.jira_key else ""
            out.append(plain(f"{ref(a.incident_id)} · {person(d, a.owner)} · due "
                             f"{a.due_date:%Y-%m-%d}{jira} — {a.title}", limit=200))
        if (extra := more(min(MAX_LIST, len(d.overdue_actions)), d.overdue_actions_total,
                          "action items")):
            out.append(extra)
    return out
