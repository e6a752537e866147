"""Correlation's queries: the candidates of a decision (the twin and the first open incident
on each upstream service), what a late root may adopt, the last resolved incident with a
fingerprint, and a duplicate window extended in place. The rules that decide from what these
return are pure, in incidents/correlation.py."""
from __future__ import annotations

import functools
from datetime import datetime, timezone
from typing import Any, Callable, Sequence

from sqlalchemy import (and_, any_, bindparam, exists, false, func, literal_column, or_, select,
                        true, union_all, update)
from sqlalchemy.ext.asyncio import AsyncConnection

from incidents.model import Incident
from storage import batch_scope
from storage.schema import incidents as t


async def extend_duplicate_window(conn: AsyncConnection, incident_id: int,
                                  until: datetime) -> None:
    """Keep `incident`'s duplicate window open until at least `until`, in one statement (no
    lock-and-read first: a storm links hundreds of duplicates to one parent). No version bump:
    the window is correlation's bookkeeping, shown on no card, so open cards stay current.
    In a worker batch's scope the latest `until` per incident is written once, before the
    next candidate look-up reads windows and at the batch's end (flush_windows): only that
    look-up reads them."""
    scope = batch_scope.current(conn)
    if scope is not None:
        due = scope.windows_due.get(incident_id)
        scope.windows_due[incident_id] = until if due is None else max(due, until)
        return
    await conn.execute(_EXTEND_WINDOW, {"incident_id": incident_id, "until": until})


async def flush_windows(conn: AsyncConnection) -> None:
    """Write the duplicate windows a batch's scope holds (one executemany)."""
    scope = batch_scope.current(conn)
    if scope is not None and scope.windows_due:
        due, scope.windows_due = scope.windows_due, {}
        await conn.execute(_EXTEND_WINDOW, [{"incident_id": incident_id, "until": until}
                                            for incident_id, until in sorted(due.items())])


_EXTEND_WINDOW = update(t).where(  # built once: a storm runs it for every duplicate
    t.c.id == bindparam("incident_id"),
    or_(t.c.duplicate_window_until.is_(None),
        t.c.duplicate_window_until < bindparam("until", type_=t.c.duplicate_window_until.type))
).values(duplicate_window_until=bindparam("until"))


async def last_resolved_with_fingerprint(conn: AsyncConnection, fingerprint: str, *,
                                         exclude: int) -> Incident | None:
    # Never a private incident: "recurrence of INC-n" would name it on a public timeline.
    q = (select(t).where(t.c.fingerprint == fingerprint, t.c.id != exclude,
                         t.c.resolved_at.is_not(None), t.c.status != "open",
                         t.c.private == false())
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


def _first_per_service(count: int, postgresql: bool):
    """The first incident (by start, then id) of each of `count` services (bound as svc0,
    svc1, ...) that started in [since, until] and is open at `at`: one index seek per service
    and half (open now: the partial index; resolved since `at`: the service/resolved_at index),
    never a scan. In an alert storm the upstream services hold thousands of open symptoms, and
    ranking them all (a window function) on every decision would make correlation quadratic. The
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
    # PostgreSQL: `id = ANY(ARRAY(...))` is an index look-up of the few ids found, whatever the
    # table's statistics say; as `id IN (...)` its planner may hash-join a whole-table scan
    # when a storm has grown the table faster than autovacuum analyses it (seen: 2,400 rows
    # scanned per decision, 1.5 ms of its 2.7).
    found = t.c.id == any_(func.array(firsts.scalar_subquery())) if postgresql \
        else t.c.id.in_(firsts)
    return select(t, literal_column("1").label("part")).where(found)


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
# last service, whose rows come back once): compiling a statement costs more than running it,
# so a statement per distinct upstream-set size would put compiles on the decisions' path.
_SIZES = (1, 2, 4, 8, 16, 32, 64, SERVICES_PER_STATEMENT)


@functools.cache
def _candidates(services: int, *, twins: bool, postgresql: bool):
    """Both look-ups of a correlation decision in one round trip; built once per number of
    upstream services (building SQLAlchemy statements costs more than running these). With
    `twins`, the upstream part runs only when there is no twin: a duplicate (most of a storm's
    decisions) needs no upstream candidates, and reading them cost half the statement."""
    upstream = _first_per_service(services, postgresql) if services else None
    if not twins:
        return upstream
    found = union_all(*_tagged(_TWINS, 0)).cte("twins")
    if upstream is None:
        return select(found)
    return union_all(select(found), upstream.where(~exists(select(found.c.id))))


def _is_pg(conn: AsyncConnection) -> bool:
    return conn.dialect.name == "postgresql"


async def prepare_correlation_candidates(conn: AsyncConnection) -> None:
    """Run each candidate statement once, so SQLAlchemy compiles it now (several ms each)
    rather than in the first decisions after a start, which are often a storm's."""
    epoch = datetime(2000, 1, 1, tzinfo=timezone.utc)
    for size in (0, *_SIZES):
        for twins in ((True,) if size == 0 else (True, False)):
            params = {"fp": "", "since": epoch, "until": epoch, "ex": 0, "at": epoch,
                      **{f"svc{i}": "" for i in range(size)}}
            await conn.execute(_candidates(size, twins=twins, postgresql=_is_pg(conn)), params)


async def correlation_candidates(conn: AsyncConnection, *, fingerprint: str,
                                 services: Sequence[str], since: datetime, until: datetime,
                                 exclude: int, at: datetime,
                                 usable: Callable[[Incident], bool] = lambda twin: True
                                 ) -> tuple[Incident | None, list[Incident]]:
    """The twin (same fingerprint, open at `at`, window open; the first report of the problem),
    or, when there is no `usable` one, the first incident open at `at` on each upstream service
    within [since, until]; in one statement unless a twin is found and not usable: the decision
    runs for every new incident, and each round trip costs more than the query. "Open at
    `at`", not "open now": a decision made late (a backlog) sees the world as it was when the
    new incident started."""
    remembered = _remembered_twin(conn, fingerprint, exclude=exclude, at=at)
    if remembered is not None and usable(remembered):
        return remembered, []
    await flush_windows(conn)   # the look-up reads windows: the batch's extensions first
    services, step = list(services), SERVICES_PER_STATEMENT
    chunks = [services[i:i + step] for i in range(0, len(services), step)] or [[]]
    base = {"fp": fingerprint, "since": since, "until": until, "ex": exclude, "at": at}
    twins, upstream = await _rows(conn, chunks[0], base, twins=True)
    # Rows become Incidents only when used: in a storm most twin rows are passed over.
    twins.sort(key=lambda r: (r["triggered_at"], r["id"]))
    first = next((r for r in twins if r["parent_id"] is None), twins[0] if twins else None)
    twin = Incident.from_row(first) if first is not None else None
    if twin is not None and usable(twin):
        _remember_twin(conn, fingerprint, twin)
        return twin, []
    for chunk in (chunks if twins else chunks[1:]):  # with twins, chunk 0's upstream was skipped
        upstream += (await _rows(conn, chunk, base, twins=False))[1]
    found = {r["id"]: r for r in upstream}
    return twin, [Incident.from_row(r) for r in
                  sorted(found.values(), key=lambda r: (r["triggered_at"], r["id"]))]


def _remember_twin(conn: AsyncConnection, fingerprint: str, twin: Incident) -> None:
    """In a worker batch's scope, keep the twin found: the batch's next repeats of the
    fingerprint (a storm's alerts fire again and again) take it without a look-up."""
    scope = batch_scope.current(conn)
    if scope is not None:
        scope.twins[fingerprint] = twin


def _remembered_twin(conn: AsyncConnection, fingerprint: str, *, exclude: int,
                     at: datetime) -> Incident | None:
    """The twin the look-up would find, when the batch found it already and it still fits
    this decision: the look-up's own conditions (started before, open at `at`, window open
    at `at`, counting the batch's unwritten extensions). A later `at` only lets earlier
    rows' windows lapse, so the first report stays first; and a write to the twin forgets it
    (batch_scope.forget_incident). One case differs from a fresh look-up: a repeat that
    started in between and is still undecided (it arrived out of order) would be found, and
    is passed over for the first report, which is where its own decision hangs it anyway."""
    scope = batch_scope.current(conn)
    twin = scope.twins.get(fingerprint) if scope is not None else None
    if twin is None or twin.id == exclude or (twin.triggered_at, twin.id) >= (at, exclude):
        return None
    if twin.status != "open" and (twin.resolved_at is None or twin.resolved_at <= at):
        return None
    window = max(filter(None, (twin.duplicate_window_until, scope.windows_due.get(twin.id))),
                 default=None)
    return twin if window is not None and window >= at else None


async def _rows(conn: AsyncConnection, chunk: list[str], base: dict[str, Any], *,
                twins: bool) -> tuple[list[Any], list[Any]]:
    """One candidate statement for a chunk of upstream services: (twin rows, upstream rows)."""
    size = next(size for size in _SIZES if size >= len(chunk)) if chunk else 0
    if not size and not twins:
        return [], []
    padded = chunk + chunk[-1:] * (size - len(chunk))
    params = {**base, **{f"svc{i}": name for i, name in enumerate(padded)}}
    statement = _candidates(size, twins=twins, postgresql=_is_pg(conn))
    parts: tuple[dict[int, Any], dict[int, Any]] = ({}, {})
    for row in (await conn.execute(statement, params)).mappings():
        parts[row["part"]][row["id"]] = row
    return list(parts[0].values()), list(parts[1].values())
