"""Incident queries. Every change bumps `version` (card actions and card refreshes
key on it) and `updated_at`."""
from __future__ import annotations

import functools
from datetime import datetime
from typing import Any, Iterable, Sequence

from sqlalchemy import Engine, and_, bindparam, event, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from incidents.model import Incident
from storage import batch_scope
from storage.bulk import BulkInsert
from storage.schema import incidents as t

# Built once with bound parameters: correlation reads incidents by id several times per
# decision, and building a statement costs SQLAlchemy more than running it.
_GET = select(t).where(t.c.id == bindparam("id"))
_GET_LOCKED = _GET.with_for_update()
_PARENTS_AMONG = select(t.c.parent_id).where(
    t.c.parent_id.in_(bindparam("ids", expanding=True))).distinct()
_GET_MANY_LOCKED = (select(t).where(t.c.id.in_(bindparam("ids", expanding=True)))
                    .order_by(t.c.id).with_for_update())
_CHILDREN = (select(t).where(t.c.parent_id == bindparam("parent"))
             .order_by(t.c.triggered_at, t.c.id))

# A webhook batch's new incidents: rendered once, run on the driver (storage/bulk.py).
_INSERT_NEW = BulkInsert(t, conflict=("source", "external_id"),
                         returning=("source", "external_id", "id"))


async def get(conn: AsyncConnection, incident_id: int, *, lock: bool = False) -> Incident | None:
    scope = batch_scope.current(conn)
    if scope is not None and incident_id in scope.incidents:
        return scope.incidents[incident_id]   # prefetched (and locked) for this batch
    row = (await conn.execute(_GET_LOCKED if lock else _GET, {"id": incident_id})
           ).mappings().first()
    return Incident.from_row(row) if row else None


async def prefetch(conn: AsyncConnection, ids: Iterable[int]) -> None:
    """In a worker batch's scope: read (and on PostgreSQL lock) these incidents in one
    statement, for the batch's jobs to `get` without a statement each. A write of one drops
    its copy (forget_incident), so a later `get` reads what is stored."""
    scope = batch_scope.current(conn)
    ids = [i for i in set(ids) if i is not None and i not in scope.incidents] if scope else []
    if ids:
        rows = (await conn.execute(_GET_MANY_LOCKED, {"ids": ids})).mappings()
        scope.incidents.update((r["id"], Incident.from_row(r)) for r in rows)
        parents = (await conn.execute(_PARENTS_AMONG, {"ids": ids})).scalars()
        scope.childless.update(set(ids) - set(parents))


async def get_many(conn: AsyncConnection, ids: Iterable[int]) -> dict[int, Incident]:
    ids = list(set(ids))
    if not ids:
        return {}
    rows = (await conn.execute(select(t).where(t.c.id.in_(ids)))).mappings()
    return {r["id"]: Incident.from_row(r) for r in rows}


async def get_by_external(conn: AsyncConnection, source: str, external_id: str, *,
                          lock: bool = False) -> Incident | None:
    q = select(t).where(t.c.source == source, t.c.external_id == external_id)
    row = (await conn.execute(q.with_for_update() if lock else q)).mappings().first()
    return Incident.from_row(row) if row else None


async def by_external_many(conn: AsyncConnection, keys: Iterable[tuple[str, str]], *,
                           lock: bool = False) -> dict[tuple[str, str], Incident]:
    keys = list(dict.fromkeys(keys))
    if not keys:
        return {}
    # Per source, `external_id IN (...)`: SQLite (3.40) answers a row-value IN over
    # (source, external_id) with a scan of the whole table, on every webhook batch.
    by_source: dict[str, list[str]] = {}
    for source, external_id in keys:
        by_source.setdefault(source, []).append(external_id)
    params = {}
    for n, (source, ids) in enumerate(by_source.items()):
        params[f"source{n}"], params[f"ids{n}"] = source, ids
    rows = (await conn.execute(_by_external(len(by_source), lock), params)).mappings()
    return {(r["source"], r["external_id"]): Incident.from_row(r) for r in rows}


@functools.cache
def _by_external(sources: int, lock: bool):
    """Built once per number of sources (every webhook batch asks; see _GET)."""
    q = select(t).where(or_(*(and_(t.c.source == bindparam(f"source{n}"),
                                   t.c.external_id.in_(bindparam(f"ids{n}", expanding=True)))
                              for n in range(sources))))
    return q.with_for_update() if lock else q


async def insert_many(db, conn: AsyncConnection, rows: list[dict[str, Any]],
                      now: datetime) -> dict[tuple[str, str], int]:
    """Insert new incidents in one statement; returns (source, external_id) -> id for those
    inserted. One another replica inserted first is left out (the caller applies to it)."""
    if not rows:
        return {}
    defaults = {"assignees": [], "details": {}, "version": 1, "created_at": now, "updated_at": now,
                "correlated": False, "no_auto_link": False, "private": False}
    result = await _INSERT_NEW.run(conn, [{**defaults, **r} for r in rows])
    return {(source, external_id): new_id for source, external_id, new_id in result}


async def insert(conn: AsyncConnection, values: dict[str, Any], now: datetime) -> Incident:
    values = {"assignees": [], "details": {}, "version": 1, "created_at": now, "updated_at": now,
              "correlated": False, "no_auto_link": False, "private": False, **values}
    new_id = (await conn.execute(t.insert().values(**values).returning(t.c.id))).scalar_one()
    return Incident.from_row({**values, "id": new_id})


async def update_fields(conn: AsyncConnection, incident: Incident, changes: dict[str, Any],
                        now: datetime) -> Incident:
    """Write `changes` and bump the version. The caller holds the row lock (get(lock=True))."""
    if not changes:
        return incident
    values = {**changes, "version": incident.version + 1, "updated_at": now}
    batch_scope.forget_incident(conn, incident.id, new_parent=changes.get("parent_id"))
    scope = batch_scope.current(conn)
    if scope is not None:   # written before the batch's next statement (_write_first)
        scope.incident_writes.setdefault(incident.id, {}).update(values)
    else:
        await conn.execute(_update(tuple(sorted(values))),
                           {"row_id": incident.id, **{f"v_{k}": v for k, v in values.items()}})
    return Incident.from_row({**incident.__dict__, **values})


@event.listens_for(Engine, "before_execute")
def _write_first(conn, *_args) -> None:
    """Before any statement on a connection whose worker batch holds unwritten incident
    updates: write them, one executemany per set of columns. Any statement, not only those
    reading incidents: then no read, join or trigger can see an incident as it was."""
    scope = conn.info.get(batch_scope.KEY)
    if scope is None or not scope.incident_writes:
        return
    writes, scope.incident_writes = scope.incident_writes, {}
    by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for incident_id, values in writes.items():
        by_columns.setdefault(tuple(sorted(values)), []).append(
            {"row_id": incident_id, **{f"v_{k}": v for k, v in values.items()}})
    for columns, rows in by_columns.items():
        conn.execute(_update(columns), rows)


async def write_pending(conn: AsyncConnection) -> None:
    """At a worker batch's end: the incident updates it still holds."""
    scope = batch_scope.current(conn)
    if scope is not None and scope.incident_writes:
        await conn.run_sync(_write_first)


@functools.cache
def _update(columns: tuple[str, ...]):
    """Built once per set of columns (correlation links hundreds of incidents a second with the
    same few): building an UPDATE with its values costs SQLAlchemy more than running it."""
    return update(t).where(t.c.id == bindparam("row_id")).values(
        {name: bindparam(f"v_{name}", type_=t.c[name].type) for name in columns})


async def list_recent(conn: AsyncConnection, *, statuses: Sequence[str] | None, team: str | None,
                      limit: int, roots_only: bool = False, visible=None) -> list[Incident]:
    """`visible`: a clause from storage.members.visible_to (None: every incident)."""
    q = _listed(select(t), statuses, team, roots_only, visible)
    q = q.order_by(t.c.triggered_at.desc(), t.c.id.desc()).limit(limit)
    return [Incident.from_row(r) for r in (await conn.execute(q)).mappings()]


async def count(conn: AsyncConnection, *, statuses: Sequence[str] | None, team: str | None,
                roots_only: bool = False, visible=None) -> int:
    q = _listed(select(func.count()).select_from(t), statuses, team, roots_only, visible)
    return (await conn.execute(q)).scalar_one()


def _listed(q, statuses: Sequence[str] | None, team: str | None, roots_only: bool, visible):
    """The filters `incident list` shows and counts by."""
    if visible is not None:
        q = q.where(visible)
    if statuses:
        q = q.where(t.c.status.in_(statuses))
    if team:
        q = q.where(t.c.team == team)
    if roots_only:
        q = q.where(t.c.parent_id.is_(None))
    return q


async def children_counts(conn: AsyncConnection,
                          parent_ids: Sequence[int]) -> dict[int, dict[str, int]]:
    """{root id: {link kind: how many children}} (a root with none is left out)."""
    if not parent_ids:
        return {}
    q = (select(t.c.parent_id, t.c.link_kind, func.count())
         .where(t.c.parent_id.in_(list(parent_ids))).group_by(t.c.parent_id, t.c.link_kind))
    out: dict[int, dict[str, int]] = {}
    for parent, kind, n in (await conn.execute(q)).all():
        out.setdefault(parent, {})[kind or "duplicate"] = n
    return out


async def children(conn: AsyncConnection, parent_id: int) -> list[Incident]:
    scope = batch_scope.current(conn)
    if scope is not None and parent_id in scope.childless:
        return []   # known in this batch to have none (storage.incidents.prefetch)
    return [Incident.from_row(r)
            for r in (await conn.execute(_CHILDREN, {"parent": parent_id})).mappings()]
