"""The registry of outbox job kinds: adding a kind of side effect is one decorated function.

A job function gets the context and the claimed job, does its one outside call, records what it
got back, and returns the result to store on the job. It raises TemporaryFailure to be retried
with backoff, PermanentFailure to be parked; it must be safe to run again after a crash.

A *local* job (`@local_job`) makes no outside call: it gets the worker's open transaction and
does its database work there, so the worker runs a batch of them, and marks them done, in one
transaction (nothing to re-run after a crash: the work and its "done" commit together).
"""
from __future__ import annotations

from typing import Any, Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncConnection

from handlers.context import Context
from storage.outbox import Job

JobFunction = Callable[[Context, Job], Awaitable[dict[str, Any] | None]]
LocalJobFunction = Callable[[Context, AsyncConnection, Job], Awaitable[dict[str, Any] | None]]
JOBS: dict[str, JobFunction] = {}
LOCAL_JOBS: dict[str, LocalJobFunction] = {}
# What to do when a local job is parked for good (e.g. announce an incident correlation could
# not decide about: better a card of its own than none).
LOCAL_GIVE_UP: dict[str, LocalJobFunction] = {}


def job(kind: str) -> Callable[[JobFunction], JobFunction]:
    def register(fn: JobFunction) -> JobFunction:
        if JOBS.get(kind, fn) is not fn:
            raise ValueError(f"job kind {kind!r} registered twice")
        JOBS[kind] = fn
        return fn
    return register



def local_job(kind: str, *, on_give_up: LocalJobFunction | None = None
              ) -> Callable[[LocalJobFunction], LocalJobFunction]:
    def register(fn: LocalJobFunction) -> LocalJobFunction:
        if LOCAL_JOBS.get(kind, fn) is not fn:
            raise ValueError(f"job kind {kind!r} registered twice")
        LOCAL_JOBS[kind] = fn
        if on_give_up is not None:
            LOCAL_GIVE_UP[kind] = on_give_up
        return fn
    return register
