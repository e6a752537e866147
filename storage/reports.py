"""Report queries: counts, percentiles, impact and overdue follow-ups, aggregated in the database
(GROUP BY and window functions that SQLite >= 3.25 and PostgreSQL both run). Python only gets
one row per group, never one per incident.

Periods arrive as `edges`: ascending UTC instants e0 < e1 < ... < ek; bucket i is [e_i, e_i+1).
Bucketing is a CASE over those instants, so local-time boundaries (DST) are the caller's
business and the SQL stays portable.
"""
from __future__ import annotations

import secrets
from datetime import date, datetime
from hashlib import sha256
from typing import Any, Iterable, Sequence

from sqlalchemy import (Boolean, Float, and_, case, false, func, literal, or_, select, true,
                        union_all)
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import FunctionElement

from incidents.metrics import FRACTIONS, MEDIAN, P90, Percentiles
from storage.schema import UtcDateTime
from storage.schema import action_items as ai
from storage.schema import incidents as t
from storage.schema import outbox as ob
from storage.schema import postmortems as pm
from storage.schema import report_charts as rc
from storage.schema import report_deliveries as rd
from storage.schema import report_rollups as ru


class seconds_between(FunctionElement):
    """Seconds from the second argument to the first (a - b), as a float, on both databases."""
    type = Float()
    inherit_cache = True
    name = "seconds_between"


@compiles(seconds_between, "sqlite")
def _seconds_sqlite(element, compiler, **kw):
    a, b = (compiler.process(c, **kw) for c in element.clauses)
    return f"((julianday({a}) - julianday({b})) * 86400.0)"


@compiles(seconds_between, "postgresql")
def _seconds_postgresql(element, compiler, **kw):
    a, b = (compiler.process(c, **kw) for c in element.clauses)
    return f"CAST(EXTRACT(EPOCH FROM ({a} - {b})) AS DOUBLE PRECISION)"


def _at(value: datetime):
    return literal(value, UtcDateTime)


def _bucket(column, edges: Sequence[datetime]):
    whens = [(column >= _at(edges[i]), i) for i in reversed(range(len(edges) - 1))]
    return case(*whens, else_=-1)


def _in_range(column, edges: Sequence[datetime]):
    return and_(column >= _at(edges[0]), column < _at(edges[-1]))


class _Root(ColumnElement):
    """A root incident (not linked to a parent). On SQLite written so that no index on
    parent_id is used: its planner would pick ix_incidents_parent (90% of rows are roots) over
    the time range. PostgreSQL knows how many parent ids are null and needs no such help."""
    type = Boolean()
    inherit_cache = True


@compiles(_Root)
def _root_default(element, compiler, **kw):
    return compiler.process(t.c.parent_id.is_(None), **kw)


@compiles(_Root, "sqlite")
def _root_sqlite(element, compiler, **kw):
    return compiler.process(func.coalesce(t.c.parent_id, 0) == 0, **kw)


ROOT = _Root()
# What a report names: never a private incident (its figures count it, anonymised).
PUBLIC = t.c.private == false()


async def private_counts(conn: AsyncConnection, start: datetime,
                         end: datetime) -> dict[str | None, int]:
    """Private root incidents triggered in [start, end), per team: reports say "1 private
    incident" where they would have named it."""
    q = (select(t.c.team, func.count()).where(_in_range(t.c.triggered_at, [start, end]), ROOT,
                                              t.c.private == true())
         .group_by(t.c.team))
    return {team: n for team, n in (await conn.execute(q)).all()}


# -- counts ------------------------------------------------------------------------------------

async def new_counts(conn: AsyncConnection, edges: Sequence[datetime], *,
                     by_service: bool = True) -> list[dict[str, Any]]:
    """Incidents triggered per (bucket, team, [service], level, root or linked)."""
    bucket = _bucket(t.c.triggered_at, edges).label("bucket")
    root = case((ROOT, 1), else_=0).label("root")
    keys = [bucket, t.c.team, t.c.level, root] + ([t.c.service] if by_service else [])
    q = (select(*keys, func.count().label("n")).where(_in_range(t.c.triggered_at, edges))
         .group_by(*keys))
    return [dict(r) for r in (await conn.execute(q)).mappings()]


async def ended_counts(conn: AsyncConnection, column: str,
                       edges: Sequence[datetime]) -> list[dict[str, Any]]:
    """Root incidents resolved (or closed) per (bucket, team), by `resolved_at` / `closed_at`."""
    col = t.c[column]
    bucket = _bucket(col, edges).label("bucket")
    q = (select(bucket, t.c.team, func.count().label("n"))
         .where(_in_range(col, edges), ROOT).group_by(bucket, t.c.team))
    return [dict(r) for r in (await conn.execute(q)).mappings()]


async def open_at(conn: AsyncConnection, end: datetime) -> list[dict[str, Any]]:
    """Root incidents open at `end` (triggered before it and not resolved by then), per team:
    the ones open now, plus the ones resolved since `end`. Two index-friendly halves."""
    # coalesce(): no index on triggered_at for these (SQLite's planner would scan the whole
    # range instead of the few open or recently resolved incidents).
    before_end = func.coalesce(t.c.triggered_at, t.c.created_at) < _at(end)
    now_open = select(t.c.team).where(t.c.status == "open", before_end, ROOT)
    resolved_later = select(t.c.team).where(t.c.resolved_at >= _at(end), before_end, ROOT)
    u = union_all(now_open, resolved_later).subquery("u")
    q = select(u.c.team, func.count().label("n")).group_by(u.c.team)
    return [dict(r) for r in (await conn.execute(q)).mappings()]


# -- MTTA / MTTR percentiles ----------------------------------------------------------------------

async def duration_percentiles(conn: AsyncConnection, edges: Sequence[datetime], *,
                               company: bool) -> list[dict[str, Any]]:
    """Per (scope, bucket): n, median and p90 of MTTA ("a": trigger -> first acknowledge) and
    MTTR ("r": trigger -> final resolve), roots only, in seconds. Scope is the team, or "*" for
    everyone when `company` (then only the company rows are returned).

    PostgreSQL has percentile_cont; SQLite gets the same numbers from window functions (the two
    values around each percentile's rank, interpolated like percentile_cont)."""
    bucket = _bucket(t.c.triggered_at, edges)
    a = seconds_between(t.c.first_acknowledged_at, t.c.triggered_at)
    r = seconds_between(t.c.resolved_at, t.c.triggered_at)
    scope = literal(ALL_SCOPE) if company else t.c.team
    d = (select(scope.label("scope"), bucket.label("bucket"), a.label("a"), r.label("r"))
         .where(_in_range(t.c.triggered_at, edges), ROOT)).subquery("d")
    if conn.dialect.name == "postgresql":
        rows = await _percentiles_postgresql(conn, d)
    else:
        rows = await _percentiles_window(conn, d)
    for row in rows:  # SQLite's julianday arithmetic is exact to ~20 microseconds
        for k in ("a_median", "a_p90", "r_median", "r_p90"):
            if row[k] is not None:
                row[k] = round(float(row[k]), 3)
    return rows


ALL_SCOPE = "*"


async def _percentiles_postgresql(conn: AsyncConnection, d) -> list[dict[str, Any]]:
    def pct(column, p):
        return func.percentile_cont(p).within_group(column)
    q = (select(d.c.scope, d.c.bucket, func.count(d.c.a).label("na"),
                pct(d.c.a, MEDIAN).label("a_median"), pct(d.c.a, P90).label("a_p90"),
                func.count(d.c.r).label("nr"), pct(d.c.r, MEDIAN).label("r_median"),
                pct(d.c.r, P90).label("r_p90"))
         .group_by(d.c.scope, d.c.bucket))
    return [dict(row) for row in (await conn.execute(q)).mappings()]


async def _percentiles_window(conn: AsyncConnection, d) -> list[dict[str, Any]]:
    groups = [d.c.scope, d.c.bucket]
    # Rows with no value form their own partition (the `IS NULL` term), so ranks count values.
    ranked = select(
        d.c.scope, d.c.bucket, d.c.a, d.c.r,
        (func.row_number().over(partition_by=[*groups, d.c.a.is_(None)], order_by=d.c.a) - 1)
        .label("ia"),
        func.count(d.c.a).over(partition_by=groups).label("na"),
        (func.row_number().over(partition_by=[*groups, d.c.r.is_(None)], order_by=d.c.r) - 1)
        .label("ir"),
        func.count(d.c.r).over(partition_by=groups).label("nr")).subquery("w")

    def at_ranks(i, n):
        n1 = n - 1
        wanted = []
        for num, den in FRACTIONS.values():
            # Integer floor division on both databases (n >= 1: no negative operands).
            wanted += [(n1 * num) // den, (n1 * num + den - 1) // den]
        return or_(*[i == w for w in wanted])

    q = select(ranked).where(or_(and_(ranked.c.a.is_not(None), at_ranks(ranked.c.ia, ranked.c.na)),
                                 and_(ranked.c.r.is_not(None), at_ranks(ranked.c.ir, ranked.c.nr))))
    values: dict[tuple, dict[str, Any]] = {}
    for row in (await conn.execute(q)).mappings():
        g = values.setdefault((row["scope"], row["bucket"]), {
            "scope": row["scope"], "bucket": row["bucket"], "na": row["na"], "nr": row["nr"],
            "a": {}, "r": {}})
        if row["a"] is not None:
            g["a"][row["ia"]] = row["a"]
        if row["r"] is not None:
            g["r"][row["ir"]] = row["r"]
    out = []
    for g in values.values():
        ack, res = Percentiles.from_ranks(g["na"], g["a"]), Percentiles.from_ranks(g["nr"], g["r"])
        out.append({"scope": g["scope"], "bucket": g["bucket"], "na": g["na"],
                    "a_median": ack.median, "a_p90": ack.p90, "nr": g["nr"],
                    "r_median": res.median, "r_p90": res.p90})
    return out


# -- impact ---------------------------------------------------------------------------------------

def _impact_minutes(now: datetime):
    end = func.coalesce(t.c.resolved_at, _at(now))
    return func.coalesce(pm.c.impact_minutes, seconds_between(end, t.c.triggered_at) / 60.0)


async def impact_minutes(conn: AsyncConnection, edges: Sequence[datetime],
                         now: datetime) -> list[dict[str, Any]]:
    """Minutes of customer impact per (bucket, team, service), roots only, and how many of the
    incidents were still open (counted up to `now`)."""
    bucket = _bucket(t.c.triggered_at, edges).label("bucket")
    q = (select(bucket, t.c.team, t.c.service,
                func.sum(_impact_minutes(now)).label("minutes"),
                func.sum(case((t.c.resolved_at.is_(None), 1), else_=0)).label("open"))
         .select_from(t.outerjoin(pm, pm.c.incident_id == t.c.id))
         .where(_in_range(t.c.triggered_at, edges), ROOT)
         .group_by(bucket, t.c.team, t.c.service))
    return [dict(r) for r in (await conn.execute(q)).mappings()]


async def costliest(conn: AsyncConnection, start: datetime, end: datetime, now: datetime,
                    revenue: dict[str, float], *, per_team: int = 3) -> list[dict[str, Any]]:
    """The costliest root incidents triggered in [start, end): the top `per_team` of each team
    plus the overall top (team rank or overall rank within `per_team`)."""
    priced = {s: r for s, r in revenue.items() if r > 0}
    if not priced:
        return []
    rate = case(*[(t.c.service == svc, r) for svc, r in priced.items()], else_=0.0)
    minutes = _impact_minutes(now)
    cost = (rate * minutes).label("usd")
    inner = (select(t.c.id, t.c.title, t.c.service, t.c.team, minutes.label("minutes"), cost)
             .select_from(t.outerjoin(pm, pm.c.incident_id == t.c.id))
             .where(_in_range(t.c.triggered_at, [start, end]), ROOT, PUBLIC,
                    t.c.service.in_(list(priced)))).subquery("c")
    ranked = select(inner, func.row_number().over(partition_by=inner.c.team,
                                                  order_by=[inner.c.usd.desc(), inner.c.id])
                    .label("team_rank"),
                    func.row_number().over(order_by=[inner.c.usd.desc(), inner.c.id])
                    .label("overall_rank")).subquery("k")
    q = (select(ranked).where(or_(ranked.c.team_rank <= per_team,
                                  ranked.c.overall_rank <= per_team), ranked.c.usd > 0)
         .order_by(ranked.c.usd.desc()))
    return [dict(r) for r in (await conn.execute(q)).mappings()]


# -- recurrence ------------------------------------------------------------------------------------

async def recurring(conn: AsyncConnection, start: datetime, end: datetime, *,
                    min_count: int = 2, limit: int = 200) -> list[dict[str, Any]]:
    """Fingerprints seen on two or more root incidents triggered in [start, end)."""
    n = func.count().label("n")
    q = (select(t.c.team, t.c.fingerprint, n, func.max(t.c.title).label("title"),
                func.max(t.c.service).label("service"), func.max(t.c.id).label("latest_id"))
         .where(_in_range(t.c.triggered_at, [start, end]), ROOT, PUBLIC)
         .group_by(t.c.team, t.c.fingerprint).having(func.count() >= min_count)
         .order_by(n.desc(), t.c.fingerprint).limit(limit))
    return [dict(r) for r in (await conn.execute(q)).mappings()]


# -- overdue follow-ups ---------------------------------------------------------------------------

def _per_team(rows_query, order_by, per_team: int):
    """Rows of `rows_query` with each team's count, keeping the first `per_team` per team."""
    q = rows_query.subquery("o")
    ranked = select(q, func.count().over(partition_by=q.c.team).label("team_total"),
                    func.row_number().over(partition_by=q.c.team,
                                           order_by=[q.c[c] for c in order_by]).label("k")
                    ).subquery("r")
    return (select(ranked).where(ranked.c.k <= per_team)
            .order_by(*[ranked.c[c] for c in order_by]))


async def overdue_postmortems(conn: AsyncConnection, now: datetime, undated_cutoff: datetime, *,
                              per_team: int = 10) -> tuple[dict[str | None, int], list[dict]]:
    """Draft postmortems past their due date: (count per team, the `per_team` most overdue of
    each team). One whose due date was never set counts once its incident was resolved before
    `undated_cutoff` (the latest its due date can be)."""
    def part(where):
        return (select(t.c.id, t.c.title, t.c.team, pm.c.owner,
                       func.coalesce(pm.c.due_at, t.c.resolved_at).label("due_at"))
                .select_from(pm.join(t, t.c.id == pm.c.incident_id))
                .where(pm.c.status == "draft", t.c.resolved_at.is_not(None), ROOT, PUBLIC,
                       where))
    # Two index-friendly halves (status, due_at) instead of one OR the planners scan on.
    rows = union_all(part(and_(pm.c.due_at.is_not(None), pm.c.due_at < _at(now))),
                     part(and_(pm.c.due_at.is_(None),
                               t.c.resolved_at < _at(undated_cutoff))))
    return await _counted(conn, _per_team(select(rows.subquery("u")), ["due_at", "id"],
                                          per_team))


async def overdue_actions(conn: AsyncConnection, today: date, *,
                          per_team: int = 10) -> tuple[dict[str | None, int], list[dict]]:
    """Action items not done in JIRA whose due date has passed: (count per team, the most
    overdue `per_team` of each team)."""
    rows = (select(ai.c.id, ai.c.incident_id, ai.c.title, t.c.team, ai.c.owner, ai.c.due_date,
                   ai.c.jira_key)
            .select_from(ai.join(t, t.c.id == ai.c.incident_id))
            .where(ai.c.jira_done.is_(False), ai.c.due_date.is_not(None), ai.c.due_date < today,
                   PUBLIC))
    return await _counted(conn, _per_team(rows, ["due_date", "id"], per_team))


async def _counted(conn: AsyncConnection, q) -> tuple[dict[str | None, int], list[dict]]:
    rows = [dict(r) for r in (await conn.execute(q)).mappings()]
    return {r["team"]: r["team_total"] for r in rows}, rows


async def postmortem_completion(conn: AsyncConnection, edges: Sequence[datetime],
                                levels: Iterable[str]) -> list[dict[str, Any]]:
    """Per (bucket, team): root incidents that needed a postmortem (at a postmortem level now,
    or ever: the requirement is sticky) and are no longer open, and how many of them have a
    complete one. A waived postmortem is not needed any more."""
    levels = list(levels)
    bucket = _bucket(t.c.triggered_at, edges).label("bucket")
    needed = or_(t.c.level.in_(levels), t.c.postmortem_required) if levels \
        else t.c.postmortem_required
    q = (select(bucket, t.c.team, func.count().label("needed"),
                func.sum(case((pm.c.status == "complete", 1), else_=0)).label("done"))
         .select_from(t.outerjoin(pm, pm.c.incident_id == t.c.id))
         .where(_in_range(t.c.triggered_at, edges), ROOT, needed, t.c.status != "open",
                func.coalesce(pm.c.status, "") != "waived")
         .group_by(bucket, t.c.team))
    return [dict(r) for r in (await conn.execute(q)).mappings()]


# -- deliveries (exactly once per kind, period and target) ----------------------------------------

async def delivered_targets(conn: AsyncConnection, kind: str, period: str) -> set[str]:
    q = select(rd.c.target).where(rd.c.kind == kind, rd.c.period == period)
    return set((await conn.execute(q)).scalars())


async def claim_delivery(db, conn: AsyncConnection, *, kind: str, period: str, target: str,
                         now: datetime, detail: dict[str, Any]) -> bool:
    """Record the delivery; False if any replica already did (then it must not be sent)."""
    stmt = db.insert(rd).values(kind=kind, period=period, target=target, status="pending",
                                created_at=now, detail=detail)
    return (await conn.execute(stmt.on_conflict_do_nothing(
        index_elements=[rd.c.kind, rd.c.period, rd.c.target]))).rowcount == 1


async def delivery_history(conn: AsyncConnection, *, kinds: Sequence[str] | None = None,
                           targets: Sequence[str] | None = None,
                           limit: int = 30) -> list[dict[str, Any]]:
    """Recent deliveries, newest first, each with the states of the outbox jobs it queued."""
    q = select(rd)
    if kinds:
        q = q.where(rd.c.kind.in_(list(kinds)))
    if targets:
        q = q.where(rd.c.target.in_(list(targets)))
    rows = [dict(r) for r in (await conn.execute(
        q.order_by(rd.c.created_at.desc(), rd.c.id.desc()).limit(limit))).mappings()]
    keys = [k for r in rows for k in (r["detail"] or {}).get("jobs", [])]
    states: dict[str, dict[str, Any]] = {}
    if keys:
        jq = select(ob.c.once_key, ob.c.status, ob.c.finished_at, ob.c.last_error) \
            .where(ob.c.once_key.in_(keys))
        states = {r["once_key"]: dict(r) for r in (await conn.execute(jq)).mappings()}
    for r in rows:
        r["jobs"] = [states.get(k, {"once_key": k, "status": "unknown"})
                     for k in (r["detail"] or {}).get("jobs", [])]
    return rows


# -- chart images ---------------------------------------------------------------------------------

async def save_chart(db, conn: AsyncConnection, png: bytes, now: datetime) -> str:
    """Store a chart image once; returns its (random, unguessable) key."""
    digest = sha256(png).hexdigest()
    stmt = db.insert(rc).values(key=secrets.token_urlsafe(24), digest=digest, png=png,
                                created_at=now)
    await conn.execute(stmt.on_conflict_do_nothing(index_elements=[rc.c.digest]))
    return (await conn.execute(select(rc.c.key).where(rc.c.digest == digest))).scalar_one()


async def chart(conn: AsyncConnection, key: str) -> bytes | None:
    return (await conn.execute(select(rc.c.png).where(rc.c.key == key))).scalar()


async def forget_charts(conn: AsyncConnection, before: datetime) -> int:
    result = await conn.execute(rc.delete().where(rc.c.created_at < _at(before)))
    return result.rowcount or 0



# -- cached figures of complete periods -----------------------------------------------------------

async def rollups(conn: AsyncConnection, kind: str,
                  periods: Sequence[str]) -> dict[str, dict[str, Any]]:
    q = select(ru).where(ru.c.kind == kind, ru.c.period.in_(list(periods)))
    return {r["period"]: dict(r) for r in (await conn.execute(q)).mappings()}


async def rollup_is_fresh(conn: AsyncConnection, rollup: dict[str, Any], *, start: datetime,
                          end: datetime, revenue_hash: str) -> bool:
    """True while nothing the cached figures depend on changed: the period's bounds, the
    revenue figures, and every incident triggered in the period and its postmortem (an
    incident or postmortem updated since, or an incident added since, makes it stale)."""
    if (rollup["start"], rollup["end"], rollup["revenue_hash"]) != (start, end, revenue_hash):
        return False
    since = _at(rollup["computed_at"])
    changed = (select(literal(1)).select_from(t)
               .where(_in_range(t.c.triggered_at, [start, end]), t.c.updated_at > since).limit(1))
    if (await conn.execute(changed)).first():
        return False
    if rollup["first_id"] is None:
        return True
    rca = (select(literal(1)).select_from(pm)
           .where(pm.c.incident_id >= rollup["first_id"], pm.c.incident_id <= rollup["last_id"],
                  pm.c.updated_at > since).limit(1))
    return (await conn.execute(rca)).first() is None


async def id_range(conn: AsyncConnection, start: datetime,
                   end: datetime) -> tuple[int | None, int | None]:
    q = select(func.min(t.c.id), func.max(t.c.id)).where(_in_range(t.c.triggered_at, [start, end]))
    lo, hi = (await conn.execute(q)).one()
    return lo, hi


async def save_rollup(db, conn: AsyncConnection, *, kind: str, period: str, start: datetime,
                      end: datetime, first_id: int | None, last_id: int | None,
                      revenue_hash: str, figures: dict[str, Any], computed_at: datetime) -> None:
    values = dict(start=start, end=end, first_id=first_id, last_id=last_id,
                  revenue_hash=revenue_hash, figures=figures, computed_at=computed_at)
    stmt = db.insert(ru).values(kind=kind, period=period, **values)
    await conn.execute(stmt.on_conflict_do_update(index_elements=[ru.c.kind, ru.c.period],
                                                  set_=values))
