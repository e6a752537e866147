"""JIRA statuses and due dates read back, periodically, for the action items Firebell filed:
the card, the reminders and the reports see what JIRA says."""
from __future__ import annotations

from handlers.context import Context
from handlers.effects.incident_cards import refresh_cards
from handlers.effects.registry import Clients
from storage import postmortems as pm_store


async def sync_statuses(ctx: Context, clients: Clients) -> int:
    """Periodic: read the tasks' statuses and due dates back from JIRA. Returns items changed."""
    if clients.jira is None:
        return 0
    async with ctx.db.read() as conn:
        items = await pm_store.open_action_items_with_jira(conn)
    if not items:
        return 0
    found = await clients.jira.statuses([i["jira_key"] for i in items])
    changed = 0
    async with ctx.db.write() as conn:
        for item in items:
            status = found.get(item["jira_key"].upper())
            if status is None:
                continue
            values = {"jira_status": status.status_name, "jira_done": status.done}
            if status.due_date:
                values["due_date"] = status.due_date
            if any(item.get(k) != v for k, v in values.items()):
                await pm_store.update_action_item(conn, item["id"], updated_at=ctx.now(), **values)
                await refresh_cards(ctx, conn, item["incident_id"])
                changed += 1
    return changed
