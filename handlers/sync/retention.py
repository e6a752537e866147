"""Housekeeping: forget inbound event ids once no sender would redeliver them."""
from __future__ import annotations

from handlers.context import Context
from storage import inbound


async def forget_old_events(ctx: Context) -> int:
    """Event ids are remembered `policy.remember_events_for` (30 days by default): long after
    PagerDuty's own retries end, so a replayed delivery is still recognised."""
    async with ctx.db.write() as conn:
        return await inbound.forget_older_than(conn, ctx.now(), ctx.policy.remember_events_for)
