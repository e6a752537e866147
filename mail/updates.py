"""A stakeholder update as an e-mail to the service's stakeholders: HTML (escaped, inline
styles) and a plain-text twin, rendered from the stored update."""
from __future__ import annotations

from datetime import datetime, timezone, tzinfo
from html import escape

from incidents.clock import zoned
from incidents.model import Incident


def stakeholder_update_email(incident: Incident, *, phase: str, text: str, author: str | None,
                             posted_at: datetime, number: int, team_name: str | None,
                             teams_link: str | None, bridge_url: str | None,
                             zone: tzinfo = timezone.utc) -> tuple[str, str, str]:
    subject = (f"[Firebell] {incident.ref} update {number} ({phase}): "
               f"{incident.title}")[:250]
    facts = [("Incident", incident.ref), ("Phase", phase),
             ("Service", incident.service or "unknown"), ("Team", team_name or "—"),
             ("Level", incident.level), ("Incident status", incident.status),
             ("Posted", zoned(posted_at, zone)),
             *([("Posted by", author)] if author else [])]
    links = [(k, v) for k, v in (("Open the card in Teams", teams_link),
                                 ("Join bridge", bridge_url)) if v]
    plain = "\n".join([text, "", *(f"{k}: {v}" for k, v in facts), "",
                       *(f"{k}: {v}" for k, v in links)])
    rows = "".join(f'<tr><td style="padding:2px 12px 2px 0;color:#555">{escape(k)}</td>'
                   f"<td>{escape(v)}</td></tr>" for k, v in facts)
    buttons = " ".join(f'<a href="{escape(v, quote=True)}" style="display:inline-block;'
                       'padding:6px 12px;background:#5b5fc7;color:#fff;text-decoration:none;'
                       f'border-radius:4px">{escape(k)}</a>' for k, v in links)
    html = ('<!doctype html><html><body style="font-family:Segoe UI,Arial,sans-serif;'
            'font-size:14px;color:#222">'
            f'<h2 style="margin:0 0 8px">{escape(incident.title)}</h2>'
            f'<p style="white-space:pre-wrap">{escape(text)}</p>'
            f'<table style="border-collapse:collapse">{rows}</table>'
            f'<p style="margin-top:16px">{buttons}</p>'
            '<p style="color:#888;font-size:12px">You get this because you are a stakeholder of '
            f'{escape(incident.service or "this service")} in Firebell\'s catalog.</p>'
            "</body></html>")
    return subject, plain, html
