"""The parts of the incident card about running it: the bridge buttons, who holds which role,
the latest stakeholder update (and when the next one is due), and the forms behind "More"
(post an update, assign a role, open a bridge). Rendered from stored state only."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Sequence

from cards.common import block, execute, labelled, link, truncate, when
from incidents.model import Incident
from incidents.roles import COMMANDER
from incidents.roles import title as role_title
from incidents.updates import PHASE_ICON, PHASES, TEXT_LIMIT


@dataclass(frozen=True)
class LatestUpdate:
    phase: str
    text: str
    author: str | None
    posted_at: datetime


@dataclass(frozen=True)
class Running:
    bridge_url: str | None = None                     # the incident's (or its root's) meeting
    can_open_bridge: bool = False                     # configured, none yet: "Open bridge"
    roles: Sequence[tuple[str, str]] = ()             # (role, person's name), commander aside
    latest_update: LatestUpdate | None = None
    update_count: int = 0
    next_update_due: datetime | None = None           # the level's cadence, while open
    update_overdue: bool = False                      # that time has passed
    role_choices: Sequence[str] = ()                  # roles the form offers (commander first)
    people: Sequence[tuple[str, str]] = ()            # (e-mail, name) the role form offers


def role_lines(running: Running | None) -> list[dict]:
    if running is None:
        return []
    return [labelled(role_title(role), name, limit=100) for role, name in running.roles]


def bridge_buttons(running: Running | None, conference_url: str | None) -> list[dict]:
    """"Join bridge" (the Teams meeting) and PagerDuty's conference bridge when the alert
    brought one, as buttons of their own near the top: the first thing a responder needs."""
    ours = running.bridge_url if running else None
    buttons = [link("Join bridge", ours),
               link("Conference bridge" if ours else "Join bridge", conference_url)]
    actions = [b for b in buttons if b]
    return [{"type": "ActionSet", "actions": actions}] if actions else []


def update_lines(running: Running | None, incident: Incident) -> list[dict]:
    if running is None:
        return []
    out: list[dict] = []
    latest = running.latest_update
    if latest is not None:
        icon = PHASE_ICON.get(latest.phase, "📣")
        out.append(block(f"📣 **Stakeholder update {running.update_count}** · {icon} "
                         f"{latest.phase} · {when(latest.posted_at)}", spacing="Medium"))
        said = [{"type": "TextRun", "text": truncate(latest.text, 600)}]
        if latest.author:  # kept whatever the text's length
            said.append({"type": "TextRun", "text": f" — {truncate(latest.author, 100)}",
                         "isSubtle": True})
        out.append({"type": "RichTextBlock", "inlines": said})
    due = running.next_update_due
    if due is not None and incident.is_open:
        if running.update_overdue:
            out.append(block(f"⏰ A stakeholder update is overdue (was due {when(due)}): "
                             "More → Update", color="Warning"))
        else:
            out.append(block(f"Next stakeholder update due {when(due)}", isSubtle=True))
    return out


def more_actions(running: Running | None, incident: Incident,
                 data: dict[str, Any]) -> list[dict]:
    """The forms behind the card's "More": each answers with the refreshed card."""
    if running is None or incident.status == "closed":
        return []
    actions = [_update_form(running, data)]
    if incident.is_open and running.role_choices and running.people:
        actions.append(_role_form(running, data))
    if running.can_open_bridge and incident.is_open:
        actions.append(execute("Open bridge", "open_bridge", data))
    return actions


def _update_form(running: Running, data: dict[str, Any]) -> dict:
    phase = running.latest_update.phase if running.latest_update else PHASES[0]
    return {"type": "Action.ShowCard", "title": "Update", "card": {
        "type": "AdaptiveCard", "body": [{
            "type": "Input.ChoiceSet", "id": "update_phase", "label": "Phase", "value": phase,
            "choices": [{"title": p, "value": p} for p in PHASES], "isRequired": True,
            "errorMessage": "Pick a phase"}, {
            "type": "Input.Text", "id": "update_text", "label": "What stakeholders should know",
            "isMultiline": True, "maxLength": TEXT_LIMIT, "isRequired": True,
            "errorMessage": "Say what changed"}],
        "actions": [execute("Post update", "post_update", data)]}}


def _role_form(running: Running, data: dict[str, Any]) -> dict:
    return {"type": "Action.ShowCard", "title": "Assign role", "card": {
        "type": "AdaptiveCard", "body": [{
            "type": "Input.ChoiceSet", "id": "role_name", "label": "Role",
            "choices": [{"title": "Commander" if r == COMMANDER else role_title(r), "value": r}
                        for r in running.role_choices],
            "isRequired": True, "errorMessage": "Pick a role"}, {
            "type": "Input.ChoiceSet", "id": "role_person", "label": "Person", "style": "filtered",
            "choices": [{"title": name, "value": email} for email, name in running.people],
            "isRequired": True, "errorMessage": "Pick someone"}],
        "actions": [execute("Assign", "assign_role", data)]}}
