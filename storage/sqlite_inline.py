"""aiosqlite's interface, run on the caller's thread: the SQLite *writer* connection.

aiosqlite runs every call in a thread of its own, and SQLAlchemy's adapter makes three or four
such calls per statement (cursor, execute, fetch, close). Each is a hand-off to that thread and a
wake-up of the event loop, and behind every wake-up wait the other ready tasks: with hundreds of
webhook requests a second, a group-commit batch would spend most of its wall time waiting for
hand-offs rather than in SQLite, and the door can go no faster than its batches.

The writer's statements are short by design (one transaction at a time, webhooks first, jobs in
slices of 10-50 ms), so running them in place costs the loop less than handing them over. Long
reads (reports, search) stay on the aiosqlite reader pool. The one long wait that could block
the loop is SQLite's busy timeout on a write lock held by another process; Firebell writes to an
SQLite file from one process (several replicas need PostgreSQL), so nothing holds it long.
"""
from __future__ import annotations

import sqlite3
from typing import Any, Callable


class _Cursor:
    def __init__(self, cursor: sqlite3.Cursor):
        self._cursor = cursor

    async def __aenter__(self) -> "_Cursor":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self._cursor.close()

    async def execute(self, sql: str, parameters: Any = ()) -> "_Cursor":
        self._cursor.execute(sql, parameters)
        return self

    async def executemany(self, sql: str, rows: Any) -> "_Cursor":
        self._cursor.executemany(sql, rows)
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list:
        return self._cursor.fetchmany(size if size is not None else self._cursor.arraysize)

    async def fetchall(self) -> list:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()

    @property
    def description(self):
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value


class _Now:
    """Stands in for aiosqlite's request queue: SQLAlchemy's adapter sets the isolation level
    by queueing a function with a future; here it runs at once."""

    def put_nowait(self, item: tuple[Any, Callable[[], Any]]) -> None:
        future, function = item
        try:
            future.set_result(function())
        except Exception as exc:  # noqa: BLE001 - handed to the awaiting caller
            future.set_exception(exc)


class Connection:
    def __init__(self, conn: sqlite3.Connection):
        self._conn = conn
        self._connection = conn  # SQLAlchemy checks it to know the connection is open
        self._tx = _Now()

    def cursor(self) -> _Cursor:
        return _Cursor(self._conn.cursor())

    @property
    def isolation_level(self):
        return self._conn.isolation_level

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._conn.create_function(*args, **kwargs)

    async def commit(self) -> None:
        self._conn.commit()

    async def rollback(self) -> None:
        self._conn.rollback()

    async def close(self) -> None:
        self.stop()

    def stop(self) -> None:  # terminate(): nothing runs in the background to stop
        self._conn.close()
        self._connection = None


def connect(database: str, **kwargs: Any) -> Connection:
    """A new writer connection (storage/db.py hands it to SQLAlchemy as `async_creator`).
    check_same_thread=False: the pool may close it from the garbage collector's thread."""
    return Connection(sqlite3.connect(database, check_same_thread=False, **kwargs))
