"""The compact card a cascade child gets in its own team's channel when its root belongs to
another team: PagerDuty paged this team too, so it must see that the work happens elsewhere
("INC-1 checkout-api 5xx: likely caused by INC-2 payment-gateway (Payments); follow it there"),
and it may acknowledge or say "Not related". Rendered from stored state, like the full card."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cards.common import LEVEL_ICON, TITLE_CHARS, block, card, execute, facts, link, truncate, when
from incidents.model import Incident


@dataclass(frozen=True)
class CascadeView:
    child: Incident
    root: Incident
    root_team_name: str | None = None


def cascade_child_card(view: CascadeView) -> dict[str, Any]:
    child, root = view.child, view.root
    team = f" ({view.root_team_name})" if view.root_team_name else ""
    # Titles are what an alert or a person wrote: TextRuns, never Markdown.
    headline = {"type": "RichTextBlock", "inlines": [
        {"type": "TextRun", "text": f"🔗 {child.ref} ", "weight": "Bolder"},
        {"type": "TextRun", "text": truncate(_name(child), TITLE_CHARS)},
        {"type": "TextRun", "text": ": likely caused by "},
        {"type": "TextRun", "text": f"{root.ref} ", "weight": "Bolder"},
        {"type": "TextRun", "text": truncate(root.service or root.title, TITLE_CHARS) + team},
        {"type": "TextRun", "text": "; follow it there."}]}
    body = [{"type": "Container", "style": "emphasis", "bleed": True, "items": [
                headline, {"type": "RichTextBlock", "inlines": [
                    {"type": "TextRun", "text": f"{root.ref}: ", "isSubtle": True},
                    {"type": "TextRun", "text": truncate(root.title, TITLE_CHARS),
                     "isSubtle": True}]}]},
            facts([(f"{root.ref}", _root_state(root)),
                   (f"{child.ref}", _child_state(child)),
                   ("Triggered", when(child.triggered_at))])]
    if child.link_reason:
        body.append({"type": "RichTextBlock", "inlines": [
            {"type": "TextRun", "text": truncate(child.link_reason, 300), "isSubtle": True}]})
    if root.status != "open" and child.is_open:
        body.append(block(f"{root.ref} is {root.status}; check whether this one recovered too.",
                          weight="Bolder"))
    return card(body, _actions(view))


def _name(incident: Incident) -> str:
    """"search-service latency": the service, then the title unless it already names it."""
    service = incident.service or "unknown service"
    return incident.title if incident.title.startswith(service) else f"{service} {incident.title}"


def _root_state(root: Incident) -> str:
    state = f"{LEVEL_ICON.get(root.level, '⚪')} {root.status.capitalize()} · {root.level}"
    if root.acknowledged_by:
        state += " · acknowledged"
    return state


def _child_state(child: Incident) -> str:
    if child.acknowledged_by and child.is_open:
        return f"{child.status.capitalize()} · acknowledged"
    return child.status.capitalize()


def _actions(view: CascadeView) -> list[dict]:
    child = view.child
    data = {"incident": child.ref, "version": child.version}
    actions = []
    if child.is_open and not child.acknowledged_by:
        actions.append(execute("Acknowledge", "ack", data, style="positive"))
    actions.append(execute("Not related", "unlink", data, style="destructive"))
    pagerduty = link(f"{view.root.ref} in PagerDuty", view.root.html_url)
    if pagerduty:
        actions.append(pagerduty)
    return actions
