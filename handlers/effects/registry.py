"""The registry of outbox job kinds: adding a kind of side effect is one decorated function,
with what the rest of Firebell needs to know about it (which outside system it talks to, for
metrics; how the incident card names it when it fails).

An *outside* effect (`@effect`) gets the context, the outside systems' clients and the claimed
job; it does its one outside call, records what it got back, and returns the result to store on
the job. It raises TemporaryFailure to be retried with back-off, PermanentFailure to be parked;
it must be safe to run again after a crash (docs/ARCHITECTURE.md, "a side effect is a row before
it is a call").

A *local* effect (`@local_effect`) makes no outside call: it gets the worker's open transaction
and does its database work there, so the worker runs a batch of them, and marks them done, in
one transaction (nothing to re-run after a crash: the work and its "done" commit together).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncConnection

from handlers.context import Context
from integrations.errors import PermanentFailure, TemporaryFailure
from integrations.graph import GraphClient
from integrations.jira_tracker import JiraTracker
from integrations.mailer import Mailer
from integrations.pagerduty import PagerDutyClient
from integrations.teams_connector import TeamsConnector
from storage.outbox import Job


@dataclass
class Clients:
    """The outside systems; None = not configured (Context.configured says the same)."""
    teams: TeamsConnector | None = None
    graph: GraphClient | None = None
    jira: JiraTracker | None = None
    mailer: Mailer | None = None
    pagerduty: PagerDutyClient | None = None

    async def close(self) -> None:
        for client in (self.teams, self.graph, self.pagerduty):
            if client is not None:
                await client.close()


OutsideFn = Callable[[Context, Clients, Job], Awaitable[dict[str, Any] | None]]
LocalFn = Callable[[Context, AsyncConnection, Job], Awaitable[dict[str, Any] | None]]


@dataclass(frozen=True)
class Effect:
    kind: str
    run: OutsideFn | None = None
    run_local: LocalFn | None = None
    system: str | None = None        # teams | graph | jira | smtp | pagerduty (metrics label)
    shown_as: str | None = None      # how the incident card names it when it fails
    on_give_up: LocalFn | None = None


EFFECTS: dict[str, Effect] = {}


class Retry(Exception):
    """Run the job again later; `retry_after` is the outside system's own wish, in seconds."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class Park(Exception):
    """Retrying will not help: park the job (visible, `incident retry` runs it again)."""


def _register(effect: Effect) -> None:
    if EFFECTS.get(effect.kind, effect) != effect:
        raise ValueError(f"job kind {effect.kind!r} registered twice")
    EFFECTS[effect.kind] = effect


def effect(kind: str, *, system: str, shown_as: str | None = None
           ) -> Callable[[OutsideFn], OutsideFn]:
    def register(fn: OutsideFn) -> OutsideFn:
        _register(Effect(kind, run=fn, system=system, shown_as=shown_as))
        return fn
    return register


def local_effect(kind: str, *, on_give_up: LocalFn | None = None
                 ) -> Callable[[LocalFn], LocalFn]:
    """`on_give_up`: what to do when the job is parked for good (e.g. announce an incident
    correlation could not decide about: better a card of its own than none)."""
    def register(fn: LocalFn) -> LocalFn:
        _register(Effect(kind, run_local=fn, on_give_up=on_give_up))
        return fn
    return register


def outside_kinds() -> list[str]:
    return [k for k, e in EFFECTS.items() if e.run is not None]


def local_kinds() -> list[str]:
    return [k for k, e in EFFECTS.items() if e.run_local is not None]


def system_of(kind: str) -> str:
    found = EFFECTS.get(kind)
    return (found.system if found else None) or kind


def shown_as(kind: str) -> str | None:
    found = EFFECTS.get(kind)
    return found.shown_as if found else None


async def run(ctx: Context, clients: Clients, job: Job) -> dict[str, Any] | None:
    """Run an outside effect; its failures come out as Retry or Park (the worker knows
    nothing of the outside systems' errors)."""
    found = EFFECTS.get(job.kind)
    if found is None or found.run is None:
        raise Park(f"no effect for job kind {job.kind!r}")
    try:
        return await found.run(ctx, clients, job)
    except TemporaryFailure as exc:
        raise Retry(str(exc), exc.retry_after) from exc
    except PermanentFailure as exc:
        raise Park(str(exc)) from exc


async def run_local(ctx: Context, conn: AsyncConnection, job: Job) -> dict[str, Any] | None:
    return await EFFECTS[job.kind].run_local(ctx, conn, job)


async def give_up(ctx: Context, conn: AsyncConnection, job: Job) -> None:
    found = EFFECTS.get(job.kind)
    if found is not None and found.on_give_up is not None:
        await found.on_give_up(ctx, conn, job)
