"""Reminder e-mails: an overdue postmortem to its owner, overdue action items to theirs."""
from __future__ import annotations

from datetime import datetime, timezone, tzinfo
from html import escape
from typing import Sequence

from cards.reminder import DueItem, Who
from incidents.clock import zoned
from incidents.model import ref


def postmortem_reminder_email(incident_id: int, title: str, owner: Who, due_at: datetime,
                              missing: Sequence[str], page_url: str | None,
                              zone: tzinfo = timezone.utc) -> tuple[str, str, str]:
    subject = f"[Firebell] Postmortem overdue: {ref(incident_id)} {title}"[:250]
    lines = [f"Hello {owner.name},", "",
             f"The postmortem of {ref(incident_id)} ({title}) was due "
             f"{zoned(due_at, zone)}."]
    if missing:
        lines.append("Still needed: " + "; ".join(missing) + ".")
    lines.append(f"Fill it in with `incident rca {ref(incident_id)}` in Teams"
                 + (f" or at {page_url}" if page_url else "") + ".")
    html = "".join(f"<p>{escape(x)}</p>" for x in lines if x)
    return subject, "\n".join(lines), f'<div style="font-family:Segoe UI,Arial">{html}</div>'


def action_reminder_email(owner: Who, items: Sequence[DueItem]) -> tuple[str, str, str]:
    subject = f"[Firebell] {len(items)} action item(s) overdue"
    lines = [f"Hello {owner.name},", "", "These postmortem action items are past their due date "
             "and not done in JIRA:"]
    lines += [f"- {ref(i.incident_id)} {i.jira_key or ''} due {i.due_date:%Y-%m-%d}: {i.title}"
              for i in items]
    html = (f"<p>{escape(lines[0])}</p><p>{escape(lines[2])}</p><ul>"
            + "".join(f"<li>{escape(x[2:])}</li>" for x in lines[3:]) + "</ul>")
    return subject, "\n".join(lines), f'<div style="font-family:Segoe UI,Arial">{html}</div>'
