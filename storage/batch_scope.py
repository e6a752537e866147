"""The scope of one batch of the worker's database-only jobs (correlation decisions), on the
batch's connection: what the batch's jobs may write once at its end or read once at its start
instead of once per job. Outside a scope nothing here changes anything: a command, a webhook
or a test writes and reads immediately, as before.

Why: a storm's correlation decisions come in batches of up to 200 in one transaction, and each
statement costs SQLAlchemy more Python time than the database spends on it (README,
"Benchmarks"). Timeline entries are written by every decision and read by none of the others
(a read of the timeline flushes what is pending first, so it sees them); the maintenance
windows are the same for every decision of a batch; the correlation lock is taken once per
transaction anyway.

A job that fails rolls back to its savepoint, and the scope with it: `mark()` before the job,
`rollback_to(mark)` after a failure (entries flushed inside the failed job's savepoint are
pending again)."""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from sqlalchemy.ext.asyncio import AsyncConnection

KEY = "firebell.batch_scope"   # in the connection's `info`


@dataclass
class Scope:
    timeline: list[dict[str, Any]] = field(default_factory=list)   # entries not yet written
    windows: list[dict[str, Any]] | None = None   # maintenance windows not closed out, read once
    recurring: set[str] = field(default_factory=set)   # recurring windows stored already
    serialized: set[str] = field(default_factory=set)  # named locks this transaction holds
    # Incidents read for the batch's jobs in one statement, each dropped when written (a
    # later read then goes to the database): see storage.incidents.prefetch.
    incidents: dict[int, Any] = field(default_factory=dict)
    # Of those, the ones nothing hangs under (a new incident, mostly): `children` of one of
    # them needs no statement. Linking anything under one takes it out.
    childless: set[int] = field(default_factory=set)
    # Correlation's overlay of the batch's own decisions (storage/correlation.py): the twin
    # found for a fingerprint (a storm's repeats of one alert ask again and again), the
    # duplicate windows extended but not yet written, and the incidents whose cards are
    # marked behind already (one update per card is queued: more marks add nothing).
    twins: dict[str, Any] = field(default_factory=dict)
    # Incident updates not yet written, by id (storage.incidents.update_fields): written
    # together, before the batch's next statement of any kind and at its end, so every read
    # (and every trigger) sees them. A run of decisions that need no statement (a storm's
    # repeats) writes its links in one executemany.
    incident_writes: dict[int, dict[str, Any]] = field(default_factory=dict)
    windows_due: dict[int, Any] = field(default_factory=dict)
    refreshed: set[int] = field(default_factory=set)
    # What to do once the batch has committed (metrics of its decisions): a batch that rolls
    # back, or a job that rolls back to its savepoint, leaves its own out.
    after_commit: list[Callable[[], Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Mark:
    timeline: tuple[dict[str, Any], ...]
    after_commit: int
    recurring: frozenset[str]
    serialized: frozenset[str]
    windows_due: tuple[tuple[int, Any], ...]
    refreshed: frozenset[int]
    incident_writes: tuple[tuple[int, dict[str, Any]], ...]


def current(conn: AsyncConnection) -> Scope | None:
    return conn.info.get(KEY)


@contextmanager
def batch(conn: AsyncConnection) -> Iterator[Scope]:
    """Open a scope for a batch on `conn`. Its owner writes what is pending before the
    transaction commits (storage.timeline.flush_pending); on an exception the transaction
    rolls back and the pending entries go with it."""
    scope = Scope()
    conn.info[KEY] = scope
    try:
        yield scope
    finally:
        conn.info.pop(KEY, None)


def mark(conn: AsyncConnection) -> Mark | None:
    scope = current(conn)
    if scope is None:
        return None
    return Mark(tuple(scope.timeline), len(scope.after_commit), frozenset(scope.recurring),
                frozenset(scope.serialized), tuple(scope.windows_due.items()),
                frozenset(scope.refreshed),
                tuple((i, dict(w)) for i, w in scope.incident_writes.items()))


def after_commit(conn: AsyncConnection, action: Callable[[], Any]) -> None:
    """Run `action` once the batch has committed; at once outside a batch's scope."""
    scope = current(conn)
    if scope is None:
        action()
    else:
        scope.after_commit.append(action)


def forget_incident(conn: AsyncConnection, incident_id: int, *,
                    new_parent: int | None = None) -> None:
    """An incident was written: the scope's copy (if any) is no longer what is stored; and
    when it was linked under `new_parent`, that one has a child now."""
    scope = current(conn)
    if scope is not None:
        scope.incidents.pop(incident_id, None)
        scope.childless.discard(new_parent)
        if scope.twins:  # a twin written (resolved, linked, ...) is no longer known to fit
            for fingerprint in [f for f, twin in scope.twins.items() if twin.id == incident_id]:
                del scope.twins[fingerprint]


def rollback_to(conn: AsyncConnection, at: Mark | None) -> None:
    """The job after `at` rolled back to its savepoint: forget what it added (and what it
    flushed: those rows are gone with the savepoint, so they are pending again)."""
    scope = current(conn)
    if scope is None or at is None:
        return
    scope.timeline = list(at.timeline)
    del scope.after_commit[at.after_commit:]
    scope.windows = None   # it may have stored a recurring window: read them again
    scope.incidents.clear()  # it may have read some after writing them
    scope.childless.clear()
    scope.recurring = set(at.recurring)
    scope.serialized = set(at.serialized)
    scope.twins.clear()   # found by the job, perhaps among rows it wrote
    scope.windows_due = dict(at.windows_due)   # flushed inside the savepoint: pending again
    scope.refreshed = set(at.refreshed)
    scope.incident_writes = {i: dict(w) for i, w in at.incident_writes}
