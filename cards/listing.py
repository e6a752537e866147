"""The incident list card: one line per incident, newest first."""
from __future__ import annotations

from typing import Any, Sequence

from cards.common import LEVEL_ICON, block, card, plain, when
from incidents.model import Incident, ref

MAX_ROWS = 25


def incident_list_card(incidents: Sequence[Incident], *, heading: str, total: int) -> dict[str, Any]:
    body: list[dict] = [block(f"**{heading}**", size="Medium")]
    if not incidents:
        body.append(block("Nothing to show. 🎉", isSubtle=True))
    for i in incidents[:MAX_ROWS]:
        body.append({"type": "Container", "separator": True, "items": [
            block(f"{LEVEL_ICON.get(i.level, '⚪')} **{i.ref}** · {i.status} · {i.level} · "
                  f"{when(i.triggered_at)}" + (f" · linked to {ref(i.parent_id)}"
                                               if i.parent_id else "")),
            plain(f"{i.service or 'unknown service'} — {i.title}", limit=160),
        ]})
    if total > len(incidents[:MAX_ROWS]):
        body.append(block(f"…and {total - len(incidents[:MAX_ROWS])} more. Narrow it down with "
                          "`incident list open ‹team›`.", isSubtle=True))
    return card(body)
