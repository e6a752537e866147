"""The weekly digest and the monthly report as e-mails: HTML (every value escaped, inline
styles, tables for layout) and a plain-text twin. The monthly chart is an inline PNG
(`cid:` reference; the mailer attaches it)."""
from __future__ import annotations

from html import escape
from typing import Sequence

from cards.digest import WeeklyDigest, person
from cards.report import MonthlyReport, rate_text
from incidents.metrics import Figures, duration, money
from incidents.model import ref

_TD = 'style="padding:4px 10px;border-bottom:1px solid #e5e5e5;text-align:left"'
_TH = 'style="padding:4px 10px;border-bottom:2px solid #999;text-align:left"'


def _table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    out = ['<table cellspacing="0" style="border-collapse:collapse;font-size:14px">',
           "<tr>" + "".join(f"<th {_TH}>{escape(h)}</th>" for h in head) + "</tr>"]
    for row in rows:
        out.append("<tr>" + "".join(f"<td {_TD}>{escape(str(c))}</td>" for c in row) + "</tr>")
    out.append("</table>")
    return "\n".join(out)


def _text_table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    return "\n".join(" | ".join(str(c) for c in r) for r in [head, *rows])


def _page(title: str, subtitle: str, sections: list[tuple[str, str]]) -> str:
    parts = ['<div style="font-family:Segoe UI,Arial,sans-serif;color:#222;max-width:760px">',
             f'<h2 style="margin:0">{escape(title)}</h2>',
             f'<p style="color:#666;margin:4px 0 16px">{escape(subtitle)}</p>']
    for heading, html in sections:
        parts.append(f'<h3 style="margin:18px 0 6px">{escape(heading)}</h3>{html}')
    parts.append('<p style="color:#888;font-size:12px;margin-top:24px">Sent by Firebell. '
                 "Only root incidents count; duplicates and cascade children are folded into "
                 "their root.</p></div>")
    return "\n".join(parts)


def _summary_rows(f: Figures, period_word: str, *, closed: bool = True) -> list[tuple[str, str]]:
    linked = f" (+{f.linked} linked)" if f.linked else ""
    return [("New", f"{f.new}{linked}"), ("Resolved", str(f.resolved))] \
        + ([("Closed", str(f.closed))] if closed else []) \
        + [(f"Open at the end of the {period_word}", str(f.still_open)),
           ("Estimated impact", f"≈ {money(f.impact_usd)}")]


def _private_rows(n: int) -> list[tuple[str, str]]:
    """Private incidents are in the figures, anonymised: a count, never a name."""
    return [("Private incidents (counted above, not named)", str(n))] if n else []


def weekly_email(d: WeeklyDigest) -> tuple[str, str, str]:
    f = d.figures
    subject = f"[Firebell] Weekly incident digest — {d.name}, {d.period.label}"
    summary = _summary_rows(f, "week") + _private_rows(d.private)
    levels = [(lvl, str(n)) for lvl, n in f.by_level.items()]
    if d.scope == "company":
        speed_head = ["Team", "New", "MTTA median", "MTTA p90", "MTTR median", "MTTR p90",
                      "MTTR median, previous 4 weeks"]
        speed = [(t.name, t.figures.new, duration(t.figures.mtta.median),
                  duration(t.figures.mtta.p90), duration(t.figures.mttr.median),
                  duration(t.figures.mttr.p90), duration(t.before.mttr.median))
                 for t in d.teams if t.figures.new or t.figures.linked]  # quiet teams left out
        speed.append(("All teams", f.new, duration(f.mtta.median), duration(f.mtta.p90),
                      duration(f.mttr.median), duration(f.mttr.p90),
                      duration(d.before.mttr.median)))
    else:
        speed_head = ["", "MTTA median", "MTTA p90", "MTTR median", "MTTR p90"]
        speed = [("This week", duration(f.mtta.median), duration(f.mtta.p90),
                  duration(f.mttr.median), duration(f.mttr.p90)),
                 ("Previous 4 weeks", duration(d.before.mtta.median),
                  duration(d.before.mtta.p90), duration(d.before.mttr.median),
                  duration(d.before.mttr.p90))]
    services = list(f.by_service.items())[:15]
    recurring = [(r.count, r.title, r.service or "—", ref(r.latest_id)) for r in d.recurring]
    costly = [(ref(c.incident_id), c.service or "—", duration(c.minutes * 60), money(c.usd),
               c.title) for c in d.costliest]
    pms = [(ref(p.incident_id), person(d, p.owner), f"{p.due_at:%Y-%m-%d}", p.title)
           for p in d.overdue_postmortems]
    actions = [(ref(a.incident_id), person(d, a.owner), f"{a.due_date:%Y-%m-%d}",
                a.jira_key or "—", a.title) for a in d.overdue_actions]
    updates = [(ref(u.incident_id), u.count, duration(u.median_gap_seconds), u.title)
               for u in d.updates]
    recorded = [(ref(i), level, service or "—", title) for i, level, service, title in d.recorded]
    sections = [("Summary", ["", ""], summary), ("By level", ["Level", "Incidents"], levels),
                ("Time to acknowledge and resolve", speed_head, speed),
                ("By service", ["Service", "Incidents"], services),
                ("Recurring", ["Times", "Title", "Service", "Latest"], recurring),
                ("Costliest", ["Incident", "Service", "Duration", "Impact", "Title"], costly),
                ("Stakeholder updates", ["Incident", "Updates", "Median gap", "Title"], updates),
                ("Recorded only, no card", ["Incident", "Level", "Service", "Title"], recorded),
                (f"Postmortems overdue ({d.overdue_postmortems_total})",
                 ["Incident", "Owner", "Due", "Title"], pms),
                (f"Action items overdue ({d.overdue_actions_total})",
                 ["Incident", "Owner", "Due", "JIRA", "Title"], actions)]
    when = "this week so far" if d.so_far else "last week"
    if d.quiet:  # one line, not tables of dashes; what is overdue still needs doing
        return _render(subject, d.period.label, f"No incidents {when}.", sections[-2:])
    return _render(subject, d.period.label, f"{f.new} incident(s) {when}.", sections)


def monthly_email(r: MonthlyReport, *, chart_cid: str | None = None) -> tuple[str, str, str]:
    f = r.figures
    subject = f"[Firebell] Monthly incident report — {r.name}, {r.period.label}"
    summary = _summary_rows(f, "month", closed=False) + [
        ("MTTA median · p90", f"{duration(f.mtta.median)} · {duration(f.mtta.p90)}"),
        ("MTTR median · p90", f"{duration(f.mttr.median)} · {duration(f.mttr.p90)}"),
        ("Postmortems complete", rate_text(r.postmortems_done, r.postmortems_needed))] \
        + _private_rows(r.private)
    levels = [(lvl, str(n)) for lvl, n in f.by_level.items()]
    trend = [(p.label, p.new, duration(p.mtta.median), duration(p.mttr.median),
              duration(p.mttr.p90), money(p.impact_usd)) for p in r.trend]
    sections = [("Summary", ["", ""], summary), ("By level", ["Level", "Incidents"], levels),
                ("Last 6 months", ["Month", "Incidents", "MTTA median", "MTTR median",
                                   "MTTR p90", "Impact"], trend)]
    if r.scope == "company":
        sections.append(("By team", ["Team", "Incidents", "MTTA median", "MTTR median",
                                     "Impact", "Postmortems complete"],
                         [(t.name, t.figures.new, duration(t.figures.mtta.median),
                           duration(t.figures.mttr.median), money(t.figures.impact_usd),
                           rate_text(t.postmortems_done, t.postmortems_needed))
                          for t in r.teams
                          if t.figures.new or t.figures.linked or t.postmortems_needed]))
    if f.new == 0 and f.linked == 0 and not r.postmortems_needed:
        return _render(subject, r.period.label, f"No incidents in {r.period.label}.", [])
    intro = f"{f.new} incident(s) in {r.period.label}."
    chart = (f'<img src="cid:{escape(chart_cid)}" width="640" height="360" '
             f'alt="Incidents per month and MTTA / MTTR medians" style="display:block">'
             if chart_cid else "")
    return _render(subject, r.period.label, intro, sections, chart=chart)


def _render(subject: str, subtitle: str, intro: str,
            sections: list[tuple[str, list[str], list]], chart: str = "") -> tuple[str, str, str]:
    html_sections: list[tuple[str, str]] = [("", f"<p>{escape(intro)}</p>{chart}")]
    text = [subject, subtitle, "", intro]
    for heading, head, rows in sections:
        if not rows:
            continue
        html_sections.append((heading, _table(head, rows)))
        text += ["", heading, _text_table(head, rows)]
    html = _page(subject.replace("[Firebell] ", ""), subtitle, html_sections)
    return subject[:250], "\n".join(text), html
