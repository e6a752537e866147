"""Correlation, as an outbox job that runs right after an incident is stored or changes, and the
human link/unlink commands. A new incident is announced (card, war room, ...) only once this has
decided it is a root; duplicates and cascade children fold into their root instead."""
from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from handlers.changes import change, note, queue_correlation
from handlers.context import Context
from handlers.jobs import local_job
from handlers.announce import announce
from incidents import correlation as rules
from incidents.correlation import Link
from incidents.model import FIREBELL, Actor, Incident
from storage import incidents as store
from storage.outbox import Job

HUMAN_LINK_REASON = "linked by hand"
ADOPT_PER_RUN = 20


class LinkRefused(ValueError):
    pass


async def announce_undecided(ctx: Context, conn: AsyncConnection, job: Job) -> None:
    """Correlation kept failing for this incident: announce it as a root rather than leave it
    without a card (a person can still link it), and say so on its timeline."""
    incident = await store.get(conn, job.incident_id, lock=True)
    if incident is None or incident.correlated:
        return
    incident = await store.update_fields(conn, incident, {"correlated": True}, ctx.now())
    await note(conn, incident.id, kind="correlation_failed", actor=FIREBELL, at=ctx.now(),
               text="correlation could not decide (see the logs); announced on its own — "
                    "use `incident link` if it belongs to another incident")
    await announce(ctx, conn, incident)


async def prepare(ctx: Context) -> None:
    """At start-up: compile the decision's statements before the first incident needs them."""
    async with ctx.db.write() as conn:
        await store.prepare_correlation_candidates(conn)


@local_job("correlate", on_give_up=announce_undecided)
async def correlate(ctx: Context, conn: AsyncConnection, job: Job) -> dict | None:
    # One decision at a time, everywhere: two incidents deciding about each other at once
    # would each miss the other's link (and windows extended by it).
    await ctx.db.serialize(conn, "correlation")
    incident = await store.get(conn, job.incident_id, lock=True)
    if incident is None:
        return None
    decision = await decide(ctx, conn, incident)
    try:
        outcome = await _apply(ctx, conn, incident, decision)
    except LinkRefused as exc:  # refused before anything was written: keep what is there
        decision, outcome = None, f"kept: {exc}"
    if incident.is_open and (decision is None or decision.kind == rules.CASCADE):
        evidence = await store.get(conn, incident.id)
        if evidence.parent_id is None or evidence.link_kind == rules.CASCADE:
            root = decision.parent if decision else await _root_of(conn, evidence)
            outcome += await _adopt_downstream(ctx, conn, evidence, root)
    ctx.metrics.correlations.labels(outcome.split("+")[0]).inc()
    return {"decision": outcome, "parent": decision.parent.ref if decision else None}


async def decide(ctx: Context, conn: AsyncConnection, incident: Incident) -> Link | None:
    """Duplicate first (same problem twice), then cascade (a symptom of something upstream)."""
    if not rules.may_auto_link(incident) or incident.parent_id is not None:
        return None
    policy = ctx.policy
    twin, candidates = await store.correlation_candidates(
        conn, fingerprint=incident.fingerprint,
        services=list(ctx.catalog.graph.upstream(incident.service)),
        since=incident.triggered_at - policy.cascade_window_before,
        until=incident.triggered_at + policy.cascade_window_after, exclude=incident.id,
        at=incident.triggered_at)
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
    root = await _root_of(conn, link.parent)
    if root.id == incident.id:
        return None  # the candidate already hangs under this incident: it is the root
    return link if root.id == link.parent.id else Link(root, link.kind, link.reason)


async def _apply(ctx: Context, conn: AsyncConnection, incident: Incident,
                 decision: Link | None) -> str:
    first_time = not incident.correlated
    if decision is not None:
        await link(ctx, conn, incident, decision, by=FIREBELL)
        return decision.kind
    if first_time:
        found = None if incident.recurrence_of else await _recurrence_of(conn, incident)
        incident = await store.update_fields(conn, incident, {
            "correlated": True, "recurrence_of": incident.recurrence_of or found}, ctx.now())
        if found:
            await note(conn, incident.id, kind="recurrence", actor=FIREBELL, at=ctx.now(),
                       text=f"recurrence of INC-{found} (same fingerprint, resolved before)")
        await announce(ctx, conn, incident)
        return "root"
    return "unchanged"


async def _adopt_downstream(ctx: Context, conn: AsyncConnection, evidence: Incident,
                            root: Incident) -> str:
    """Late root: open incidents downstream of `evidence` that paged first now point at the
    root of its story."""
    policy, graph = ctx.policy, ctx.catalog.graph
    below = list(graph.downstream(evidence.service))
    candidates = await store.adoptable_downstream(
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


async def link(ctx: Context, conn: AsyncConnection, child: Incident, proposal: Link, *,
               by: Actor) -> Incident:
    """Make `child` a duplicate or cascade child of `proposal.parent`; both timelines say why."""
    parent = proposal.parent
    ancestors = await _ancestor_ids(conn, parent)
    # Refuse before writing anything: correlate() carries on after a refusal (no savepoint).
    if rules.would_cycle(child, parent, ancestors):
        raise LinkRefused(f"{child.ref} cannot be linked under {parent.ref}: "
                          f"{parent.ref} is already linked under {child.ref}.")
    human = by.via != "firebell"
    updated = await change(ctx, conn, child, {
        "parent_id": parent.id, "link_kind": proposal.kind, "link_reason": proposal.reason,
        "link_by": "human" if human else "auto", "no_auto_link": False, "correlated": True,
    }, kind="linked", actor=by, text=f"linked to {parent.ref} as {proposal.kind}: {proposal.reason}")
    if proposal.kind == rules.DUPLICATE:
        # Each new duplicate keeps the duplicate window open a while longer.
        await store.extend_duplicate_window(conn, parent.id,
                                            child.triggered_at + ctx.policy.duplicate_window)
    # The parent gains a child: its timeline says so and its cards refresh (counts, impacted
    # services, in after_change); its own fields change only when a duplicate extends its window.
    await note(conn, parent.id, kind="child_linked", actor=by, at=ctx.now(),
               text=f"{child.ref} ({child.service or 'unknown service'}) linked as "
                    f"{proposal.kind}: {proposal.reason}")
    from handlers import followups  # follow-ups build on changes; imported late
    await followups.on_linked(ctx, conn, updated, parent)
    for grandchild in await store.children(conn, child.id):
        # Cascades stay one level deep: the child's cascade children move to the new root.
        # Duplicates stay with their twin.
        if grandchild.link_by != "human" and grandchild.link_kind == rules.CASCADE:
            await change(ctx, conn, grandchild, {"parent_id": parent.id}, kind="linked",
                         actor=by, text=f"moved to {parent.ref} with {child.ref}")
    return updated


async def unlink(ctx: Context, conn: AsyncConnection, child: Incident, *, by: Actor) -> Incident:
    if child.parent_id is None:
        raise LinkRefused(f"{child.ref} is not linked to another incident.")
    parent = await store.get(conn, child.parent_id, lock=True)
    updated = await change(ctx, conn, child, {
        "parent_id": None, "link_kind": None, "link_reason": None, "link_by": "human",
        "no_auto_link": True, "correlated": True,
    }, kind="unlinked", actor=by, text=f"unlinked from {parent.ref}: not related "
                                        f"(was {child.link_kind}); automatic linking is off for "
                                        f"{child.ref}")
    await note(conn, parent.id, kind="child_unlinked", actor=by, at=ctx.now(),
               text=f"{child.ref} unlinked by hand: not related")
    await announce(ctx, conn, updated)  # a root now: it gets its own card where it had none
    return updated


async def human_link(ctx: Context, conn: AsyncConnection, child: Incident, parent: Incident, *,
                     by: Actor) -> Incident:
    if child.id == parent.id:
        raise LinkRefused("An incident cannot be linked to itself.")
    kind = rules.DUPLICATE if child.fingerprint == parent.fingerprint else rules.CASCADE
    root = await _root_of(conn, parent)
    if root.id == child.id:
        raise LinkRefused(f"{parent.ref} is already linked under {child.ref}: linking "
                          f"{child.ref} under it would make a loop.")
    reason = f"{HUMAN_LINK_REASON} by {by.label}"
    if root.id != parent.id:
        reason += f" ({parent.ref} is itself linked under {root.ref})"
    return await link(ctx, conn, child, Link(root, kind, reason), by=by)


async def _root_of(conn: AsyncConnection, incident: Incident) -> Incident:
    seen = {incident.id}
    while incident.parent_id is not None and incident.parent_id not in seen:
        parent = await store.get(conn, incident.parent_id)
        if parent is None:
            break
        seen.add(parent.id)
        incident = parent
    return incident


async def _ancestor_ids(conn: AsyncConnection, incident: Incident) -> list[int]:
    ids, current = [], incident
    while current.parent_id is not None and current.parent_id not in ids:
        ids.append(current.parent_id)
        current = await store.get(conn, current.parent_id)
        if current is None:
            break
    return ids


async def _recurrence_of(conn: AsyncConnection, incident: Incident) -> int | None:
    previous = await store.last_resolved_with_fingerprint(conn, incident.fingerprint,
                                                          exclude=incident.id)
    return previous.id if previous else None
