"""IncidentCard: the live card of one incident, rendered from stored state only."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Sequence

from cards.common import (LEVEL_ICON, MAX_CARD_BYTES, STATUS_STYLE, TITLE_CHARS, block, card,
                          day, execute, facts, labelled, link, mention, plain, size, truncate,
                          when)
from cards.running import Running, bridge_buttons, more_actions, role_lines, update_lines
from incidents.metrics import duration
from incidents.model import Incident, ref


@dataclass(frozen=True)
class Delivery:
    """How one automatic step is going, e.g. ("JIRA", "failed, /incident retry INC-7")."""
    system: str
    state: str
    problem: bool = False
    retry_at: datetime | None = None    # shown in the reader's zone


@dataclass(frozen=True)
class Paged:
    """A page sent from Teams and how it is going, e.g. ("Data Platform", "PagerDuty #1234 ·
    acknowledged by Ana Costa")."""
    target: str
    state: str
    acknowledged: bool = False


@dataclass(frozen=True)
class IncidentView:
    incident: Incident
    levels: Sequence[str]
    team_name: str | None = None
    runbook: str | None = None
    oncall: tuple[str, str] | None = None          # (e-mail, name) of the primary on-call
    parent: Incident | None = None
    children: Sequence[Incident] = ()
    impacted_services: Sequence[str] = ()
    links: Sequence[tuple[str, str]] = ()            # (title, url): war room, postmortem, JIRA
    deliveries: Sequence[Delivery] = ()
    similar: Sequence[Incident] = ()
    needs_postmortem: bool = False
    postmortem_missing: Sequence[str] = ()
    postmortem_waiver: str | None = None             # "waived by Sarah Kim on …: why"
    postmortem_owner: str | None = None              # a name
    postmortem_due: datetime | None = None
    impact_usd: float | None = None
    commander_name: str | None = None
    timeline: Sequence[dict[str, Any]] | None = None  # shown by `show`, not on the live card
    timeline_hidden: int = 0                         # older entries left out to fit
    running: Running | None = None                   # bridge, roles, stakeholder updates
    pages: Sequence[Paged] = ()                      # `incident page`: who, acknowledged?
    declared_by: str | None = None                   # "Priya Raman", "PagerDuty"
    resolved_by: str | None = None
    standby: str | None = None                       # the service's standby on-call (a name)
    held_back: str | None = None                     # in maintenance / recorded only: why no card


def incident_card(view: IncidentView) -> dict[str, Any]:
    body = _header(view) + _relations(view) + _facts(view) + _people(view)
    body += bridge_buttons(view.running, view.incident.conference_url)
    body += update_lines(view.running, view.incident)
    body += _follow_ups(view) + _timeline(view)
    actions = _actions(view)
    mentions = [mention(*view.oncall)[1]] if view.oncall else None
    result = card(body, actions, mentions=mentions)
    # The timeline is the optional part: drop its older half until the card fits Teams' limit
    # (2 KB kept for the activity around the card).
    if size(result) > MAX_CARD_BYTES - 2048 and view.timeline:
        keep = list(view.timeline)[len(view.timeline) // 2 + 1:]
        dropped = len(view.timeline) - len(keep)
        return incident_card(_with(view, timeline=keep,
                                   timeline_hidden=view.timeline_hidden + dropped))
    return result


def _with(view: IncidentView, **changes: Any) -> IncidentView:
    return IncidentView(**{**view.__dict__, **changes})


def _header(view: IncidentView) -> list[dict]:
    i = view.incident
    style = STATUS_STYLE.get(i.status, "default")
    headline = f"{LEVEL_ICON.get(i.level, '⚪')} **{i.ref}** · {i.status.upper()} · {i.level}"
    if i.pd_number:
        headline += f" · PagerDuty #{i.pd_number}"
    items = [block(headline, size="Medium", weight="Bolder"),
             plain(i.title, limit=TITLE_CHARS, weight="Bolder", size_="Large")]
    if i.private:
        items.append(block(f"🔒 Private: only its members and admins see it. Your own link to "
                           f"its postmortem: `incident postmortem {i.ref} link` in a personal "
                           "chat with Firebell.", isSubtle=True, spacing="Small"))
    if view.held_back:
        items.append(block(f"🔕 {view.held_back}", spacing="Small"))
    return [{"type": "Container", "style": style, "bleed": True, "items": items}]


def _relations(view: IncidentView) -> list[dict]:
    i, out = view.incident, []
    if view.parent is not None:
        p = view.parent
        # Emphasis containers, default text colour: readable in light, dark and high contrast
        # (the Warning colour is yellow on white).
        if i.link_kind == "duplicate":
            out.append(_emphasis(block(f"🔁 Duplicate of **{p.ref}**")))
        else:
            out.append(_emphasis(block(f"🔗 Likely caused by **{p.ref}** "
                                       f"({p.service or 'unknown service'})")))
        if p.status != "open" and i.is_open:
            out.append(block(f"{p.ref} is {p.status}; check whether this one recovered too.",
                             isSubtle=True))
        if i.link_reason:
            out.append(plain(i.link_reason, limit=300, subtle=True))
    duplicates = [c for c in view.children if c.link_kind == "duplicate"]
    if duplicates:
        refs = ", ".join(c.ref for c in duplicates[:10]) + (" …" if len(duplicates) > 10 else "")
        out.append(block(f"🔁 **{len(duplicates)} duplicate{'s' if len(duplicates) != 1 else ''}**"
                         f": {refs}"))
    if view.impacted_services:
        out.append(labelled("Impacted downstream", ", ".join(view.impacted_services[:15])))
    if i.recurrence_of:
        out.append(block(f"↩️ Recurrence of **{ref(i.recurrence_of)}**", isSubtle=True))
    return out


def _facts(view: IncidentView) -> list[dict]:
    i = view.incident
    out = [labelled("Service", i.service or "unknown service")]
    if view.team_name:
        out.append(labelled("Team", view.team_name))
    ended = i.resolved_at if i.status != "open" else None
    out.append(facts([
        ("Status", i.status.capitalize()),
        ("Level", i.level),
        ("Triggered", when(i.triggered_at)),
        ("Acknowledged", when(i.acknowledged_at) if i.acknowledged_by and i.acknowledged_at
         else None),
        ("Resolved", when(ended) if ended else None),
        ("Closed", when(i.closed_at) if i.closed_at else None),
        ("Duration", duration((ended - i.triggered_at).total_seconds()) if ended else None),
        ("Impact", (f"≈ ${view.impact_usd:,.0f}" + (" so far" if i.is_open else ""))
         if view.impact_usd else None),
        ("Postmortem due", day(view.postmortem_due) if view.postmortem_due else None),
    ]))
    extra = [(label, value) for label, value in (("Priority", i.priority), ("Urgency", i.urgency))
             if value]
    out += [labelled(label, value, limit=50) for label, value in extra]
    return out


def _people(view: IncidentView) -> list[dict]:
    """Names as people wrote them (TextRuns); their times are in the facts above."""
    i, out = view.incident, []
    if view.declared_by:
        out.append(labelled("Declared by", view.declared_by, limit=100))
    if i.acknowledged_by:  # kept once resolved: who took it on is part of the story
        out.append(labelled("Acknowledged by", i.acknowledged_by, limit=100))
    if view.resolved_by and i.status != "open":
        out.append(labelled("Resolved by", view.resolved_by, limit=100))
    if i.commander:
        out.append(labelled("Incident commander", view.commander_name or i.commander, limit=100))
    out += role_lines(view.running)
    if view.oncall:
        text, _ = mention(*view.oncall)
        out.append(block(f"On call: {text}"))
    if view.standby:
        out.append(labelled("Standby", view.standby, limit=100))
    if view.postmortem_owner:
        out.append(labelled("Postmortem owner", view.postmortem_owner, limit=100))
    return out + _paged(view)


def _paged(view: IncidentView) -> list[dict]:
    """Pages sent from Teams: whom, and whether they acknowledged (PagerDuty's webhooks)."""
    return [{"type": "RichTextBlock", "inlines": [
        {"type": "TextRun", "text": "📟 Paged ", "weight": "Bolder"},
        {"type": "TextRun", "text": truncate(p.target, 80), "weight": "Bolder"},
        {"type": "TextRun", "text": f" · {truncate(p.state, 200)}",
         **({"color": "Good"} if p.acknowledged else {})}]} for p in view.pages]


def _follow_ups(view: IncidentView) -> list[dict]:
    out = []
    for d in view.deliveries:
        out.append(labelled(d.system, d.state, limit=200) if not d.problem else
                   {"type": "RichTextBlock", "inlines": [
                       {"type": "TextRun", "text": f"{d.system}: ", "weight": "Bolder"},
                       {"type": "TextRun", "text": d.state, "color": "Attention"}]})
        if d.retry_at:
            out.append(block(f"Next try {when(d.retry_at)}", isSubtle=True, spacing="None"))
    if view.postmortem_missing and view.incident.status == "resolved":
        out.append(_emphasis(labelled("To close", "; ".join(view.postmortem_missing),
                                      limit=400)))
    if view.postmortem_waiver:
        out.append(plain("Postmortem " + view.postmortem_waiver, limit=700, subtle=True))
    if view.similar:
        out.append(block("**Similar past incidents**", spacing="Medium"))
        for s in view.similar[:3]:
            out.append(plain(f"{s.ref} · {s.status} · {s.title}", limit=160, subtle=True))
    links = [a for a in (link(title, url) for title, url in _links(view)) if a]
    if links:
        out.append({"type": "ActionSet", "actions": links[:6]})
    return out


def _links(view: IncidentView) -> list[tuple[str, str | None]]:
    i = view.incident
    return [*view.links, ("Runbook", view.runbook), ("PagerDuty", i.html_url)]


def _timeline(view: IncidentView) -> list[dict]:
    if not view.timeline:
        return []
    out = [block("**Timeline**", spacing="Medium", separator=True)]
    if view.timeline_hidden:
        out.append(block(f"{view.timeline_hidden} older entries are not shown here; the "
                         "postmortem page has the whole timeline.", isSubtle=True))
    for entry in view.timeline:
        who = f" — {entry['actor']}" if entry.get("actor") else ""
        # The time in the reader's zone (a TextBlock: DATE/TIME), the words as written.
        out.append({"type": "ColumnSet", "spacing": "Small", "columns": [
            {"type": "Column", "width": "auto", "items": [
                block(when(entry["at"]), isSubtle=True, wrap=False)]},
            {"type": "Column", "width": "stretch", "items": [
                plain(f"{entry['text']}{who}", limit=500)]}]})
    return out


def _emphasis(*items: dict) -> dict:
    return {"type": "Container", "style": "emphasis", "items": list(items)}


def _actions(view: IncidentView) -> list[dict]:
    """The acts people reach for first, then "More" for the rest: Teams shows at most six
    actions on a card."""
    i = view.incident
    data = {"incident": i.ref, "version": i.version}
    actions: list[dict] = []
    if i.is_open and not i.acknowledged_by:
        actions.append(execute("Acknowledge", "ack", data, style="positive"))
    if i.is_open:
        actions.append(execute("Resolve", "resolve", data))
    if i.status == "resolved":
        actions.append(execute("Close", "close", data))
    if i.status != "closed":
        actions.append(_level_picker(view, data))
    if view.needs_postmortem and i.parent_id is None:
        actions.append(execute("RCA", "rca", data))
    if i.parent_id is not None:
        actions.append(execute("Not related", "unlink", data, style="destructive"))
    more = _more(view, data)
    return actions[:5] + [more] if more else actions[:6]


def _more(view: IncidentView, data: dict[str, Any]) -> dict | None:
    """Less frequent acts, behind one button. Each capability adds its own here."""
    actions = []
    if any(d.problem for d in view.deliveries):
        actions.append(execute("Retry failed follow-ups", "retry", data))
    actions += more_actions(view.running, view.incident, data)
    if not actions:
        return None
    return {"type": "Action.ShowCard", "title": "More", "card": {
        "type": "AdaptiveCard", "body": [], "actions": actions}}


def _level_picker(view: IncidentView, data: dict[str, Any]) -> dict:
    choices = [{"title": lvl, "value": lvl} for lvl in view.levels]
    return {"type": "Action.ShowCard", "title": "Change level", "card": {
        "type": "AdaptiveCard", "body": [{
            "type": "Input.ChoiceSet", "id": "level", "label": "Level", "value": view.incident.level,
            "choices": choices, "isRequired": True, "errorMessage": "Pick a level"}, {
            "type": "Input.Text", "id": "reason", "label": "Reason",
            "placeholder": "Needed to lower a resolved incident or one with a postmortem",
            "maxLength": 500}],
        "actions": [execute("Set level", "set_level", data)]}}

