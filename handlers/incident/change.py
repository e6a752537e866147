"""One way to change an incident, whoever asks: write the fields, bump the version, put it on the
timeline, and queue what the change implies (card updates, follow-ups, a new correlation)."""
from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from handlers.context import Context
from handlers.effects.incident_cards import refresh_cards, refresh_children_cards
from handlers.incident import followups
from incidents import postmortem as pm_rules
from incidents.model import Actor, Incident
from storage import incidents as store
from storage import outbox
from storage.timeline import note

# Changes to these fields can change what an incident correlates with.
_CORRELATION_FIELDS = {"title", "service", "fingerprint", "status"}
# What a child's card shows of its root (the compact cascade card: status, level, acknowledged).
_SHOWN_ON_CHILDREN = ("status", "level", "acknowledged_by", "title", "service", "html_url")


async def change(ctx: Context, conn: AsyncConnection, incident: Incident, changes: dict[str, Any],
                 *, kind: str, text: str, actor: Actor, data: dict[str, Any] | None = None,
                 at=None) -> Incident:
    now = ctx.now()
    changes = _keep_postmortem_required(ctx, incident, changes)
    updated = await store.update_fields(conn, incident, changes, now)
    await note(conn, incident.id, kind=kind, text=text, actor=actor, data=data, at=at or now)
    await after_change(ctx, conn, incident, updated, actor)
    return updated


def _keep_postmortem_required(ctx: Context, incident: Incident,
                              changes: dict[str, Any]) -> dict[str, Any]:
    """Every change of level or link, whoever makes it (a command, a card, a webhook,
    correlation), passes here: the sticky rule sees the level before and after. (Before
    covers incidents stored before the flag existed.)"""
    levels = ctx.catalog.levels
    required = pm_rules.required_after(incident.postmortem_required, incident.level,
                                       incident.parent_id is None, levels)
    required = pm_rules.required_after(required, changes.get("level", incident.level),
                                       changes.get("parent_id", incident.parent_id) is None,
                                       levels)
    if required and not incident.postmortem_required:
        return {**changes, "postmortem_required": True}
    return changes


async def after_change(ctx: Context, conn: AsyncConnection, before: Incident,
                       after: Incident, actor: Actor) -> None:
    if before.correlated and after.correlated:  # never announced before: it has no cards yet
        await refresh_cards(ctx, conn, after.id)
    status_changed = before.status != after.status
    moved = (before.parent_id, before.link_kind) != (after.parent_id, after.link_kind)
    if after.parent_id and (status_changed or moved):
        await refresh_cards(ctx, conn, after.parent_id)   # its counts and child states
    if before.parent_id and before.parent_id != after.parent_id:
        await refresh_cards(ctx, conn, before.parent_id)  # it lost a child
    if after.correlated and any(getattr(before, f) != getattr(after, f)
                                for f in _SHOWN_ON_CHILDREN):
        await refresh_children_cards(ctx, conn, after.id)  # "root resolved" shows on children
    if status_changed:
        await followups.on_status_change(ctx, conn, before, after, actor)
    if before.level != after.level:
        await followups.on_level_change(ctx, conn, after)
    if after.acknowledged_by and not before.acknowledged_by:
        await followups.on_acknowledged(ctx, conn, after, actor)
    if after.correlated and any(getattr(before, f) != getattr(after, f)
                                for f in _CORRELATION_FIELDS):
        await queue_correlation(ctx, conn, after)
    elif after.routed and not after.correlated and before.level != after.level:
        await queue_correlation(ctx, conn, after)   # only recorded: its new level may post


async def queue_correlation(ctx: Context, conn: AsyncConnection, incident: Incident) -> None:
    await outbox.enqueue(ctx.db, conn, "correlate", now=ctx.now(), incident_id=incident.id,
                         coalesce_key=f"correlate:{incident.id}")
