"""The incident timeline: who did what, when and from where. Every change to an incident
writes an entry here (docs/ARCHITECTURE.md, "every change is on the timeline")."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from incidents.model import Actor
from storage.bulk import BulkInsert
from storage.schema import timeline as tl

_INSERT_MANY = BulkInsert(tl)  # a webhook batch's entries: rendered once (storage/bulk.py)
_UNSAID = {"actor": None, "data": None}
# Built once, values bound per call: every change writes an entry, and building a statement
# with its values costs SQLAlchemy more than running it.
_NOTE = tl.insert()


async def note(conn: AsyncConnection, incident_id: int, *, kind: str, text: str, actor: Actor,
               at: datetime, data: dict[str, Any] | None = None) -> None:
    """One entry; Firebell's own steps carry no actor name (the `via` says it was Firebell)."""
    await conn.execute(_NOTE, {
        "incident_id": incident_id, "at": at, "kind": kind, "text": text, "via": actor.via,
        "data": data, "actor": None if actor.via == "firebell" else actor.label})


async def note_many(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    """Entries already shaped as rows (a webhook batch opens many incidents at once)."""
    await _INSERT_MANY.run(conn, [{**_UNSAID, **row} for row in rows])


async def entries(conn: AsyncConnection, incident_id: int, *, limit: int = 200) -> list[dict]:
    """The newest `limit` entries, oldest first."""
    q = (select(tl.c.at, tl.c.kind, tl.c.actor, tl.c.via, tl.c.text, tl.c.data)
         .where(tl.c.incident_id == incident_id).order_by(tl.c.id.desc()).limit(limit))
    rows = [dict(r) for r in (await conn.execute(q)).mappings()]
    rows.reverse()
    return rows


async def first_of(conn: AsyncConnection, incident_id: int, kinds: list[str], *,
                   latest: bool = False) -> dict[str, Any] | None:
    """The first (or, with `latest`, the last) entry of one of `kinds`: who declared or resolved
    an incident is on its timeline, whichever door it came through."""
    order = tl.c.id.desc() if latest else tl.c.id
    q = (select(tl.c.at, tl.c.kind, tl.c.actor, tl.c.via).where(
        tl.c.incident_id == incident_id, tl.c.kind.in_(kinds)).order_by(order).limit(1))
    row = (await conn.execute(q)).mappings().first()
    return dict(row) if row else None


async def entries_with_ids(conn: AsyncConnection, incident_id: int, *,
                           limit: int = 500) -> list[dict]:
    """As `entries`, with each entry's id (the RCA timeline's refill remembers the newest)."""
    q = (select(tl.c.id, tl.c.at, tl.c.kind, tl.c.actor, tl.c.via, tl.c.text)
         .where(tl.c.incident_id == incident_id).order_by(tl.c.id.desc()).limit(limit))
    rows = [dict(r) for r in (await conn.execute(q)).mappings()]
    rows.reverse()
    return rows
