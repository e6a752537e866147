"""Reminder cards: an overdue postmortem, overdue action items, an open incident nobody has
updated for a while. A person is @mentioned in the team channel (most people have no 1:1
conversation with the bot); the e-mail twins are in mail/reminders.py."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Sequence

from cards.common import block, card, execute, link, mention, plain, when
from incidents.metrics import duration
from incidents.model import ref


@dataclass(frozen=True)
class Who:
    email: str | None
    name: str

    def mention(self) -> tuple[str, dict | None]:
        """The @mention goes in a TextBlock (Teams resolves mentions only there), so the name
        loses anything Markdown would act on."""
        name = re.sub(r"[\[\]()*_`<>#~|\\]", "", self.name)[:100].strip() or "someone"
        if not self.email:
            return name, None
        return mention(self.email, name)


def postmortem_reminder_card(incident_id: int, title: str, owner: Who, due_at: datetime,
                             number: int, missing: Sequence[str],
                             page_url: str | None) -> dict[str, Any]:
    who, entity = owner.mention()
    body = [{"type": "Container", "style": "warning", "bleed": True, "items": [
        block(f"⏰ **Postmortem overdue: {ref(incident_id)}**", weight="Bolder"),
        plain(title, limit=200)]},
        block(f"{who}, the RCA was due {when(due_at)}. Reminder {number}; these stop when the "
              "postmortem is complete.")]
    if missing:
        body.append(plain("Still needed: " + "; ".join(missing), limit=500))
    actions = [execute("Open the RCA form", "rca", {"incident": ref(incident_id)},
                       action_id="open-rca")]
    page = link("Postmortem page", page_url)
    if page:
        page["id"] = "postmortem-page"
        actions.append(page)
    return card(body, actions, mentions=[entity] if entity else None)


@dataclass(frozen=True)
class DueItem:
    incident_id: int
    title: str
    due_date: date
    jira_key: str | None
    jira_url: str | None = None


def action_reminder_card(owner: Who, items: Sequence[DueItem], today: date) -> dict[str, Any]:
    who, entity = owner.mention()
    body: list[dict] = [
        {"type": "Container", "style": "warning", "bleed": True, "items": [
            block(f"⏰ **Action items overdue** ({len(items)})", weight="Bolder")]},
        block(f"{who}, these follow-ups are past their due date and not done in JIRA:")]
    for n, item in enumerate(items[:10]):
        late = (today - item.due_date).days
        key = f" · {item.jira_key}" if item.jira_key else ""
        body.append(plain(f"• {ref(item.incident_id)}{key} · due {item.due_date:%Y-%m-%d} "
                          f"({late} day{'s' if late != 1 else ''} late) — {item.title}",
                          limit=300))
    if len(items) > 10:
        body.append(block(f"…and {len(items) - 10} more.", isSubtle=True))
    links = [a for a in (link(i.jira_key or "JIRA", i.jira_url) for i in items[:6]) if a]
    for n, a in enumerate(links):
        a["id"] = f"jira-{n}"
    return card(body, links or None, mentions=[entity] if entity else None)


def stale_nudge_card(incident_id: int, title: str, version: int, silent_seconds: float,
                     commander: Who | None) -> dict[str, Any]:
    who, entity = commander.mention() if commander else ("Whoever is on it", None)
    body = [block(f"⏳ **{ref(incident_id)} has had no update for "
                  f"{duration(silent_seconds)}**", weight="Bolder"),
            plain(title, limit=200, subtle=True),
            block(f"{who}: how is it going? Add a note (`incident note {ref(incident_id)} …`) "
                  "so everyone knows, or resolve it if it is over.")]
    data = {"incident": ref(incident_id), "version": version}
    return card(body, [execute("Resolve", "resolve", data, action_id="resolve")],
                mentions=[entity] if entity else None)
