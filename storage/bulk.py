"""Many rows in one INSERT, as SQL rendered once and handed to the driver: the webhook batch's
writes (hundreds of deliveries a second) without SQLAlchemy's per-statement work.

Measured on the webhook batch (README, "Benchmarks"): building a Core statement's cache key,
processing every bound value through its type and rebatching an executemany into multi-row
VALUES cost more Python time than SQLite spends executing the statement. Here the SQL is a
string made once (per dialect, and on SQLite per row count), values go through the column
types' own bind processors (so what is stored is exactly what Core would store: the same
datetime text on SQLite, the same JSON), and the statement runs through `exec_driver_sql`, in
the caller's transaction, with SQLAlchemy's error translation and events kept.

SQLite: one multi-row `VALUES` statement (an executemany when nothing is returned).
PostgreSQL: one `INSERT ... SELECT FROM unnest($1::type[], ...)`: a single prepared statement
whatever the row count, one round trip.
"""
from __future__ import annotations

from typing import Any, Sequence

from sqlalchemy import JSON, Column, Table
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection

# SQLite (3.32+) allows 32,766 bound variables in one statement; a batch stays far below.
SQLITE_VARIABLES = 32_000


class BulkInsert:
    """INSERT INTO `table` many rows, optionally ON CONFLICT (`conflict`) DO NOTHING
    (`conflict=()` for any conflict) and RETURNING `returning`. The columns are those the rows
    name and those with a Python default; a row without one gets the default (or NULL), as with
    Core."""

    def __init__(self, table: Table, *, conflict: Sequence[str] | None = None,
                 returning: Sequence[str] = ()):
        self.table, self.conflict, self.returning = table, conflict, tuple(returning)
        self._processors: dict[tuple[str, str], Any] = {}
        self._sql: dict[tuple[str, tuple[str, ...], int], str] = {}

    async def run(self, conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> list[tuple]:
        """Insert `rows`; the RETURNING rows (none without a RETURNING)."""
        if not rows:
            return []
        dialect = conn.dialect
        named = {key for row in rows for key in row}
        columns = tuple(c.name for c in self.table.columns
                        if c.name in named or c.default is not None)
        values = self._values(dialect, columns, rows)
        if dialect.name == "postgresql":
            params = tuple(list(column) for column in zip(*values))
            result = await conn.exec_driver_sql(self._postgresql(columns), params)
            return list(result) if self.returning else []
        if not self.returning:
            await conn.exec_driver_sql(self._sqlite(columns, 1), values)
            return []
        found: list[tuple] = []
        step = max(1, SQLITE_VARIABLES // len(columns))
        for i in range(0, len(values), step):
            chunk = values[i:i + step]
            flat = tuple(v for row in chunk for v in row)
            found.extend(await conn.exec_driver_sql(self._sqlite(columns, len(chunk)), flat))
        return found

    def _values(self, dialect, columns: tuple[str, ...],
                rows: Sequence[dict[str, Any]]) -> list[tuple]:
        named = [(name, self._processor(dialect, name), _default(self.table.c[name]))
                 for name in columns]
        return [tuple((p(v) if p else v) for name, p, default in named
                      for v in (row[name] if name in row else default(),))
                for row in rows]

    def _processor(self, dialect, name: str):
        key = (dialect.name, name)
        if key not in self._processors:
            column_type = self.table.c[name].type
            self._processors[key] = column_type.dialect_impl(dialect).bind_processor(dialect)
        return self._processors[key]

    def _tail(self) -> str:
        tail = ""
        if self.conflict is not None:
            target = f" ({', '.join(self.conflict)})" if self.conflict else ""
            tail += f" ON CONFLICT{target} DO NOTHING"
        if self.returning:
            tail += f" RETURNING {', '.join(self.returning)}"
        return tail

    def _sqlite(self, columns: tuple[str, ...], count: int) -> str:
        key = ("sqlite", columns, count)
        if key not in self._sql:
            row = "(" + ", ".join("?" * len(columns)) + ")"
            self._sql[key] = (f"INSERT INTO {self.table.name} ({', '.join(columns)}) VALUES "
                              + ", ".join([row] * count) + self._tail())
        return self._sql[key]

    def _postgresql(self, columns: tuple[str, ...]) -> str:
        key = ("postgresql", columns, 0)
        if key not in self._sql:
            dialect = postgresql.dialect()
            arrays, picks = [], []
            for i, name in enumerate(columns, start=1):
                column_type = self.table.c[name].type
                if isinstance(column_type, JSON):  # bound as JSON text, cast per row
                    arrays.append(f"${i}::TEXT[]")
                    picks.append(f"u.c{i}::JSON")
                else:
                    arrays.append(f"${i}::{column_type.compile(dialect=dialect)}[]")
                    picks.append(f"u.c{i}")
            names = ", ".join(f"c{i}" for i in range(1, len(columns) + 1))
            self._sql[key] = (
                f"INSERT INTO {self.table.name} ({', '.join(columns)}) "
                f"SELECT {', '.join(picks)} FROM unnest({', '.join(arrays)}) AS u({names})"
                + self._tail())
        return self._sql[key]


def _default(column: Column):
    """What Core would put in a column a row leaves out: its Python default, else NULL."""
    default = column.default
    if default is None:
        return lambda: None
    if default.is_callable:
        return lambda: default.arg(None)
    return lambda: default.arg
