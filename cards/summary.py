"""The close summary: when an incident closes, what happened and what we learned, as a card in
the team's channel (the RCA e-mail carries the same)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from cards.common import LEVEL_ICON, TITLE_CHARS, block, card, facts, labelled, link, plain
from incidents.metrics import duration, money
from incidents.model import Incident

_SECTIONS = (("summary", "Summary"), ("customer_impact", "Customer impact"),
             ("root_cause", "Root cause"), ("resolution", "Resolution"), ("lessons", "Lessons"))
MAX_ITEMS = 10


@dataclass(frozen=True)
class CloseSummary:
    incident: Incident
    team_name: str | None
    postmortem: Mapping[str, Any] = field(default_factory=dict)
    action_items: Sequence[Mapping[str, Any]] = ()
    impact_usd: float | None = None
    linked: int = 0
    people: Mapping[str, str] = field(default_factory=dict)
    page_url: str | None = None
    teams_url: str | None = None
    waiver: str | None = None        # the postmortem was waived: "waived by … on …: why"


def close_summary_card(s: CloseSummary) -> dict[str, Any]:
    i = s.incident
    mtta = (i.first_acknowledged_at - i.triggered_at).total_seconds() \
        if i.first_acknowledged_at else None
    mttr = (i.resolved_at - i.triggered_at).total_seconds() if i.resolved_at else None
    body: list[dict] = [{"type": "Container", "style": "good", "bleed": True, "items": [
        block(f"✅ **{i.ref} closed** · {LEVEL_ICON.get(i.level, '⚪')} {i.level}",
              size="Medium", weight="Bolder"),
        plain(i.title, limit=TITLE_CHARS, weight="Bolder")]}]
    body.append(labelled("Service", i.service or "unknown service"))
    if s.team_name:
        body.append(labelled("Team", s.team_name))
    body.append(facts([("Time to acknowledge", duration(mtta) if mtta is not None else None),
                       ("Time to resolve", duration(mttr) if mttr is not None else None),
                       ("Linked incidents", str(s.linked) if s.linked else None),
                       ("Estimated impact", f"≈ {money(s.impact_usd)}" if s.impact_usd
                        else None)]))
    if s.waiver:
        body.append(labelled("Postmortem", s.waiver, limit=700))
    for key, label in _SECTIONS:
        if (s.postmortem.get(key) or "").strip():
            body.append(labelled(label, s.postmortem[key], limit=700))
    if s.action_items:
        body.append(block("**Action items**", spacing="Medium"))
        for item in s.action_items[:MAX_ITEMS]:
            owner = s.people.get((item.get("owner") or "").lower(), item.get("owner")) \
                or "no owner"
            due = item["due_date"].isoformat() if item.get("due_date") else "no due date"
            key = f" · {item['jira_key']}" if item.get("jira_key") else ""
            body.append(plain(f"• {item['title']} — {owner}, due {due}{key}", limit=300))
        if len(s.action_items) > MAX_ITEMS:
            body.append(block(f"…and {len(s.action_items) - MAX_ITEMS} more.", isSubtle=True))
    actions = [a for a in (link("Postmortem", s.page_url), link("Incident card", s.teams_url),
                           link("PagerDuty", i.html_url)) if a]
    return card(body, actions[:6])
