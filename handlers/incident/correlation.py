"""Correlation, as a local outbox job that runs right after an incident is stored or changes:
the decision (duplicate, cascade child, or root) and its consequences. A new incident is
announced (card, war room, ...) only once this has decided it is a root; duplicates and
cascade children fold into their root instead. It makes no outside call, so it is a local
effect: a batch of decisions commits together with their "done"."""
from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from handlers.context import Context
from handlers.effects.registry import local_effect
from handlers.incident.announce import announce
from handlers.incident.change import queue_correlation
from handlers.incident.links import LinkRefused, link, root_of
from handlers.incident.maintenance import hold_back, held_back
from handlers.incident.routing import record_only
from incidents import correlation as rules
from incidents.correlation import Link
from incidents.model import FIREBELL, Incident, ref
from storage import correlation as queries
from storage.batch_scope import after_commit
from storage import incidents as store
from storage.outbox import Job
from storage.timeline import note

ADOPT_PER_RUN = 20
DECLARED = "teams"   # the source of an incident declared in Teams


async def announce_undecided(ctx: Context, conn: AsyncConnection, job: Job) -> None:
    """Correlation kept failing for this incident: announce it as a root rather than leave it
    without a card (a person can still link it), and say so on its timeline."""
    incident = await store.get(conn, job.incident_id, lock=True)
    if incident is None or incident.correlated or incident.private:
        return
    if incident.source != DECLARED and (await hold_back(ctx, conn, incident)
                                        or await record_only(ctx, conn, incident)):
        return  # kept off Teams as a decided one would be: the window's end, or the digest
    incident = await store.update_fields(conn, incident, {"correlated": True}, ctx.now())
    await note(conn, incident.id, kind="correlation_failed", actor=FIREBELL, at=ctx.now(),
               text="correlation could not decide (see the logs); announced on its own — "
                    "use `incident link` if it belongs to another incident")
    await announce(ctx, conn, incident)


async def prepare(ctx: Context) -> None:
    """At start-up: compile the decision's statements before the first incident needs them."""
    async with ctx.db.write() as conn:
        await queries.prepare_correlation_candidates(conn)


@local_effect("correlate", on_give_up=announce_undecided)
async def correlate(ctx: Context, conn: AsyncConnection, job: Job) -> dict | None:
    # One decision at a time, everywhere: two incidents deciding about each other at once
    # would each miss the other's link (and windows extended by it).
    await ctx.db.serialize(conn, "correlation")
    incident = await store.get(conn, job.incident_id, lock=True)
    if incident is None:
        return None
    if incident.private:  # stored as decided: it links to nothing and adopts nothing
        return {"decision": "private", "parent": None}
    if not incident.correlated and incident.source != DECLARED \
            and await hold_back(ctx, conn, incident):
        # In maintenance: stored, never announced, linked to nothing (until the window ends).
        # Declared in Teams is exempt: the declarer already has its card, and wants it.
        after_commit(conn, ctx.metrics.correlations.labels("maintenance").inc)
        return {"decision": "maintenance", "parent": None}
    decision = await decide(ctx, conn, incident)
    try:
        outcome = await _apply(ctx, conn, incident, decision)
    except LinkRefused as exc:  # refused before anything was written: keep what is there
        decision, outcome = None, f"kept: {exc}"
    if incident.is_open and outcome != "recorded" and \
            (decision is None or decision.kind == rules.CASCADE):
        evidence = await store.get(conn, incident.id)
        if evidence.parent_id is None or evidence.link_kind == rules.CASCADE:
            root = decision.parent if decision else await root_of(conn, evidence)
            outcome += await _adopt_downstream(ctx, conn, evidence, root)
    after_commit(conn, ctx.metrics.correlations.labels(outcome.split("+")[0]).inc)
    return {"decision": outcome, "parent": decision.parent.ref if decision else None}


async def decide(ctx: Context, conn: AsyncConnection, incident: Incident) -> Link | None:
    """Duplicate first (same problem twice), then cascade (a symptom of something upstream)."""
    if not rules.may_auto_link(incident) or incident.parent_id is not None:
        return None
    policy = ctx.policy
    twin, candidates = await queries.correlation_candidates(
        conn, fingerprint=incident.fingerprint,
        services=list(ctx.catalog.graph.upstream(incident.service)),
        since=incident.triggered_at - policy.cascade_window_before,
        until=incident.triggered_at + policy.cascade_window_after, exclude=incident.id,
        at=incident.triggered_at, usable=_may_be_parent)
    twin = twin if twin is not None and _may_be_parent(twin) else None
    candidates = [c for c in candidates if _may_be_parent(c)]
    link = rules.duplicate_link(incident, twin)
    if link is None:
        link = rules.cascade_link(incident, candidates, ctx.catalog.graph,
                                  before=policy.cascade_window_before,
                                  after=policy.cascade_window_after)
    if link is not None and link.kind == rules.DUPLICATE:
        # A duplicate points at the first report of the problem, wherever that sits in the story.
        twin = link.parent
        if twin.link_kind == rules.DUPLICATE and twin.parent_id is not None:
            twin = await store.get(conn, twin.parent_id) or twin
        return rules.Link(twin, link.kind, link.reason)
    if link is None:
        return None
    root = await root_of(conn, link.parent)
    if root.id == incident.id:
        return None  # the candidate already hangs under this incident: it is the root
    return link if root.id == link.parent.id else Link(root, link.kind, link.reason)


def _may_be_parent(incident: Incident) -> bool:
    """A public incident never hangs under a private one: its card would name it. Nor under one
    held back by a maintenance window: it has no card, and hanging anything under it would
    take that incident's card away too (another team's, for a cascade)."""
    return not incident.private and not held_back(incident)


async def _apply(ctx: Context, conn: AsyncConnection, incident: Incident,
                 decision: Link | None) -> str:
    first_time = not incident.correlated
    if decision is not None:
        await link(ctx, conn, incident, decision, by=FIREBELL)
        return decision.kind
    if first_time:
        if incident.source != DECLARED and await record_only(ctx, conn, incident):
            return "recorded"
        incident = await store.get(conn, incident.id)   # routing may have cleared its mark
        found = None if incident.recurrence_of else await _recurrence_of(conn, incident)
        incident = await store.update_fields(conn, incident, {
            "correlated": True, "recurrence_of": incident.recurrence_of or found}, ctx.now())
        if found:
            await note(conn, incident.id, kind="recurrence", actor=FIREBELL, at=ctx.now(),
                       text=f"recurrence of {ref(found)} (same fingerprint, resolved before)")
        await announce(ctx, conn, incident)
        return "root"
    return "unchanged"


async def _adopt_downstream(ctx: Context, conn: AsyncConnection, evidence: Incident,
                            root: Incident) -> str:
    """Late root: open incidents downstream of `evidence` that paged first now point at the
    root of its story."""
    policy, graph = ctx.policy, ctx.catalog.graph
    below = list(graph.downstream(evidence.service))
    candidates = await queries.adoptable_downstream(
        conn, below, since=evidence.triggered_at - policy.cascade_window_after,
        until=evidence.triggered_at + policy.cascade_window_before, exclude=evidence.id,
        root=root.id, at=ctx.now())
    parents = await store.get_many(conn, [c.parent_id for c in candidates if c.parent_id])
    proposals = rules.downstream_children(evidence, candidates, graph, parents=parents,
                                          root=root, before=policy.cascade_window_before,
                                          after=policy.cascade_window_after)
    adopted = 0
    for child, proposal in proposals[:ADOPT_PER_RUN]:
        locked = await store.get(conn, child.id, lock=True)
        if locked and rules.may_auto_link(locked):
            await link(ctx, conn, locked, proposal, by=FIREBELL)
            adopted += 1
        if await ctx.db.urgent_waiting():
            break  # webhooks wait for the database: let them in, continue in a moment
    if adopted < len(proposals):
        # A storm's root can have hundreds of symptoms: adopt them in short runs, so the
        # database is never held long while webhooks wait.
        await queue_correlation(ctx, conn, evidence)
    return f"+adopted {adopted}" if adopted else ""












async def _recurrence_of(conn: AsyncConnection, incident: Incident) -> int | None:
    previous = await queries.last_resolved_with_fingerprint(conn, incident.fingerprint,
                                                          exclude=incident.id)
    return previous.id if previous else None
