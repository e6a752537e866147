"""Linking an incident to another: as a duplicate (the same problem twice) or a cascade child
(a symptom of something upstream). Correlation links automatically; people link and unlink by
hand (`incident link`, `unlink`, the card's "Not related"), and people decide last: the
automatic step never overrides them. Both timelines say why."""
from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from handlers.context import Context
from handlers.incident import followups
from handlers.incident.announce import announce, announce_cascade_child
from handlers.incident.change import change
from incidents import correlation as rules
from incidents.correlation import Link
from incidents.model import Actor, Incident
from storage import correlation as queries
from storage import incidents as store
from storage.timeline import note

HUMAN_LINK_REASON = "linked by hand"


class LinkRefused(ValueError):
    pass


async def link(ctx: Context, conn: AsyncConnection, child: Incident, proposal: Link, *,
               by: Actor) -> Incident:
    """Make `child` a duplicate or cascade child of `proposal.parent`; both timelines say why."""
    parent = proposal.parent
    grandchildren = await store.children(conn, child.id)
    # Only an incident with children can be an ancestor of `parent`: a new one (most links)
    # needs no walk up the parent's chain.
    ancestors = await _ancestor_ids(conn, parent) if grandchildren else []
    # Refuse before writing anything: correlate() carries on after a refusal (no savepoint).
    if rules.would_cycle(child, parent, ancestors):
        raise LinkRefused(f"{child.ref} cannot be linked under {parent.ref}: "
                          f"{parent.ref} is already linked under {child.ref}.")
    human = by.via != "firebell"
    updated = await change(ctx, conn, child, {
        "parent_id": parent.id, "link_kind": proposal.kind, "link_reason": proposal.reason,
        "link_by": "human" if human else "auto", "no_auto_link": False, "correlated": True,
    }, kind="linked", actor=by,
        text=f"linked to {parent.ref} as {proposal.kind}: {proposal.reason}")
    if proposal.kind == rules.DUPLICATE:
        # Each new duplicate keeps the duplicate window open a while longer.
        await queries.extend_duplicate_window(conn, parent.id,
                                            child.triggered_at + ctx.policy.duplicate_window)
    # The parent gains a child: its timeline says so and its cards refresh (counts, impacted
    # services, in after_change); its own fields change only when a duplicate extends its window.
    await note(conn, parent.id, kind="child_linked", actor=by, at=ctx.now(),
               text=f"{child.ref} ({child.service or 'unknown service'}) linked as "
                    f"{proposal.kind}: {proposal.reason}")
    await followups.on_linked(ctx, conn, updated, parent)
    await announce_cascade_child(ctx, conn, updated)
    for grandchild in grandchildren:
        # Cascades stay one level deep: the child's cascade children move to the new root.
        # Duplicates stay with their twin.
        if grandchild.link_by != "human" and grandchild.link_kind == rules.CASCADE:
            moved = await change(ctx, conn, grandchild, {"parent_id": parent.id},
                                 kind="linked", actor=by,
                                 text=f"moved to {parent.ref} with {child.ref}")
            await announce_cascade_child(ctx, conn, moved)
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
    root = await root_of(conn, parent)
    if root.id == child.id:
        raise LinkRefused(f"{parent.ref} is already linked under {child.ref}: linking "
                          f"{child.ref} under it would make a loop.")
    reason = f"{HUMAN_LINK_REASON} by {by.label}"
    if root.id != parent.id:
        reason += f" ({parent.ref} is itself linked under {root.ref})"
    return await link(ctx, conn, child, Link(root, kind, reason), by=by)


async def root_of(conn: AsyncConnection, incident: Incident) -> Incident:
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
