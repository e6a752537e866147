"""Who is on call, from PagerDuty when configured: synced periodically into the database (one
replica, under a lease), read by war rooms and `incident oncall` without an outside call."""
from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from handlers.context import Context
from incidents.catalog import OnCallNow, on_call_now
from storage import oncall as store


async def sync_from_pagerduty(ctx: Context) -> int:
    if ctx.pagerduty is None:
        return 0
    catalog = ctx.catalog
    policies = [t.escalation_policy_id for t in catalog.teams.values() if t.escalation_policy_id]
    schedules = dict(catalog.standby.pagerduty_schedules) if catalog.standby else {}
    if not policies and not schedules:
        return 0
    # Two questions: PagerDuty ANDs its filters, and we want the union.
    found = await ctx.pagerduty.oncall(escalation_policy_ids=policies) if policies else []
    if schedules:
        found += await ctx.pagerduty.oncall(schedule_ids=list(schedules.values()))
    rows = []
    for o in found:
        rows.append((f"policy:{o.policy_id}:{o.escalation_level}", o.email, o.name))
        if o.schedule_id:
            rows.append((f"schedule:{o.schedule_id}", o.email, o.name))
    async with ctx.db.write() as conn:
        return await store.replace_all(conn, rows, ctx.now())


async def who_is_on_call(ctx: Context, conn: AsyncConnection) -> OnCallNow:
    synced = await store.current(conn) if ctx.pagerduty is not None else {}
    return on_call_now(ctx.catalog, ctx.now(), synced)
