"""Service dependencies learned outside the catalog."""
from __future__ import annotations

from datetime import datetime
from typing import Iterable

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.schema import service_dependencies as t


async def replace_edges(conn: AsyncConnection, source: str, edges: Iterable[tuple[str, str]],
                        now: datetime) -> int:
    """The complete set of edges `source` knows now (a dependency removed there goes here)."""
    rows = [{"caller": a, "callee": b, "source": source, "updated_at": now}
            for a, b in dict.fromkeys(edges) if a != b]
    await conn.execute(delete(t).where(t.c.source == source))
    if rows:
        await conn.execute(t.insert(), rows)
    return len(rows)


async def edges(conn: AsyncConnection) -> list[tuple[str, str]]:
    return [(r.caller, r.callee) for r in await conn.execute(select(t.c.caller, t.c.callee))]
