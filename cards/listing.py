"""The incident list card: one row per root incident, newest first, its linked children folded
into it ("INC-2 catalog-db, +1 cascade, 2 duplicates"); each row says the owning team, whether
someone acknowledged it, its age, and has a Show button."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Mapping, Sequence

from cards.common import LEVEL_ICON, block, card, execute, plain
from incidents.metrics import duration
from incidents.model import Incident

MAX_ROWS = 25


@dataclass(frozen=True)
class ListRow:
    incident: Incident
    team_name: str | None = None
    children: Mapping[str, int] = field(default_factory=dict)  # link kind -> how many
    acknowledged_by: str | None = None                         # a name


def folded(incident: Incident, children: Mapping[str, int]) -> str:
    """"INC-2 catalog-db, +1 cascade, 2 duplicates"."""
    parts = [f"{incident.ref} {incident.service or 'unknown service'}"]
    if children.get("cascade"):
        parts.append(f"+{children['cascade']} cascade")
    if children.get("duplicate"):
        n = children["duplicate"]
        parts.append(f"{n} duplicate{'s' if n != 1 else ''}")
    return ", ".join(parts)


def incident_list_card(rows: Sequence[ListRow], *, heading: str, total: int,
                       now: datetime) -> dict[str, Any]:
    body: list[dict] = [block(f"**{heading}**", size="Medium")]
    if not rows:
        body.append(block("Nothing to show. 🎉", isSubtle=True))
    for n, row in enumerate(rows[:MAX_ROWS]):
        body.append(_row(n, row, now))
    if total > len(rows[:MAX_ROWS]):
        body.append(block(f"…and {total - len(rows[:MAX_ROWS])} more. Narrow it down with "
                          "`incident list open ‹team›`.", isSubtle=True))
    return card(body)


def _row(n: int, row: ListRow, now: datetime) -> dict:
    i = row.incident
    if i.status != "open":
        state = i.status
    elif i.acknowledged_at:
        state = f"acknowledged by {row.acknowledged_by}" if row.acknowledged_by \
            else "acknowledged"
    else:
        state = "⚠️ not acknowledged"
    age = duration((now - i.triggered_at).total_seconds())
    return {"type": "Container", "separator": True, "items": [{
        "type": "ColumnSet", "columns": [
            {"type": "Column", "width": "stretch", "items": [
                plain(f"{LEVEL_ICON.get(i.level, '⚪')} {folded(i, row.children)}",
                      weight="Bolder", limit=200),
                plain(f"{row.team_name or 'no team'} · {state} · {age} old · {i.level}",
                      limit=300, subtle=True),
                plain(i.title, limit=160)]},
            {"type": "Column", "width": "auto", "verticalContentAlignment": "Center",
             "items": [{"type": "ActionSet", "actions": [
                 execute("Show", "show", {"incident": i.ref}, action_id=f"show-{n}")]}]},
        ]}]}
