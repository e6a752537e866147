"""The summary a maintenance window leaves when it ends: what its service or team alerted on
while nobody was disturbed, with a Show button for each incident still open (those are also
announced normally, as they were not before)."""
from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from cards.common import block, card, execute, facts, plain, when
from incidents.maintenance import SERVICE, Tally, window_ref
from incidents.model import ref

SHOWN = 3   # Show buttons at most: more get cut off on a narrow Teams client
LISTED = 10


def maintenance_summary_card(window: dict[str, Any], tally: Tally, *, target_label: str,
                             ended_by: str | None) -> dict[str, Any]:
    what = "service" if window["target_kind"] == SERVICE else "team"
    body: list[dict] = [{"type": "Container", "style": "accent", "bleed": True, "items": [
        block(f"🔧 **Maintenance {window_ref(window['id'])} is over** · {what} "
              f"{target_label}", weight="Bolder"),
        block(tally.text, isSubtle=True)]}]
    if window.get("reason"):
        body.append(plain(window["reason"], limit=300))
    body.append(facts([("Started", when(window["starts_at"])),
                       ("Ended", when(window["ends_at"]) + (f" by {ended_by}" if ended_by
                                                            else "")),
                       ("Stored", str(tally.stored)), ("Resolved", str(tally.resolved)),
                       ("Still open", str(len(tally.still_open)))]))
    if tally.still_open:
        body.append(block("Still firing, so announced now:", weight="Bolder"))
        body += [plain(f"{ref(i)} · {title}", limit=120)
                 for i, title in tally.still_open[:LISTED]]
        if len(tally.still_open) > LISTED:
            body.append(block(f"… and {len(tally.still_open) - LISTED} more: `incident list`",
                              isSubtle=True))
    actions = [execute(f"Show {ref(i)}", "show", {"incident": ref(i)})
               for i, _ in tally.still_open[:SHOWN]]
    return card(body, actions or None)


def window_line(window: dict[str, Any], held: int, target_label: str,
                now: datetime, tz: ZoneInfo) -> str:
    """One window in `incident maintenance list`, its end in the catalog's time zone."""
    left = max(0, int((window["ends_at"] - now).total_seconds() // 60))
    ends = window["ends_at"].astimezone(tz)
    reason = f" · {window['reason']}" if window.get("reason") else ""
    origin = " · recurring (catalog)" if window.get("recurring_key") else \
        f" · by {window['created_by']}"
    return (f"**{window_ref(window['id'])}** {window['target_kind']} {target_label} · ends "
            f"{ends:%Y-%m-%d %H:%M} {tz.key} ({left} min left) · {held} held back"
            f"{origin}{reason}")
