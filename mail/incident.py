"""Incident e-mails, rendered from stored state: HTML (escaped, inline styles only, tables for
layout, so common clients render it) and a plain-text twin."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timezone, tzinfo
from html import escape
from typing import Any, Mapping, Sequence

from incidents.clock import zoned
from incidents.model import Incident
from incidents.postmortem import RCA_SECTIONS


@dataclass(frozen=True)
class IncidentMail:
    incident: Incident
    team_name: str | None
    teams_link: str | None
    page_link: str | None
    runbook: str | None = None
    oncall: str | None = None
    impact_usd: float | None = None
    postmortem: Mapping[str, Any] = field(default_factory=dict)
    action_items: Sequence[Mapping[str, Any]] = ()
    waiver: str | None = None          # the postmortem was waived: "waived by … on …: why"
    bridge: str | None = None          # the incident's Teams meeting (Join bridge)
    timezone: tzinfo = timezone.utc    # the catalog's: times are shown with their zone named


def triggered_mail(m: IncidentMail) -> tuple[str, str, str]:
    i = m.incident
    subject = f"[Firebell] {i.ref} {i.level} on {i.service or 'unknown service'}: {i.title}"
    facts = _facts(m)
    links = [*_bridges(m), ("Open the card in Teams", m.teams_link), ("Runbook", m.runbook),
             ("PagerDuty", i.html_url)]
    return subject[:250], _text("A new incident needs attention.", facts, links), \
        _html("A new incident needs attention.", i.title, facts, links, [])


def closed_mail(m: IncidentMail) -> tuple[str, str, str]:
    i = m.incident
    subject = f"[Firebell] {i.ref} closed: {i.title}"
    facts = _facts(m)
    sections = [(label.split(" (")[0], m.postmortem.get(key))
                for key, label in RCA_SECTIONS
                if key in ("summary", "root_cause", "resolution") and m.postmortem.get(key)]
    if m.waiver:
        sections.insert(0, ("Postmortem", m.waiver))
    items = [f"{a['title']} — {a.get('owner') or 'no owner'}, due "
             f"{a['due_date'].isoformat() if a.get('due_date') else 'n/a'}"
             + (f" ({a['jira_key']})" if a.get("jira_key") else "") for a in m.action_items]
    if items:
        sections.append(("Action items", "\n".join(f"• {x}" for x in items)))
    links = [("Postmortem", m.page_link), ("Open the card in Teams", m.teams_link)]
    intro = "This incident is over. Here is what we learned."
    text = _text(intro, facts, links) + "\n\n" + "\n\n".join(f"{k}\n{v}" for k, v in sections)
    return subject[:250], text, _html(intro, i.title, facts, links, sections)


def _bridges(m: IncidentMail) -> list[tuple[str, str | None]]:
    """The Teams meeting, and PagerDuty's conference bridge when the alert brought one."""
    conference = m.incident.conference_url
    return [("Join bridge", m.bridge),
            ("Conference bridge" if m.bridge else "Join bridge",
             conference if conference and conference.startswith(("https://", "http://"))
             else None)]


def _facts(m: IncidentMail) -> list[tuple[str, str]]:
    i = m.incident
    out = [("Incident", i.ref), ("Status", i.status.capitalize()), ("Level", i.level),
           ("Service", i.service or "unknown"), ("Team", m.team_name or "—"),
           ("Triggered", zoned(i.triggered_at, m.timezone))]
    if i.resolved_at:
        out.append(("Resolved", zoned(i.resolved_at, m.timezone)))
    if i.priority:
        out.append(("Priority", i.priority))
    if m.oncall:
        out.append(("On call", m.oncall))
    if m.impact_usd:
        out.append(("Estimated impact", f"${m.impact_usd:,.0f}"))
    return out


def _text(intro: str, facts: list[tuple[str, str]],
          links: list[tuple[str, str | None]]) -> str:
    lines = [intro, ""] + [f"{k}: {v}" for k, v in facts] + [""]
    lines += [f"{k}: {url}" for k, url in links if url]
    return "\n".join(lines)


def _html(intro: str, title: str, facts: list[tuple[str, str]],
          links: list[tuple[str, str | None]], sections: list[tuple[str, str]]) -> str:
    rows = "".join(f'<tr><td style="padding:2px 12px 2px 0;color:#555">{escape(k)}</td>'
                   f"<td>{escape(v)}</td></tr>" for k, v in facts)
    buttons = " ".join(f'<a href="{escape(url, quote=True)}" style="display:inline-block;'
                       f'padding:6px 12px;background:#5b5fc7;color:#fff;text-decoration:none;'
                       f'border-radius:4px">{escape(k)}</a>' for k, url in links if url)
    body = "".join(f'<h3 style="margin:16px 0 4px">{escape(k)}</h3>'
                   f'<p style="white-space:pre-wrap;margin:0">{escape(v)}</p>' for k, v in sections)
    return ('<!doctype html><html><body style="font-family:Segoe UI,Arial,sans-serif;'
            'font-size:14px;color:#222">'
            f"<p>{escape(intro)}</p><h2 style=\"margin:0 0 8px\">{escape(title)}</h2>"
            f'<table style="border-collapse:collapse">{rows}</table>'
            f'<p style="margin-top:16px">{buttons}</p>{body}</body></html>')
