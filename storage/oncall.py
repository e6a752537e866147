"""The on-call picture last synced from PagerDuty."""
from __future__ import annotations

from datetime import datetime
from typing import Iterable

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.schema import oncall_now as t


async def replace_all(conn: AsyncConnection, rows: Iterable[tuple[str, str, str | None]],
                      now: datetime) -> int:
    unique: dict[str, tuple[str, str | None]] = {}
    for key, email, name in rows:
        unique.setdefault(key, (email.lower(), name))  # PagerDuty lists the first one first
    await conn.execute(delete(t))
    if unique:
        await conn.execute(t.insert(), [{"key": k, "email": e, "name": n, "fetched_at": now}
                                        for k, (e, n) in unique.items()])
    return len(unique)


async def current(conn: AsyncConnection) -> dict[str, str]:
    return {r.key: r.email for r in await conn.execute(select(t.c.key, t.c.email))}
