"""Group commit: several deliveries in one transaction, each answered only after its commit.

A commit (an fsync on SQLite, a round trip on PostgreSQL) costs more than the work of one
webhook. While one batch commits, newly arrived work queues up and goes in the next batch, so an
idle system adds no latency and a busy one commits many deliveries per fsync. Each unit runs in
its own SAVEPOINT: one failing unit is rolled back alone and its caller gets the exception.
"""
from __future__ import annotations

import asyncio
from typing import Awaitable, Callable, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection

from storage.db import Database

T = TypeVar("T")
Work = Callable[[AsyncConnection], Awaitable[T]]


class GroupCommitter:
    def __init__(self, db: Database, *, max_batch: int = 128):
        self._db = db
        self._max_batch = max_batch
        self._queue: list[tuple[Work, asyncio.Future]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self.batches = 0

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._flush_forever(), name="group-commit")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    async def run(self, work: Work) -> T:
        if self._task is None:
            self.start()
        future = asyncio.get_running_loop().create_future()
        self._queue.append((work, future))
        self._wake.set()
        return await future

    async def _flush_forever(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                batch, self._queue = self._queue[:self._max_batch], self._queue[self._max_batch:]
                await self._flush(batch)

    async def _flush(self, batch: list[tuple[Work, asyncio.Future]]) -> None:
        results: list[tuple[asyncio.Future, object, BaseException | None]] = []
        try:
            async with self._db.write() as conn:
                for work, future in batch:
                    results.append(await _one(conn, work, future))
        except BaseException as exc:  # the commit itself failed: nobody's work is stored
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            if isinstance(exc, asyncio.CancelledError):
                raise
            return
        self.batches += 1
        for future, value, error in results:
            if future.done():
                continue
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(value)


async def _one(conn: AsyncConnection, work: Work, future: asyncio.Future):
    try:
        async with conn.begin_nested():
            return future, await work(conn), None
    except Exception as exc:  # rolled back to the savepoint; the rest of the batch goes on
        return future, None, exc
