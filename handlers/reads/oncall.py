"""Who is on call now: the catalog's rotations, or PagerDuty's on-call as last synced
(handlers/effects/oncall_sync.py) when PagerDuty is configured. Never an outside call."""
from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from handlers.context import Context
from incidents.catalog import OnCallNow, on_call_now
from storage import oncall as store


async def who_is_on_call(ctx: Context, conn: AsyncConnection) -> OnCallNow:
    synced = await store.current(conn) if ctx.configured.pagerduty else {}
    return on_call_now(ctx.catalog, ctx.now(), synced)
