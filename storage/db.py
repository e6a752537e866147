"""The database: engines, transactions and migrations, for SQLite and PostgreSQL alike.

Writes that read-then-update an incident must lock, or two deliveries arriving together lose one
update: on SQLite every write transaction is `BEGIN IMMEDIATE` (and, inside one process, writers
queue on an asyncio lock instead of spinning in SQLite's busy handler); on PostgreSQL the queries
that need it say `FOR UPDATE`.
"""
from __future__ import annotations

import asyncio
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import AsyncIterator

import orjson
from sqlalchemy import event, make_url, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, PendingRollbackError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from storage import batch_scope, sqlite_inline

# PostgreSQL: an urgent write (a webhook batch) under way this long is taken to be waiting for
# a row that background work holds, which then ends its transaction (urgent_waiting).
URGENT_STUCK_SECONDS = 0.005
MIGRATIONS = Path(__file__).parent / "migrations"
# JSON columns (payloads, details) are (de)serialised on every row: orjson is several times
# faster than the standard library at it.
JSON_OPTIONS = dict(json_serializer=lambda v: orjson.dumps(v).decode(), json_deserializer=orjson.loads)
_ADVISORY_LOCK = text("SELECT pg_advisory_xact_lock(hashtext(:n))")
_MIGRATION_LOCK = 7_212_115  # arbitrary constant: the advisory lock replicas take to migrate


class DatabaseUnavailable(Exception):
    """The database cannot be reached right now; callers answer 503 and try again later."""


def normalise_url(url: str) -> str:
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    if url.startswith("postgresql://"):
        return "postgresql+asyncpg://" + url[len("postgresql://"):]
    if url.startswith("sqlite:///"):
        return "sqlite+aiosqlite:///" + url[len("sqlite:///"):]
    return url


class Database:
    def __init__(self, url: str, *, pool_size: int = 10):
        self.url = normalise_url(url)
        self.is_sqlite = self.url.startswith("sqlite")
        self.dialect = "sqlite" if self.is_sqlite else "postgresql"
        self._write_lock = asyncio.Lock() if self.is_sqlite else None
        self._urgent = 0
        self._waiting = 0
        self._urgent_running: dict[object, float] = {}   # PostgreSQL: urgent writes under way
        if self.is_sqlite:
            self._writer = _sqlite_engine(self.url, writer=True, pool_size=1)
            self._reader = _sqlite_engine(self.url, writer=False, pool_size=4)
        else:
            self._writer = create_async_engine(self.url, pool_size=pool_size, max_overflow=pool_size,
                                               pool_pre_ping=True, pool_recycle=1800,
                                               **JSON_OPTIONS)
            self._reader = self._writer

    @property
    def engine(self) -> AsyncEngine:
        return self._writer

    def insert(self, table):
        """A dialect insert, so callers can say on_conflict_do_nothing on both databases."""
        return (sqlite.insert if self.is_sqlite else postgresql.insert)(table)

    @property
    def urgent_writers(self) -> int:
        """How many urgent writers (a webhook batch someone is waiting on) wait for the lock;
        background work that holds it should finish up and let them in."""
        return self._urgent

    @property
    def writers_waiting(self) -> int:
        """How many writers of any kind (a webhook batch, a sender recording what it sent) wait
        for the SQLite writer's lock; 0 on PostgreSQL, where writers do not queue here."""
        return self._waiting

    async def urgent_waiting(self) -> bool:
        """Whether an urgent writer waits for the lock, asked between two pieces of background
        work. Gives the loop a turn first: the SQLite writer's statements run in place and never
        suspend, so without it no webhook that arrived meanwhile could get as far as asking."""
        await asyncio.sleep(0)
        if self._urgent:
            return True
        # PostgreSQL has no lock to queue at: an urgent transaction of this process that has
        # run for a while is most likely waiting for a row the background work holds (a
        # storm's hot parent card, marked behind by each decision).
        stuck = time.monotonic() - URGENT_STUCK_SECONDS
        return any(started < stuck for started in self._urgent_running.values())

    @asynccontextmanager
    async def write(self, *, urgent: bool = False) -> AsyncIterator[AsyncConnection]:
        """One write transaction: committed on exit, rolled back on error."""
        if self._write_lock is not None:
            self._urgent += urgent
            self._waiting += 1
            try:
                await self._write_lock.acquire()
            finally:
                self._urgent -= urgent
                self._waiting -= 1
            try:
                async with _translate(), self._writer.begin() as conn:
                    yield conn
            finally:
                self._write_lock.release()
        elif urgent:
            key = object()
            self._urgent_running[key] = time.monotonic()
            try:
                async with _translate(), self._writer.begin() as conn:
                    yield conn
            finally:
                del self._urgent_running[key]
        else:
            async with _translate(), self._writer.begin() as conn:
                yield conn

    async def write_patiently(self, work, *, for_seconds: float):
        """`work(conn)` in a write transaction; while the database is unreachable, try again
        (backing off) for up to `for_seconds`, then give up with DatabaseUnavailable. For
        writes that must not be lost once an outside call has been made."""
        delay, deadline = 0.2, time.monotonic() + for_seconds
        while True:
            try:
                async with self.write() as conn:
                    return await work(conn)
            except DatabaseUnavailable:
                if time.monotonic() + delay > deadline:
                    raise
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with _translate(), self._reader.connect() as conn:
            yield conn

    async def serialize(self, conn: AsyncConnection, name: str) -> None:
        """Hold a named lock until this transaction ends: work under the same name runs one at
        a time across every replica. (SQLite write transactions are serial already.) In a
        worker batch's scope, taken once: the lock lasts until the batch commits."""
        if self.is_sqlite:
            return
        scope = batch_scope.current(conn)
        if scope is not None and name in scope.serialized:
            return
        await conn.execute(_ADVISORY_LOCK, {"n": f"firebell:{name}"})
        if scope is not None:
            scope.serialized.add(name)

    async def ping(self) -> bool:
        try:
            async with self.read() as conn:
                await conn.execute(text("SELECT 1"))
            return True
        except DatabaseUnavailable:
            return False

    async def migrate(self) -> None:
        """Bring the schema to the newest Alembic revision. Replicas starting together on
        PostgreSQL serialise on an advisory lock; the second one finds nothing to do."""
        async with self._writer.begin() as conn:
            if not self.is_sqlite:
                await conn.execute(text(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})"))
            await conn.run_sync(_upgrade)

    async def close(self) -> None:
        await self._writer.dispose()
        if self._reader is not self._writer:
            await self._reader.dispose()


def _upgrade(sync_conn) -> None:
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = sync_conn
    command.upgrade(cfg, "head")


def _sqlite_engine(url: str, *, writer: bool, pool_size: int) -> AsyncEngine:
    if writer:
        # The writer runs its (short) statements on the event loop's thread: see
        # storage/sqlite_inline.py. Readers keep aiosqlite's threads for long reports.
        path = make_url(url).database

        async def connect_in_place():
            return sqlite_inline.connect(path, timeout=30)
        engine = create_async_engine(url, pool_size=pool_size, max_overflow=0,
                                     async_creator=connect_in_place, **JSON_OPTIONS)
    else:
        engine = create_async_engine(url, pool_size=pool_size, max_overflow=0,
                                     connect_args={"timeout": 30}, **JSON_OPTIONS)

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_conn, _record):
        # Take transaction control away from the driver so "begin" below decides how to BEGIN.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA foreign_keys=ON")
        if writer:
            # The writer touches the newest pages of each index (16 MiB page cache, not
            # SQLite's 2 MB); a bigger cache would only hold the whole file in this process's
            # memory as it grows during a burst.
            cur.execute("PRAGMA cache_size=-16384")
        else:
            # Reports read a year of incidents (hundreds of MB): 64 MiB of page cache per
            # reader and the file memory-mapped.
            cur.execute("PRAGMA cache_size=-65536")
            cur.execute("PRAGMA mmap_size=268435456")
        cur.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn):
        conn.exec_driver_sql("BEGIN IMMEDIATE" if writer else "BEGIN")

    return engine


@asynccontextmanager
async def _translate() -> AsyncIterator[None]:
    """Connection-level failures become DatabaseUnavailable; real SQL errors pass through."""
    try:
        yield
    except DBAPIError as exc:
        if exc.connection_invalidated or _is_connection_error(exc.orig):
            raise DatabaseUnavailable(str(exc.orig)[:200]) from exc
        raise
    except (OSError, asyncio.TimeoutError) as exc:
        raise DatabaseUnavailable(str(exc)[:200]) from exc
    except PendingRollbackError as exc:
        # Work went on with a connection that was lost mid-transaction.
        if "reconnect until invalid transaction" in str(exc):
            raise DatabaseUnavailable(str(exc)[:200]) from exc
        raise


def _is_connection_error(orig: BaseException | None) -> bool:
    name = type(orig).__name__ if orig else ""
    return isinstance(orig, OSError) or name in {
        "ConnectionDoesNotExistError", "InterfaceError", "CannotConnectNowError",
        "ConnectionFailureError", "TooManyConnectionsError", "AdminShutdownError",
    } or "database is locked" in str(orig)
