"""The incident timeline: who did what, when and from where. Every change to an incident
writes an entry here (docs/ARCHITECTURE.md, "every change is on the timeline")."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncConnection

from incidents.model import Actor
from storage import batch_scope
from storage.bulk import BulkInsert
from storage.schema import timeline as tl

_INSERT_MANY = BulkInsert(tl)  # a webhook batch's entries: rendered once (storage/bulk.py)
_UNSAID = {"actor": None, "data": None}
# Built once, values bound per call: every change writes an entry, and building a statement
# with its values costs SQLAlchemy more than running it.
_NOTE = tl.insert()


async def note(conn: AsyncConnection, incident_id: int, *, kind: str, text: str, actor: Actor,
               at: datetime, data: dict[str, Any] | None = None) -> None:
    """One entry; Firebell's own steps carry no actor name (the `via` says it was Firebell).
    In a worker batch's scope it is written with the batch's other entries, in order, before
    the batch commits or anything reads a timeline (storage/batch_scope.py)."""
    row = {"incident_id": incident_id, "at": at, "kind": kind, "text": text, "via": actor.via,
           "data": data, "actor": None if actor.via == "firebell" else actor.label}
    scope = batch_scope.current(conn)
    if scope is not None:
        scope.timeline.append(row)
    else:
        await conn.execute(_NOTE, row)


async def flush_pending(conn: AsyncConnection) -> None:
    """Write the entries a batch's scope holds (one multi-row INSERT)."""
    scope = batch_scope.current(conn)
    if scope is not None and scope.timeline:
        rows, scope.timeline = scope.timeline, []
        await _INSERT_MANY.run(conn, rows)


async def note_many(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    """Entries already shaped as rows (a webhook batch opens many incidents at once)."""
    await _INSERT_MANY.run(conn, [{**_UNSAID, **row} for row in rows])


async def entries(conn: AsyncConnection, incident_id: int, *, limit: int = 200) -> list[dict]:
    """The newest `limit` entries, oldest first."""
    await flush_pending(conn)
    q = (select(tl.c.at, tl.c.kind, tl.c.actor, tl.c.via, tl.c.text, tl.c.data)
         .where(tl.c.incident_id == incident_id).order_by(tl.c.id.desc()).limit(limit))
    rows = [dict(r) for r in (await conn.execute(q)).mappings()]
    rows.reverse()
    return rows


def _actor_of(kinds: list[str], order) -> Any:
    return (select(tl.c.actor).where(tl.c.incident_id == bindparam("incident_id"),
                                     tl.c.kind.in_(kinds))
            .order_by(order).limit(1).scalar_subquery())


# Built once: every card render asks (building the statement would cost more than running it).
_OPENED_AND_RESOLVED = select(_actor_of(["declared", "triggered"], tl.c.id).label("opened"),
                              _actor_of(["resolved"], tl.c.id.desc()).label("resolved"))


async def opened_and_resolved_by(conn: AsyncConnection,
                                 incident_id: int) -> tuple[str | None, str | None]:
    """Who opened an incident (its first declared/triggered entry) and who last resolved it,
    in one round trip: both are on its timeline, whichever door they came through."""
    await flush_pending(conn)
    row = (await conn.execute(_OPENED_AND_RESOLVED, {"incident_id": incident_id})).first()
    return (row.opened, row.resolved) if row else (None, None)


async def entries_with_ids(conn: AsyncConnection, incident_id: int, *,
                           limit: int = 500) -> list[dict]:
    """As `entries`, with each entry's id (the RCA timeline's refill remembers the newest)."""
    await flush_pending(conn)
    q = (select(tl.c.id, tl.c.at, tl.c.kind, tl.c.actor, tl.c.via, tl.c.text)
         .where(tl.c.incident_id == incident_id).order_by(tl.c.id.desc()).limit(limit))
    rows = [dict(r) for r in (await conn.execute(q)).mappings()]
    rows.reverse()
    return rows
