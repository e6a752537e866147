"""What routing kept off Teams: incidents only recorded (a routing rule, a low-urgency PagerDuty
incident, a channel's level filter), for the weekly digest that lists them."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.schema import incidents as t


async def recorded_only(conn: AsyncConnection, start: datetime, end: datetime,
                        limit: int = 500) -> list[dict[str, Any]]:
    """Recorded-only incidents triggered in [start, end), oldest first (never a private one:
    the digest names them)."""
    q = (select(t.c.id, t.c.title, t.c.service, t.c.team, t.c.level, t.c.status)
         .where(t.c.routed == "recorded", t.c.correlated.is_(False), t.c.private.is_(False),
                t.c.triggered_at >= start, t.c.triggered_at < end)
         .order_by(t.c.triggered_at, t.c.id).limit(limit))
    return [dict(r) for r in (await conn.execute(q)).mappings()]
