"""Who is on call and on standby now, per service, plus the week's DBA and DevOps standbys."""
from __future__ import annotations

from typing import Any, Sequence

from cards.common import block, card, facts


def oncall_card(heading: str, rows: Sequence[tuple[str, str, str]],
                standby: Sequence[tuple[str, str]], source: str) -> dict[str, Any]:
    """rows: (service, primary, standby) display names; standby: (role, name)."""
    body: list[dict] = [block(f"📟 **{heading}**", size="Medium")]
    for service, primary, backup in rows[:40]:
        body.append({"type": "Container", "separator": True, "items": [
            block(f"**{service}**"),
            facts([("Primary", primary), ("Standby", backup)])]})
    if len(rows) > 40:
        body.append(block(f"…and {len(rows) - 40} more services.", isSubtle=True))
    if standby:
        body.append(block("**Company standby this week**", spacing="Medium"))
        body.append(facts([(role.upper() if len(role) <= 4 else role.capitalize(), name)
                           for role, name in standby]))
    body.append(block(f"Source: {source}", isSubtle=True))
    return card(body)
