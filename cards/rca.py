"""The RCA form (the postmortem filled from Teams) and the postmortem summary card."""
from __future__ import annotations

from typing import Any, Mapping, Sequence

from cards.common import MAX_CARD_BYTES, block, card, execute, labelled, link, plain, size, truncate
from incidents.model import Incident
from incidents.postmortem import ACTION_TITLE_LIMIT, FIELD_LIMIT, RCA_SECTIONS, REQUIRED

NEW_ITEM_ROWS = 2
CHOICES_PER_FORM = 80
PEOPLE_DATASET = "people"  # the typeahead's dataset: bot/ answers `application/search` for it
PREFILL_LIMIT = 1500  # per field: the whole form must stay under Teams' 28 KB (rca_form shortens it if not)


def rca_form(incident: Incident, postmortem: Mapping[str, Any], items: Sequence[Mapping[str, Any]],
             *, errors: Mapping[str, str] | None = None, page_url: str | None = None,
             impact_minutes: float | None = None, prefill_limit: int = PREFILL_LIMIT,
             people: Sequence[tuple[str, str]] = (), typeahead: bool = False,
             timeline_through: int | None = None) -> dict[str, Any]:
    """`people`: (e-mail, name) an owner is picked from. `typeahead`: the client is Teams,
    which asks the bot for more people as the reader types (`choices.data`, an Adaptive Cards
    1.6 property that Teams honours in 1.5 cards and other hosts warn about)."""
    errors = errors or {}
    body: list[dict] = [
        block(f"📝 **RCA for {incident.ref}**", size="Medium"),
        plain(incident.title, limit=200, subtle=True),
        block("Partial saves are fine; fields marked * are needed to close the incident.",
              isSubtle=True),
    ]
    if errors:
        body.append(plain("Please fix: " + "; ".join(errors.values()), color="Attention"))  # quotes input
    for field, label in RCA_SECTIONS:
        body.append({"type": "Input.Text", "id": field, "isMultiline": True,
                     "label": label + (" *" if field in REQUIRED else ""),
                     "maxLength": FIELD_LIMIT,
                     "value": truncate(postmortem.get(field) or "", prefill_limit)})
    minutes = postmortem.get("impact_minutes")
    body.append({"type": "Input.Number", "id": "impact_minutes", "min": 0,
                 "label": "Minutes of customer impact (default: trigger → resolve"
                          + (f", {impact_minutes:.0f} min" if impact_minutes else "") + ")",
                 **({"value": minutes} if minutes is not None else {})})
    body.append(block("**Action items** (fill in an empty one to add it; tick Remove to drop "
                      "one)", spacing="Medium"))
    rows = list(items) + [{} for _ in range(NEW_ITEM_ROWS)]
    # Each row repeats the choices: fewer each when there are many rows (28 KB). An item's own
    # owner is always among its choices, and in Teams the typeahead finds everyone else.
    offered = list(people)[:max(4, CHOICES_PER_FORM // len(rows))]
    for i, item in enumerate(rows):
        body.append(_item_row(i, item, offered, typeahead))
    data = {"incident": incident.ref, "items": [it.get("id") for it in rows],
            "timeline_through": timeline_through}
    actions = [execute("Save RCA", "rca_save", data, style="positive")]
    page = link("Postmortem page", page_url)
    if page:
        actions.append(page)
    result = card(body, actions)
    # Long answers (up to 10 x 4000 characters, 3 bytes each in many languages) and 12+ action items
    # do not fit Teams' 28 KB: shorten the pre-filled text until the form does (2 KB kept for the
    # activity around it), as the incident card does with its timeline.
    if size(result) > MAX_CARD_BYTES - 2048 and prefill_limit > 100:
        return rca_form(incident, postmortem, items, errors=errors, page_url=page_url,
                        impact_minutes=impact_minutes, prefill_limit=prefill_limit * 2 // 3,
                        people=people, typeahead=typeahead, timeline_through=timeline_through)
    return result


def _item_row(i: int, item: Mapping[str, Any], people: Sequence[tuple[str, str]],
              typeahead: bool) -> dict:
    """One action item: the title on a line of its own (the whole width), then owner and due
    date side by side, each column sharing the width (no label column squeezes an input)."""
    due = item.get("due_date")
    owner = (item.get("owner") or "").lower()
    choices = [{"title": name, "value": email} for email, name in people]
    if owner and owner not in {email for email, _ in people}:
        choices.append({"title": owner, "value": owner})  # chosen before, kept selectable
    picker: dict[str, Any] = {"type": "Input.ChoiceSet", "id": f"item_{i}_owner",
                              "label": "Owner", "style": "compact", "choices": choices,
                              "placeholder": "Pick a person", **({"value": owner} if owner else {})}
    if typeahead:  # Teams: type to filter, and to ask the bot for anyone else
        picker.update({"style": "filtered",
                       "choices.data": {"type": "Data.Query", "dataset": PEOPLE_DATASET}})
    lower: list[dict] = [
        {"type": "Column", "width": "stretch", "items": [picker]},
        {"type": "Column", "width": "stretch", "items": [{
            "type": "Input.Date", "id": f"item_{i}_due", "label": "Due",
            "value": due.isoformat() if due else ""}]},
    ]
    if item.get("id") is not None:
        lower.append({"type": "Column", "width": "auto", "verticalContentAlignment": "Bottom",
                      "items": [{"type": "Input.Toggle", "id": f"item_{i}_remove",
                                 "title": "Remove", "value": "false"}]})
    return {"type": "Container", "separator": i > 0, "spacing": "Medium", "items": [
        {"type": "Input.Text", "id": f"item_{i}_title", "label": f"Action {i + 1}",
         "maxLength": ACTION_TITLE_LIMIT, "value": item.get("title") or "",
         "placeholder": "What will be done"},
        {"type": "ColumnSet", "spacing": "Small", "columns": lower},
    ]}


def postmortem_card(incident: Incident, postmortem: Mapping[str, Any],
                    items: Sequence[Mapping[str, Any]], *, missing: Sequence[str],
                    page_url: str | None, impact_usd: float | None = None,
                    jira_url: str | None = None) -> dict[str, Any]:
    """What the RCA says now: shown after a save, and on close."""
    status = "complete ✅" if not missing else "draft"
    body: list[dict] = [block(f"📘 **Postmortem {incident.ref}** · {status}", size="Medium"),
                        plain(incident.title, limit=200, subtle=True)]
    for field, label in RCA_SECTIONS:
        if field != "timeline" and (postmortem.get(field) or "").strip():
            body.append(labelled(label.split(" (")[0], postmortem[field], limit=600))
    if impact_usd:
        body.append(block(f"Estimated business impact: **≈ ${impact_usd:,.0f}**"))
    if items:
        body.append(block("**Action items**", spacing="Medium"))
        for it in items[:15]:
            state = it.get("jira_status") or ("done" if it.get("jira_done") else "open")
            due = it["due_date"].isoformat() if it.get("due_date") else "no due date"
            owner = it.get("owner") or "no owner"
            key = f" · {it['jira_key']}" if it.get("jira_key") else ""
            body.append(plain(f"• {it['title']} — {owner}, due {due}{key} ({state})", limit=300))
    if missing:
        body.append(plain("Still needed to close: " + "; ".join(missing), color="Warning"))
    actions = [a for a in (link("Postmortem page", page_url), link("JIRA task", jira_url)) if a]
    actions.insert(0, execute("Edit RCA", "rca", {"incident": incident.ref}))
    return card(body, actions)
