"""The postmortem as a read-only HTML page and as Markdown, from stored state. Everything a
person typed is escaped: it shows as text, never as markup."""
from __future__ import annotations

import re
from datetime import timezone, tzinfo
from html import escape
from typing import Any, Callable, Mapping, Optional, Sequence

from incidents.clock import zoned
from incidents.model import Incident
from incidents.postmortem import RCA_SECTIONS

Namer = Callable[[Optional[str]], Optional[str]]


def _same(email: str | None) -> str | None:
    return email

_STYLE = ("body{font-family:Segoe UI,Arial,sans-serif;max-width:860px;margin:2em auto;"
          "padding:0 1em;color:#222}h1{font-size:1.5em}pre,p.t{white-space:pre-wrap}"
          "table{border-collapse:collapse}td,th{border-bottom:1px solid #ddd;padding:4px 10px;"
          "text-align:left}.s{color:#666}")


def postmortem_html(incident: Incident, postmortem: Mapping[str, Any] | None,
                    items: Sequence[Mapping[str, Any]], *, missing: Sequence[str],
                    impact_usd: float | None, service_name: str | None, team_name: str | None,
                    jira: Mapping[str, str], links: Sequence[tuple[str, str]] = (),
                    name: Namer = _same, zone: tzinfo = timezone.utc) -> str:
    """`links`: (label, address) back to the Teams card, PagerDuty, the runbook and JIRA.
    `name`: a person's name from their e-mail. The one timeline is the RCA's (refilled from
    the incident timeline by the caller). Times in `zone` (the catalog's), with the zone named."""
    pm = postmortem or {}
    facts = _facts(incident, pm, missing, impact_usd, service_name, team_name, name, zone)
    parts = [f"<!doctype html><html><head><meta charset=utf-8><title>{escape(incident.ref)} "
             f"postmortem</title><style>{_STYLE}</style></head><body>",
             f"<h1>{escape(incident.ref)}: {escape(incident.title)}</h1>"]
    if links:
        parts.append("<p>" + " · ".join(f'<a href="{escape(url, quote=True)}">{escape(label)}</a>'
                                        for label, url in links) + "</p>")
    parts.append("<table>" + "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>"
                                     for k, v in facts) + "</table>")
    for key, label in RCA_SECTIONS:
        text = pm.get(key) or ""
        parts.append(f"<h2>{escape(label)}</h2>" + (f'<p class="t">{escape(text)}</p>' if text
                                                     else '<p class="s">Not written yet.</p>'))
    parts.append("<h2>Action items</h2>" + _items_html(items, jira, name) + "</body></html>")
    return "".join(parts)


def postmortem_markdown(incident: Incident, postmortem: Mapping[str, Any] | None,
                        items: Sequence[Mapping[str, Any]], *, missing: Sequence[str],
                        impact_usd: float | None, service_name: str | None,
                        team_name: str | None, links: Sequence[tuple[str, str]] = (),
                        name: Namer = _same, zone: tzinfo = timezone.utc) -> str:
    pm = postmortem or {}
    lines = [f"# {incident.ref}: {_md(incident.title)}", ""]
    if links:
        lines += [" · ".join(f"[{_md(label)}](<{url}>)" for label, url in links), ""]
    lines += [f"- **{k}:** {_md(v)}" for k, v in _facts(incident, pm, missing, impact_usd,
                                                        service_name, team_name, name, zone)]
    for key, label in RCA_SECTIONS:
        text = pm.get(key)
        lines += ["", f"## {label}", "", _md_block(text) if text else "_Not written yet._"]
    lines += ["", "## Action items", ""]
    lines += [f"- [{'x' if i.get('jira_done') else ' '}] {_md(i['title'])} — "
              f"{_md(name(i.get('owner')) or 'no owner')}, due "
              f"{i['due_date'].isoformat() if i.get('due_date') else 'n/a'}"
              + (f" ({i['jira_key']})" if i.get("jira_key") else "") for i in items] or ["_None._"]
    return "\n".join(lines) + "\n"


def _facts(incident: Incident, pm: Mapping[str, Any], missing: Sequence[str],
           impact_usd: float | None, service_name: str | None,
           team_name: str | None, name: Namer, zone: tzinfo) -> list[tuple[str, str]]:
    status = "complete" if pm and not missing else "draft"
    out = [("Status", f"incident {incident.status}, postmortem {status}"),
           ("Service", service_name or "unknown"), ("Team", team_name or "—"),
           ("Level", incident.level),
           ("Triggered", zoned(incident.triggered_at, zone)),
           ("Resolved", zoned(incident.resolved_at, zone) if incident.resolved_at
            else "not yet")]
    if impact_usd:
        out.append(("Estimated business impact", f"${impact_usd:,.0f}"))
    if pm.get("owner"):
        out.append(("Owner", name(pm["owner"]) or pm["owner"]))
    if missing:
        out.append(("Still missing", "; ".join(missing)))
    return out


def _items_html(items: Sequence[Mapping[str, Any]], jira: Mapping[str, str], name: Namer) -> str:
    if not items:
        return '<p class="s">None yet.</p>'
    rows = []
    for i in items:
        key = i.get("jira_key")
        link = (f'<a href="{escape(jira[key], quote=True)}">{escape(key)}</a>'
                if key and key in jira else escape(key or ""))
        due = i["due_date"].isoformat() if i.get("due_date") else "—"
        state = i.get("jira_status") or ("done" if i.get("jira_done") else "open")
        rows.append(f"<tr><td>{escape(i['title'])}</td><td>{escape(name(i.get('owner')) or '—')}</td>"
                    f"<td>{due}</td><td>{link}</td><td>{escape(state)}</td></tr>")
    return ("<table><tr><th>What</th><th>Owner</th><th>Due</th><th>JIRA</th><th>State</th></tr>"
            + "".join(rows) + "</table>")


def _md(text: str) -> str:
    """Markdown-escape what people typed on one line, so the export shows it as text: only
    what would start markup is escaped (`checkout-api`, `db_primary`, `1.8.3` stay as they are)."""
    text = _INLINE.sub(r"\\\1", str(text).replace("\n", " "))
    text = _EDGE_UNDERSCORE.sub(r"\\_", text)
    text = _NUMBERED.sub(r"\1\\\2", text)
    return _LINE_START.sub(r"\1\\\2", text)


def _md_block(text: str) -> str:
    """A multi-line answer: each line escaped, line breaks kept (a trailing backslash)."""
    return "\\\n".join(_md(line) for line in str(text).splitlines())


# Characters that open markup anywhere: emphasis, code, links, images, HTML, tables.
_INLINE = re.compile(r"([\\`*\[\]<>|~])")
# `_` opens emphasis only at a word's edge, not inside snake_case.
_EDGE_UNDERSCORE = re.compile(r"(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")
# At the start of a line: a heading, a list item, a rule or setext underline.
_LINE_START = re.compile(r"^(\s*)(#{1,6}(?=\s|$)|[-+](?=\s|$|-)|=+$)")
# "12. x" would be a numbered list: the dot is escaped ("12\. x").
_NUMBERED = re.compile(r"^(\s*\d{1,9})([.)])(?=\s|$)")
