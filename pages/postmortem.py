"""The postmortem as a read-only HTML page and as Markdown, from stored state. Everything a
person typed is escaped: it shows as text, never as markup."""
from __future__ import annotations

import re
from datetime import timezone, tzinfo
from html import escape
from typing import Any, Mapping, Sequence

from incidents.clock import zoned
from incidents.model import Incident
from incidents.postmortem import RCA_SECTIONS

_STYLE = ("body{font-family:Segoe UI,Arial,sans-serif;max-width:860px;margin:2em auto;"
          "padding:0 1em;color:#222}h1{font-size:1.5em}pre,p.t{white-space:pre-wrap}"
          "table{border-collapse:collapse}td,th{border-bottom:1px solid #ddd;padding:4px 10px;"
          "text-align:left}.s{color:#666}")


def postmortem_html(incident: Incident, postmortem: Mapping[str, Any] | None,
                    items: Sequence[Mapping[str, Any]], timeline: Sequence[Mapping[str, Any]], *,
                    missing: Sequence[str], impact_usd: float | None, service_name: str | None,
                    team_name: str | None, jira: Mapping[str, str],
                    zone: tzinfo = timezone.utc) -> str:
    """Times in `zone` (the catalog's), with the zone named."""
    pm = postmortem or {}
    facts = _facts(incident, pm, missing, impact_usd, service_name, team_name, zone)
    parts = [f"<!doctype html><html><head><meta charset=utf-8><title>{escape(incident.ref)} "
             f"postmortem</title><style>{_STYLE}</style></head><body>",
             f"<h1>{escape(incident.ref)}: {escape(incident.title)}</h1>",
             "<table>" + "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>"
                                 for k, v in facts) + "</table>"]
    for key, label in RCA_SECTIONS:
        text = pm.get(key) or ""
        parts.append(f"<h2>{escape(label)}</h2>" + (f'<p class="t">{escape(text)}</p>' if text
                                                     else '<p class="s">Not written yet.</p>'))
    parts.append("<h2>Action items</h2>" + _items_html(items, jira))
    parts.append("<h2>Incident timeline</h2><table>" + "".join(
        f"<tr><td class=s>{zoned(e['at'], zone)}</td>"
        f"<td>{escape(e['text'])}</td><td class=s>{escape(e.get('actor') or '')}</td></tr>"
        for e in timeline) + "</table></body></html>")
    return "".join(parts)


def postmortem_markdown(incident: Incident, postmortem: Mapping[str, Any] | None,
                        items: Sequence[Mapping[str, Any]], timeline: Sequence[Mapping[str, Any]],
                        *, missing: Sequence[str], impact_usd: float | None,
                        service_name: str | None, team_name: str | None,
                        zone: tzinfo = timezone.utc) -> str:
    pm = postmortem or {}
    lines = [f"# {incident.ref}: {_md(incident.title)}", ""]
    lines += [f"- **{k}:** {_md(v)}" for k, v in _facts(incident, pm, missing, impact_usd,
                                                        service_name, team_name, zone)]
    for key, label in RCA_SECTIONS:
        lines += ["", f"## {label}", "", _md(pm.get(key) or "_Not written yet._")]
    lines += ["", "## Action items", ""]
    lines += [f"- [{'x' if i.get('jira_done') else ' '}] {_md(i['title'])} — "
              f"{_md(i.get('owner') or 'no owner')}, due "
              f"{i['due_date'].isoformat() if i.get('due_date') else 'n/a'}"
              + (f" ({i['jira_key']})" if i.get("jira_key") else "") for i in items] or ["_None._"]
    lines += ["", "## Incident timeline", ""]
    lines += [f"- {zoned(e['at'], zone)} — {_md(e['text'])}" for e in timeline]
    return "\n".join(lines) + "\n"


def _facts(incident: Incident, pm: Mapping[str, Any], missing: Sequence[str],
           impact_usd: float | None, service_name: str | None,
           team_name: str | None, zone: tzinfo) -> list[tuple[str, str]]:
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
        out.append(("Owner", pm["owner"]))
    if missing:
        out.append(("Still missing", "; ".join(missing)))
    return out


def _items_html(items: Sequence[Mapping[str, Any]], jira: Mapping[str, str]) -> str:
    if not items:
        return '<p class="s">None yet.</p>'
    rows = []
    for i in items:
        key = i.get("jira_key")
        link = (f'<a href="{escape(jira[key], quote=True)}">{escape(key)}</a>'
                if key and key in jira else escape(key or ""))
        due = i["due_date"].isoformat() if i.get("due_date") else "—"
        state = i.get("jira_status") or ("done" if i.get("jira_done") else "open")
        rows.append(f"<tr><td>{escape(i['title'])}</td><td>{escape(i.get('owner') or '—')}</td>"
                    f"<td>{due}</td><td>{link}</td><td>{escape(state)}</td></tr>")
    return ("<table><tr><th>What</th><th>Owner</th><th>Due</th><th>JIRA</th><th>State</th></tr>"
            + "".join(rows) + "</table>")


def _md(text: str) -> str:
    """Markdown-escape what people typed, so the export shows it as text."""
    return re.sub(r"([\\`*_{}\[\]()#+\-.!<>|~])", r"\\\1", str(text))
