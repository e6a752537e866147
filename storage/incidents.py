"""Incident and timeline queries. Every change bumps `version` (card actions and card refreshes
key on it) and `updated_at`."""
from __future__ import annotations

import functools
from datetime import datetime, timezone
from typing import Any, Iterable, Sequence

from sqlalchemy import (and_, bindparam, func, literal_column, or_, select, true, union_all,
                        update)
from sqlalchemy.ext.asyncio import AsyncConnection

from incidents.model import Incident
from storage.schema import incidents as t
from storage.schema import timeline as tl


async def get(conn: AsyncConnection, incident_id: int, *, lock: bool = False) -> Incident | None:
    q = select(t).where(t.c.id == incident_id)
    row = (await conn.execute(q.with_for_update() if lock else q)).mappings().first()
    return Incident.from_row(row) if row else None


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
    q = select(t).where(or_(*(and_(t.c.source == source, t.c.external_id.in_(ids))
                              for source, ids in by_source.items())))
    rows = (await conn.execute(q.with_for_update() if lock else q)).mappings()
    return {(r["source"], r["external_id"]): Incident.from_row(r) for r in rows}


async def insert_many(db, conn: AsyncConnection, rows: list[dict[str, Any]],
                      now: datetime) -> dict[tuple[str, str], int]:
    """Insert new incidents in one statement; returns (source, external_id) -> id for those
    inserted. One another replica inserted first is left out (the caller applies to it)."""
    if not rows:
        return {}
    defaults = {"assignees": [], "details": {}, "version": 1, "created_at": now, "updated_at": now,
                "correlated": False, "no_auto_link": False}
    stmt = (db.insert(t).on_conflict_do_nothing(index_elements=[t.c.source, t.c.external_id])
            .returning(t.c.source, t.c.external_id, t.c.id))
    result = await conn.execute(stmt, [{**defaults, **r} for r in rows])
    return {(r.source, r.external_id): r.id for r in result}


async def extend_duplicate_window(conn: AsyncConnection, incident_id: int,
                                  until: datetime) -> None:
    """Keep `incident`'s duplicate window open until at least `until`, in one statement (no
    lock-and-read first: a storm links hundreds of duplicates to one parent). No version bump:
    the window is correlation's bookkeeping, shown on no card, so open cards stay current."""
    await conn.execute(update(t).where(
        t.c.id == incident_id,
        or_(t.c.duplicate_window_until.is_(None), t.c.duplicate_window_until < until))
        .values(duplicate_window_until=until))


async def add_timeline_many(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    if rows:
        await conn.execute(tl.insert(), rows)


async def insert(conn: AsyncConnection, values: dict[str, Any], now: datetime) -> Incident:
    values = {"assignees": [], "details": {}, "version": 1, "created_at": now, "updated_at": now,
              "correlated": False, "no_auto_link": False, **values}
    new_id = (await conn.execute(t.insert().values(**values).returning(t.c.id))).scalar_one()
    return Incident.from_row({**values, "id": new_id})


async def update_fields(conn: AsyncConnection, incident: Incident, changes: dict[str, Any],
                        now: datetime) -> Incident:
    """Write `changes` and bump the version. The caller holds the row lock (get(lock=True))."""
    if not changes:
        return incident
    values = {**changes, "version": incident.version + 1, "updated_at": now}
    await conn.execute(update(t).where(t.c.id == incident.id).values(**values))
    return Incident.from_row({**incident.__dict__, **values})


async def add_timeline(conn: AsyncConnection, incident_id: int, *, at: datetime, kind: str,
                       text: str, via: str, actor: str | None = None,
                       data: dict[str, Any] | None = None) -> None:
    await conn.execute(tl.insert().values(incident_id=incident_id, at=at, kind=kind, actor=actor,
                                          via=via, text=text, data=data))


async def timeline(conn: AsyncConnection, incident_id: int, *, limit: int = 200) -> list[dict]:
    q = (select(tl.c.at, tl.c.kind, tl.c.actor, tl.c.via, tl.c.text, tl.c.data)
         .where(tl.c.incident_id == incident_id).order_by(tl.c.id.desc()).limit(limit))
    rows = [dict(r) for r in (await conn.execute(q)).mappings()]
    rows.reverse()
    return rows


async def list_recent(conn: AsyncConnection, *, statuses: Sequence[str] | None, team: str | None,
                      limit: int, roots_only: bool = False) -> list[Incident]:
    q = select(t)
    if statuses:
        q = q.where(t.c.status.in_(statuses))
    if team:
        q = q.where(t.c.team == team)
    if roots_only:
        q = q.where(t.c.parent_id.is_(None))
    q = q.order_by(t.c.triggered_at.desc(), t.c.id.desc()).limit(limit)
    return [Incident.from_row(r) for r in (await conn.execute(q)).mappings()]


async def count(conn: AsyncConnection, *, statuses: Sequence[str] | None, team: str | None) -> int:
    q = select(func.count()).select_from(t)
    if statuses:
        q = q.where(t.c.status.in_(statuses))
    if team:
        q = q.where(t.c.team == team)
    return (await conn.execute(q)).scalar_one()


async def children(conn: AsyncConnection, parent_id: int) -> list[Incident]:
    q = select(t).where(t.c.parent_id == parent_id).order_by(t.c.triggered_at, t.c.id)
    return [Incident.from_row(r) for r in (await conn.execute(q)).mappings()]


async def last_resolved_with_fingerprint(conn: AsyncConnection, fingerprint: str, *,
                                         exclude: int) -> Incident | None:
    q = (select(t).where(t.c.fingerprint == fingerprint, t.c.id != exclude,
                         t.c.resolved_at.is_not(None), t.c.status != "open")
         .order_by(t.c.resolved_at.desc()).limit(1))
    row = (await conn.execute(q)).mappings().first()
    return Incident.from_row(row) if row else None


async def adoptable_downstream(conn: AsyncConnection, services: Sequence[str], *,
                               since: datetime, until: datetime, exclude: int, root: int,
                               at: datetime) -> list[Incident]:
    """Incidents on any of `services` that started in [since, until], are open at `at`, and a
    late root could still adopt: already decided (an undecided one makes its own decision,
    which finds the root) and neither under `root` already nor a duplicate. The filter runs in
    the database: in a storm the root's hundreds of children would otherwise be read back on
    every decision."""
    if not services:
        return []
    params = {"services": list(services), "since": since, "until": until, "ex": exclude,
              "root": root, "at": at}
    return await _open_at(conn, _ADOPTABLE, params, limit=200)


# `status = 'open'` written as a literal, not a bound parameter: only then can SQLite (and
# PostgreSQL's generic plans) use the partial indexes "WHERE status = 'open'".
IS_OPEN = t.c.status == literal_column("'open'")


def _open_at_statements(where, limit: int):
    """Two index-friendly halves: the incidents open now (a partial index), and the few
    resolved since `at` (the resolved_at index). Built once: correlation runs them for every
    new incident, and building SQLAlchemy statements costs more than running these."""
    order = (t.c.triggered_at, t.c.id)
    return (select(t).where(where, IS_OPEN).order_by(*order).limit(limit),
            select(t).where(where, ~IS_OPEN, t.c.resolved_at > bindparam("at"))
            .order_by(*order).limit(limit))


_TWINS = _open_at_statements(and_(
    t.c.fingerprint == bindparam("fp"), t.c.id != bindparam("ex"),
    or_(t.c.triggered_at < bindparam("at"),
        and_(t.c.triggered_at == bindparam("at"), t.c.id < bindparam("ex"))),
    t.c.duplicate_window_until >= bindparam("at")), 5)


def _first_per_service(count: int):
    """The first incident (by start, then id) of each of `count` services (bound as svc0,
    svc1, ...) that started in [since, until] and is open at `at`: one index seek per service
    and half (open now: the partial index; resolved since `at`: the service/resolved_at index),
    never a scan. In an alert storm the upstream services hold thousands of open symptoms, and
    ranking them all (a window function) on every decision made correlation quadratic. The
    cascade rule needs no more than this: the most upstream service wins, and within a
    service the earliest incident."""
    upstream = union_all(*(select(bindparam(f"svc{i}", type_=t.c.service.type).label("service"))
                           for i in range(count))).subquery("upstream")
    j = t.alias("first_on_service")
    window = and_(j.c.service == upstream.c.service, j.c.triggered_at >= bindparam("since"),
                  j.c.triggered_at <= bindparam("until"), j.c.id != bindparam("ex"))
    halves = (j.c.status == literal_column("'open'"),
              and_(j.c.status != literal_column("'open'"), j.c.resolved_at > bindparam("at")))
    firsts = union_all(*(select(select(j.c.id).where(window, half)
                                .order_by(j.c.triggered_at, j.c.id).limit(1)
                                .scalar_subquery()).select_from(upstream) for half in halves))
    return select(t, literal_column("1").label("part")).where(t.c.id.in_(firsts))


_ADOPTABLE = _open_at_statements(and_(
    t.c.service.in_(bindparam("services", expanding=True)),
    t.c.triggered_at >= bindparam("since"), t.c.triggered_at <= bindparam("until"),
    t.c.id != bindparam("ex"), t.c.id != bindparam("root"), t.c.correlated == true(),
    or_(t.c.parent_id.is_(None), and_(t.c.link_kind == literal_column("'cascade'"),
                                      t.c.parent_id != bindparam("root")))), 200)


async def _open_at(conn: AsyncConnection, statements, params: dict[str, Any], *,
                   limit: int) -> list[Incident]:
    found: dict[int, Incident] = {}
    for q in statements:
        found.update((r["id"], Incident.from_row(r))
                     for r in (await conn.execute(q, params)).mappings())
    return sorted(found.values(), key=lambda i: (i.triggered_at, i.id))[:limit]


def _tagged(statements, tag: int):
    return [q.add_columns(literal_column(str(tag)).label("part")).subquery().select()
            for q in statements]


# SQLite allows 500 terms in one compound SELECT; a service with more upstream services than
# this (rare) takes a statement per chunk of them.
SERVICES_PER_STATEMENT = 100
# Statements are built for these numbers of services only (a chunk is padded by repeating its
# last service, whose rows come back once): each new statement costs a compile of several ms,
# and one per distinct upstream-set size put compiles into the decisions' p99.
_SIZES = (1, 2, 4, 8, 16, 32, 64, SERVICES_PER_STATEMENT)


@functools.cache
def _candidates(services: int, *, twins: bool):
    """Both look-ups of a correlation decision in one round trip; built once per number of
    upstream services (building SQLAlchemy statements costs more than running these)."""
    parts = [*(_tagged(_TWINS, 0) if twins else ()),
             *((_first_per_service(services),) if services else ())]
    return union_all(*parts)


async def prepare_correlation_candidates(conn: AsyncConnection) -> None:
    """Run each candidate statement once, so SQLAlchemy compiles it now (several ms each)
    rather than in the first decisions after a start, which are often a storm's."""
    epoch = datetime(2000, 1, 1, tzinfo=timezone.utc)
    for size in (0, *_SIZES):
        for twins in ((True,) if size == 0 else (True, False)):
            params = {"fp": "", "since": epoch, "until": epoch, "ex": 0, "at": epoch,
                      **{f"svc{i}": "" for i in range(size)}}
            await conn.execute(_candidates(size, twins=twins), params)


async def correlation_candidates(conn: AsyncConnection, *, fingerprint: str,
                                 services: Sequence[str], since: datetime, until: datetime,
                                 exclude: int, at: datetime) -> tuple[Incident | None,
                                                                      list[Incident]]:
    """The twin (same fingerprint, open at `at`, window open; the first report of the problem)
    and the first incident open at `at` on each upstream service within [since, until], in one
    statement: the decision runs for every new incident, and each round trip costs more than
    the query. "Open at `at`", not "open now": a decision made late (a backlog) sees the world
    as it was when the new incident started."""
    services, step = list(services), SERVICES_PER_STATEMENT
    chunks = [services[i:i + step] for i in range(0, len(services), step)] or [[]]
    parts: tuple[dict[int, Incident], dict[int, Incident]] = ({}, {})
    for n, chunk in enumerate(chunks):
        size = next(size for size in _SIZES if size >= len(chunk)) if chunk else 0
        padded = chunk + chunk[-1:] * (size - len(chunk))
        params = {"fp": fingerprint, "since": since, "until": until, "ex": exclude, "at": at,
                  **{f"svc{i}": name for i, name in enumerate(padded)}}
        for row in (await conn.execute(_candidates(size, twins=n == 0), params)).mappings():
            parts[row["part"]][row["id"]] = Incident.from_row(row)
    twins, upstream = (sorted(p.values(), key=lambda i: (i.triggered_at, i.id)) for p in parts)
    twin = next((i for i in twins if i.parent_id is None), twins[0] if twins else None)
    return twin, upstream
