"""Group commit: several deliveries in one transaction, each answered only after its commit.

A commit (an fsync on SQLite, a round trip on PostgreSQL) costs more than the work of one
webhook. While one batch commits, newly arrived work queues up and goes in the next batch, so an
idle system adds no latency and a busy one commits many deliveries per transaction. The batch
function sees all the batch's items at once (so it can work set-based). If a batch fails for a
reason other than the database being unreachable, each item is retried in a transaction of its
own, so one bad delivery fails alone.
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Awaitable, Callable, Generic, Sequence, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection

from storage.db import Database, DatabaseUnavailable

T = TypeVar("T")
R = TypeVar("R")
BatchFn = Callable[[AsyncConnection, Sequence[T]], Awaitable[Sequence[R]]]
log = logging.getLogger("firebell.ingest")


class GroupCommitter(Generic[T, R]):
    # A batch whose oldest delivery waited this long, or this big, means deliveries wait for
    # one another long enough to matter (PagerDuty allows 5 s). Not any batch of a few: on
    # PostgreSQL a storm's 80 deliveries a second naturally commit 2-4 at a time, and reading
    # that as saturation held correlation to a tenth of the process, minutes behind.
    QUEUED_FOR = 0.05
    QUEUEING = 16

    def __init__(self, db: Database, batch_fn: BatchFn, *, max_batch: int = 200):
        self._db = db
        self._batch_fn = batch_fn
        self._max_batch = max_batch
        self._queue: list[tuple[T, asyncio.Future, float]] = []  # item, answer, queued at
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self.items = 0
        self._queueing_at = float("-inf")  # time.monotonic() of the latest sizeable batch

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._flush_forever(), name="group-commit")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def run(self, item: T) -> R:
        if self._task is None:
            self.start()
        future = asyncio.get_running_loop().create_future()
        self._queue.append((item, future, time.monotonic()))
        self._wake.set()
        return await future

    def queueing(self, within: float = 0.25) -> bool:
        """Whether deliveries queued up behind one another (a batch of QUEUEING or more, or
        one whose oldest waited QUEUED_FOR) in the last `within` seconds: the door is
        saturated, and background work in this process should leave it the CPU."""
        return time.monotonic() - self._queueing_at < within

    async def _flush_forever(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                batch, self._queue = self._queue[:self._max_batch], self._queue[self._max_batch:]
                now = time.monotonic()
                if len(batch) >= self.QUEUEING or now - batch[0][2] >= self.QUEUED_FOR:
                    self._queueing_at = now
                await self._flush([(item, future) for item, future, _ in batch])

    async def _flush(self, batch: list[tuple[T, asyncio.Future]]) -> None:
        items = [item for item, _ in batch]
        try:
            async with self._db.write(urgent=True) as conn:
                results = await self._batch_fn(conn, items)
        except DatabaseUnavailable as exc:
            _settle(batch, error=exc)
            return
        except Exception as exc:
            if len(batch) == 1:
                _settle(batch, error=exc)
                return
            log.warning("a batch of %d deliveries failed (%s); retrying them one by one",
                        len(batch), type(exc).__name__)
            for one in batch:
                await self._flush([one])
            return
        self.items += len(batch)
        _settle(batch, results=results)


def _settle(batch, *, results=None, error: BaseException | None = None) -> None:
    for i, (_, future) in enumerate(batch):
        if future.done():
            continue
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(results[i])
