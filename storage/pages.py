"""Pages sent to PagerDuty from Teams (`incident page`): one row each, made with the command, the
PagerDuty incident recorded once created, its acknowledgement as PagerDuty's webhooks tell."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Iterable

from sqlalchemy import bindparam, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.schema import pagerduty_pages as t


async def insert(conn: AsyncConnection, values: dict[str, Any], now: datetime) -> int:
    values = {"status": "requested", "assignees": [], "requested_at": now, "updated_at": now,
              **values}
    return (await conn.execute(t.insert().values(**values).returning(t.c.id))).scalar_one()


async def get(conn: AsyncConnection, page_id: int, *, lock: bool = False
              ) -> dict[str, Any] | None:
    q = select(t).where(t.c.id == page_id)
    row = (await conn.execute(q.with_for_update() if lock else q)).mappings().first()
    return dict(row) if row else None


async def of_incident(conn: AsyncConnection, incident_id: int, limit: int = 5
                      ) -> list[dict[str, Any]]:
    """The incident's newest pages, oldest first."""
    q = (select(t).where(t.c.incident_id == incident_id).order_by(t.c.id.desc()).limit(limit))
    rows = [dict(r) for r in (await conn.execute(q)).mappings()]
    rows.reverse()
    return rows


async def matching(conn: AsyncConnection, pd_incident_ids: Iterable[str],
                   incident_keys: Iterable[str], *, lock: bool = False
                   ) -> list[dict[str, Any]]:
    """Pages whose PagerDuty incident is one of these, or whose incident_key is one of these
    (PagerDuty may tell of a page before the job that made it has recorded its id)."""
    ids, keys = list(set(pd_incident_ids)), list(set(incident_keys))
    if not ids and not keys:
        return []
    rows = (await conn.execute(_MATCHING_LOCKED if lock else _MATCHING,
                               {"ids": ids, "keys": keys})).mappings()
    return [dict(r) for r in rows]


# Built once (every webhook batch with PagerDuty events asks; see storage/incidents.py's _GET).
_MATCHING = select(t).where(or_(t.c.pd_incident_id.in_(bindparam("ids", expanding=True)),
                                t.c.incident_key.in_(bindparam("keys", expanding=True))))
_MATCHING_LOCKED = _MATCHING.with_for_update()


async def set_fields(conn: AsyncConnection, page_id: int, now: datetime, **values: Any) -> None:
    await conn.execute(update(t).where(t.c.id == page_id).values(updated_at=now, **values))
