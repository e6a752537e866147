"""Who is on call, from PagerDuty when configured: synced periodically into the database (one
replica, under a lease), read by war rooms and `incident oncall` without an outside call
(handlers/reads/oncall.py)."""
from __future__ import annotations

from handlers.context import Context
from handlers.effects.registry import Clients
from storage import oncall as store


async def sync_from_pagerduty(ctx: Context, clients: Clients) -> int:
    if clients.pagerduty is None:
        return 0
    catalog = ctx.catalog
    policies = [t.escalation_policy_id for t in catalog.teams.values() if t.escalation_policy_id]
    schedules = dict(catalog.standby.pagerduty_schedules) if catalog.standby else {}
    if not policies and not schedules:
        return 0
    # Two questions: PagerDuty ANDs its filters, and we want the union.
    found = await clients.pagerduty.oncall(escalation_policy_ids=policies) if policies else []
    if schedules:
        found += await clients.pagerduty.oncall(schedule_ids=list(schedules.values()))
    rows = []
    for o in found:
        rows.append((f"policy:{o.policy_id}:{o.escalation_level}", o.email, o.name))
        if o.schedule_id:
            rows.append((f"schedule:{o.schedule_id}", o.email, o.name))
    async with ctx.db.write() as conn:
        return await store.replace_all(conn, rows, ctx.now())
