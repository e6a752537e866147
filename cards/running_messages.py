"""Messages about running an incident, posted in channels and war rooms: a stakeholder update,
someone named to a role (@mentioned), and the reminders (no commander yet; a stakeholder
update overdue; not acknowledged in time). People are @mentioned in TextBlocks (Teams resolves mentions only there);
what people wrote goes in TextRuns."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from cards.common import block, card, facts, link, plain, when
from cards.reminder import Who
from incidents.metrics import duration
from incidents.model import Incident
from incidents.roles import title as role_title
from incidents.updates import PHASE_ICON

STYLE = {"investigating": "attention", "identified": "warning", "monitoring": "accent",
         "resolved": "good"}


def stakeholder_update_card(incident: Incident, *, phase: str, text: str, author: str | None,
                            posted_at: datetime, number: int, team_name: str | None,
                            bridge_url: str | None = None) -> dict[str, Any]:
    body = [{"type": "Container", "style": STYLE.get(phase, "default"), "bleed": True, "items": [
        block(f"📣 **{incident.ref} · update {number} · {PHASE_ICON.get(phase, '')} "
              f"{phase.upper()}**", weight="Bolder"),
        plain(incident.title, limit=200, weight="Bolder")]},
        plain(text, limit=2000),
        facts([("Service", incident.service or "unknown"), ("Team", team_name),
               ("Level", incident.level), ("Incident status", incident.status),
               ("Posted", when(posted_at))])]
    if author:
        body.append(plain(f"Posted by {author}", limit=200, subtle=True))
    bridge = link("Join bridge", bridge_url)
    return card(body, [bridge] if bridge else None)


def role_card(incident: Incident, role: str, person: Who, by: str) -> dict[str, Any]:
    who, entity = person.mention()
    body = [block(f"🎭 {who} now has the **{role_title(role).lower()}** role on "
                  f"**{incident.ref}**" if role != "commander" else
                  f"🎭 {who} is now the **incident commander** of **{incident.ref}**"),
            plain(incident.title, limit=200, subtle=True),
            plain(f"Assigned by {by}", limit=200, subtle=True)]
    return card(body, mentions=[entity] if entity else None)


def commander_reminder_card(incident: Incident, oncall: Who | None,
                            waited_seconds: float) -> dict[str, Any]:
    who, entity = oncall.mention() if oncall else ("Whoever is on call", None)
    body = [{"type": "Container", "style": "warning", "bleed": True, "items": [
        block(f"🧭 **{incident.ref} has no incident commander** after "
              f"{duration(waited_seconds)}", weight="Bolder"),
        plain(incident.title, limit=200)]},
        block(f"{who}: someone should run it. A responder who acknowledges it takes command, "
              f"or name one: `incident assign {incident.ref} @person`.")]
    return card(body, mentions=[entity] if entity else None)


def update_reminder_card(incident: Incident, who: Who | None, whose: str,
                         silent_seconds: float, cadence: str, *, first: bool) -> dict[str, Any]:
    """`first`: no update was posted yet (the silence counts from the trigger)."""
    name, entity = who.mention() if who else ("Whoever runs it", None)
    body = [{"type": "Container", "style": "warning", "bleed": True, "items": [
        block(f"📣 **{incident.ref}: stakeholders are waiting for an update**",
              weight="Bolder"),
        plain(incident.title, limit=200)]},
        block(f"{name} ({whose}): " + (f"none was posted in the {duration(silent_seconds)} "
                                       "since it started" if first else
                                       f"the last one was {duration(silent_seconds)} ago")
              + f"; at {incident.level} they hear from us every {cadence}. Post one from the "
              f"card (More → Update) or type `incident update {incident.ref} ‹phase› ‹what "
              "changed›` (phases: investigating, identified, monitoring, resolved).")]
    return card(body, mentions=[entity] if entity else None)


def ack_reminder_card(incident: Incident, oncall: Who | None, standby: Who | None,
                      waited_seconds: float, within: str) -> dict[str, Any]:
    """Nobody acknowledged a paging-level incident in time: one escalation, @mentioning the
    on-call and the standby."""
    people = [p.mention() for p in (oncall, standby) if p]
    who = " and ".join(text for text, _ in people) or "Whoever is on call"
    body = [{"type": "Container", "style": "attention", "bleed": True, "items": [
        block(f"🔕 **{incident.ref} is not acknowledged** after {duration(waited_seconds)} "
              f"({incident.level}: within {within})", weight="Bolder"),
        plain(incident.title, limit=200)]},
        block(f"{who}: please look now. Acknowledge it on its card or with "
              f"`incident ack {incident.ref}`.")]
    return card(body, mentions=[entity for _, entity in people if entity] or None)
