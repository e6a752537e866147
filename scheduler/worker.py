"""The outbox worker: claims due jobs, runs them, records the outcome, retries with backoff.

Runs inside the app process (started with it). Several processes may run one each against one
PostgreSQL: claims use SKIP LOCKED and leases, so a job runs on one worker at a time and a
crashed worker's jobs come back when its lease lapses.
"""
from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Callable

from sqlalchemy.exc import DBAPIError

from handlers.effects import dispatch as effects
from handlers.context import Context
from incidents.model import ref
from storage import batch_scope, correlation, incidents, outbox, timeline
from storage.db import DatabaseUnavailable
from storage.outbox import Job

log = logging.getLogger("firebell.outbox")


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 10
    base_delay: float = 2.0
    max_delay: float = 600.0

    def delay(self, attempts: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return retry_after + random.uniform(0, 1.0)  # honour the server, plus a little jitter
        return min(self.max_delay, self.base_delay * 2 ** (attempts - 1)) * random.uniform(0.5, 1.0)


class _JobFailed(Exception):
    """A job failed in a batch run without savepoints: the batch's transaction must roll back."""


class OutboxWorker:
    # While the webhook door is saturated (or webhooks wait for the database), database-only
    # jobs (correlation) get at most this share of the process: deliveries are answered first
    # (PagerDuty wants a 2xx within 5 s) and correlation catches up when the burst eases. Its
    # decisions see the world as it was when each incident started, so waiting changes none.
    SATURATED_SHARE = 0.1

    def __init__(self, ctx: Context, clients: effects.Clients, *,
                 retry: RetryPolicy = RetryPolicy(), concurrency: int = 8,
                 poll_seconds: float = 1.0, lease: timedelta = timedelta(minutes=2),
                 door_saturated: Callable[[], bool] = lambda: False):
        self.ctx = ctx
        self.clients = clients
        self._door_saturated = door_saturated
        self.retry = retry
        self.id = f"worker-{uuid.uuid4().hex[:8]}"
        self._concurrency = concurrency
        self._poll = poll_seconds
        self._gather = min(0.05, poll_seconds / 2)
        self._local_due = 0.0  # while webhooks press, no local turn before this
        self._last_claim = 0.0
        self._lease = lease
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._stopping = False
        self._running: set[asyncio.Task] = set()

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._loop(), name=self.id)

    async def stop(self) -> None:
        """Stop the loop, and wait (a bounded time) for it and the running jobs. The flag ends
        the loop even if a cancellation is lost on the way (a database driver that turns it
        into an error, which the loop logs and survives, as it must for real errors)."""
        if self._task:
            self._stopping = True
            self._task.cancel()
            _, pending = await asyncio.wait({self._task}, timeout=10)
            if pending:
                log.error("outbox: the worker loop did not stop within 10 s")
        if self._running:
            await asyncio.wait(self._running, timeout=5)

    async def _loop(self) -> None:
        while not self._stopping:
            try:
                claimed = await self.run_once()
            except DatabaseUnavailable as exc:
                log.warning("outbox: database unavailable (%s); retrying", exc)
                claimed = 0
            except Exception:
                log.exception("outbox: claim failed")
                claimed = 0
            if claimed:
                continue
            self._wake.clear()
            try:
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for wraps the wait in a
                # task of its own, and a stop arriving as it times out could be lost (seen:
                # a test's shutdown waiting forever on the loop).
                async with asyncio.timeout(self._poll):
                    await self._wake.wait()
                # Woken by new work: let a little more arrive, so it is claimed as one batch
                # rather than one transaction per delivery during a storm.
                await asyncio.sleep(self._gather)
            except TimeoutError:
                pass

    async def run_once(self) -> int:
        done_locally = await self._run_local_batch()
        free = self._concurrency - len(self._running)
        if free <= 0:
            await asyncio.wait(self._running, return_when=asyncio.FIRST_COMPLETED)
            return 1
        if self._webhooks_pressing() and time.monotonic() - self._last_claim < 0.25:
            return done_locally  # webhooks first; claim again in a moment
        self._last_claim = time.monotonic()
        async with self.ctx.db.write() as conn:
            claimed = await outbox.claim(self.ctx.db, conn, worker=self.id, now=self.ctx.now(),
                                         lease=self._lease, limit=free,
                                         kinds=effects.outside_kinds())
        for job in claimed:
            task = asyncio.create_task(self._run(job), name=f"job-{job.id}-{job.kind}")
            self._running.add(task)
            task.add_done_callback(self._running.discard)
        return done_locally + len(claimed)

    def _webhooks_pressing(self) -> bool:
        """Webhooks wait for the database, or the door has been saturated a moment ago."""
        return bool(self.ctx.db.urgent_writers) or self._door_saturated()

    async def _run_local_batch(self, limit: int = 200) -> int:
        """Claim, run and complete database-only jobs in one transaction: a storm's hundreds
        of correlation decisions cost a few commits, not three each, and inside a batch scope
        (storage/batch_scope.py) their timeline entries and completions are written together
        at the end. Claimed a few at a time, and the transaction ends as soon as webhooks wait
        for the database, or after its slice (`_slice`; while webhooks wait or the door is
        saturated, 10 ms, then a pause nine times as long).

        The jobs run without a savepoint each (two statements per job saved). When one fails,
        the whole batch rolls back, nothing of it stored, and runs again with a savepoint per
        job: the failing job rolls back alone and is retried later, the others are kept."""
        if not effects.local_kinds():
            return 0
        pressed = self._webhooks_pressing()
        if pressed and time.monotonic() < self._local_due:
            return 0
        try:
            return await self._local_batch(limit, pressed, careful=False)
        except _JobFailed as failed:
            log.info("outbox: a job failed in a batch (%s); running the batch again, each job "
                     "on its own savepoint", failed.__cause__)
            return await self._local_batch(limit, pressed, careful=True)

    def _slice(self, pressed: bool) -> tuple[float, int]:
        """How long one local batch may hold its transaction, and how many jobs it claims at a
        time. While webhooks press: 10 ms. Else 50 ms when another writer queues for the
        SQLite writer (a sender recording what it sent); with nothing waiting, 200 ms, so a
        backlog's claims, commits and look-ups are shared by more decisions. Each job still
        checks for a webhook first (`urgent_waiting`: on PostgreSQL, one of this process's
        that seems held by the batch's row locks; another replica's may wait for the rest
        of the slice)."""
        if pressed:
            return 0.01, 20
        if self.ctx.db.writers_waiting:
            return 0.05, 20
        return 0.2, 50

    async def _local_batch(self, limit: int, pressed: bool, *, careful: bool) -> int:
        ran: list[Job] = []
        done: list[tuple[Job, dict | None]] = []
        failed: list[tuple[Job, Exception]] = []
        async with self.ctx.db.write() as conn:
            with batch_scope.batch(conn) as scope:
                started = time.monotonic()
                while len(ran) < limit:
                    chunk = self._slice(pressed)[1]
                    jobs = await outbox.claim(self.ctx.db, conn, worker=self.id,
                                              now=self.ctx.now(), lease=self._lease,
                                              limit=min(chunk, limit - len(ran)),
                                              kinds=effects.local_kinds())
                    await incidents.prefetch(conn, [job.incident_id for job in jobs])
                    for n, job in enumerate(jobs):
                        if ran and (await self.ctx.db.urgent_waiting() or time.monotonic()
                                    - started > self._slice(pressed)[0]):
                            await outbox.release(conn, jobs[n:])  # back in the queue, untouched
                            jobs = []
                            break
                        ok, outcome = await self._run_local(conn, job, careful)
                        ran.append(job)
                        (done if ok else failed).append((job, outcome))
                    else:
                        if len(jobs) == chunk:
                            continue
                    break
                elapsed = time.monotonic() - started
                self._local_due = time.monotonic() + elapsed * (1 / self.SATURATED_SHARE - 1)
                await outbox.complete_many(conn, done, now=self.ctx.now())
                for job, exc in failed:
                    log.error("outbox job %s (%s) failed: %s", job.id, job.kind, exc,
                              exc_info=exc, extra={"incident": _ref(job)})
                    await self._fail_local(conn, job, exc)
                await incidents.write_pending(conn)
                await correlation.flush_windows(conn)
                await timeline.flush_pending(conn)
        for counted in scope.after_commit:
            counted()
        for job in ran:
            outcome = "failed" if any(j is job for j, _ in failed) else "done"
            self.ctx.metrics.jobs.labels(job.kind, outcome).inc()
        if ran:
            self.ctx.wake_worker()  # they queued follow-ups (cards, war rooms, ...)
        return len(ran)

    async def _run_local(self, conn, job: Job,
                         careful: bool) -> tuple[bool, dict | Exception | None]:
        """(True, result), or (False, the exception) after the job rolled back alone to its
        savepoint (careful), or _JobFailed (not careful: the batch must roll back)."""
        before = batch_scope.mark(conn) if careful else None
        try:
            if not careful:
                return True, await effects.run_local(self.ctx, conn, job)
            async with conn.begin_nested():  # one failing job rolls back alone
                return True, await effects.run_local(self.ctx, conn, job)
        except DatabaseUnavailable:
            raise
        except Exception as exc:
            if isinstance(exc, DBAPIError) and exc.connection_invalidated:
                # The connection is gone: the batch is, too.
                raise DatabaseUnavailable(str(exc.orig)[:200]) from exc
            if not careful:
                raise _JobFailed() from exc
            batch_scope.rollback_to(conn, before)
            return False, exc

    async def _fail_local(self, conn, job: Job, exc: Exception) -> None:
        error = f"{type(exc).__name__}: {exc}"
        if job.attempts >= self.retry.max_attempts:
            await outbox.park(conn, job, error=error, now=self.ctx.now())
            await effects.give_up(self.ctx, conn, job)
        else:
            at = self.ctx.now() + timedelta(seconds=self.retry.delay(job.attempts, None))
            await outbox.retry_later(conn, job, error=error, at=at)

    async def _run(self, job: Job) -> None:
        started = time.perf_counter()
        try:
            result = await effects.run(self.ctx, self.clients, job)
        except effects.Retry as exc:
            await self._failed(job, str(exc), exc.retry_after, started)
        except effects.Park as exc:
            await self._park(job, str(exc), started)
        except DatabaseUnavailable as exc:
            await self._failed(job, f"database unavailable: {exc}", None, started)
        except Exception as exc:  # a bug: retried like a temporary failure, loudly
            log.exception("outbox job %s (%s) crashed", job.id, job.kind,
                          extra={"incident": _ref(job)})
            await self._failed(job, f"{type(exc).__name__}: {exc}", None, started)
        else:
            async def write(conn):
                await outbox.complete(conn, job, now=self.ctx.now(), result=result)
                if job.last_error:  # it had failed before: the card's warning must go
                    await self._show_on_card(conn, job)
            await self._record(job, "done", started, write)

    async def _failed(self, job: Job, error: str, retry_after: float | None,
                      started: float) -> None:
        if job.attempts >= self.retry.max_attempts:
            return await self._park(job, f"{error} (gave up after {job.attempts} attempts)",
                                    started)
        at = self.ctx.now() + timedelta(seconds=self.retry.delay(job.attempts, retry_after))
        log.warning("outbox job %s (%s) failed, retrying at %s: %s", job.id, job.kind,
                    at.isoformat(timespec="seconds"), error, extra={"incident": _ref(job)})
        self.ctx.metrics.retries.labels(job.kind).inc()

        async def write(conn):
            await outbox.retry_later(conn, job, error=error, at=at)
            if retry_after is not None and job.conversation_id:
                await outbox.block_conversation(self.ctx.db, conn, job.conversation_id, at)
            await self._show_on_card(conn, job)
        await self._record(job, "retry", started, write)

    async def _park(self, job: Job, error: str, started: float) -> None:
        log.error("outbox job %s (%s) parked as failed: %s", job.id, job.kind, error,
                  extra={"incident": _ref(job)})
        self.ctx.metrics.parked.labels(job.kind).inc()

        async def write(conn):
            await outbox.park(conn, job, error=error, now=self.ctx.now())
            await self._show_on_card(conn, job)
        await self._record(job, "failed", started, write)

    async def _show_on_card(self, conn, job: Job) -> None:
        await effects.show_on_card(self.ctx, conn, job)

    async def _record(self, job: Job, outcome: str, started: float, write) -> None:
        self.ctx.metrics.jobs.labels(job.kind, outcome).inc()
        self.ctx.metrics.calls.labels(effects.system_of(job.kind), outcome).observe(
            time.perf_counter() - started)
        try:
            # A database away for a moment must not leave the job running until its lease
            # lapses: keep trying while the lease lasts.
            await self.ctx.db.write_patiently(write, for_seconds=job.lease_left(self.ctx.now()))
        except DatabaseUnavailable:
            # The lease will lapse and the job run again; job functions are safe to re-run.
            log.warning("outbox job %s: could not record %s", job.id, outcome)
        log.debug("job %s %s %s in %.3fs", job.id, job.kind, outcome,
                  time.perf_counter() - started)


def _ref(job: Job) -> str | None:
    return ref(job.incident_id) if job.incident_id else None
