"""Maintenance windows applied. While a window is on, a new incident of its service or team is
held back: stored (with its timeline) and marked with the window, but never announced, so it
gets no card, war room, JIRA task, e-mail or reminder (they all follow the announcement), and it
is nobody's cascade parent. When the window ends it is closed out once: a summary card in the
channel, and every held-back incident still firing goes through correlation again, which now
announces it normally."""
from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from cards.maintenance import maintenance_summary_card
from handlers.context import Context
from handlers.effects.channel_messages import queue_card_message
from handlers.incident.change import queue_correlation
from incidents import maintenance as rules
from incidents.maintenance import SERVICE, Tally, window_ref
from incidents.model import FIREBELL, Actor, Incident
from storage import conversations
from storage import incidents as store
from storage import maintenance as windows
from storage.timeline import note

log = logging.getLogger("firebell.maintenance")


def held_back(incident: Incident) -> bool:
    """Stored during a window (or only recorded, by a routing rule) and not announced since:
    it has no card, so nothing may hang under it."""
    return (incident.maintenance_id is not None or incident.routed is not None) \
        and not incident.correlated


async def windows_on(ctx: Context, conn: AsyncConnection, now: datetime) -> list[dict]:
    """Every window on now, the catalog's recurring occurrences stored first (once)."""
    for recurring in ctx.catalog.maintenance:
        start = recurring.started_last(now)
        if start is not None:
            await windows.ensure_recurring(
                ctx.db, conn, key=recurring.key(start), target_kind=recurring.target_kind,
                target=recurring.target, starts_at=start, ends_at=start + recurring.duration,
                reason=recurring.reason)
    return await windows.on_now(conn, now)


async def hold_back(ctx: Context, conn: AsyncConnection, incident: Incident) -> bool:
    """Mark a new incident as in maintenance when a window covers it; False when none does."""
    now = ctx.now()
    window = next((w for w in await windows_on(ctx, conn, now)
                   if rules.covers(w["target_kind"], w["target"], incident.service,
                                   incident.team)), None)
    if window is None:
        return False
    if incident.maintenance_id != window["id"]:
        await windows.mute(conn, incident.id, window["id"])
        reason = f" ({window['reason']})" if window.get("reason") else ""
        await note(conn, incident.id, kind="maintenance", actor=FIREBELL, at=now,
                   text=f"in maintenance {window_ref(window['id'])}{reason}: stored without a "
                        f"card, war room, JIRA task, e-mail or reminder until "
                        f"{window['ends_at'].astimezone(ctx.catalog.timezone):%H:%M} "
                        f"({ctx.catalog.timezone.key})")
    return True


def target_team(ctx: Context, window: dict[str, Any]) -> str | None:
    if window["target_kind"] == SERVICE:
        service = ctx.catalog.service(window["target"])
        return service.owner_team if service else None
    return window["target"]


def target_label(ctx: Context, window: dict[str, Any]) -> str:
    if window["target_kind"] == SERVICE:
        return window["target"]
    return ctx.catalog.team_name(window["target"])


async def end_early(ctx: Context, conn: AsyncConnection, window_id: int,
                    actor: Actor) -> dict[str, Any] | None:
    """`incident maintenance end MW-n`: end it now and close it out in the same transaction;
    None when it was already over."""
    if not await windows.end_now(conn, window_id, by=actor.label, now=ctx.now()):
        return None
    window = await windows.get(conn, window_id)
    await close_out(ctx, conn, window)
    return window


async def close_out(ctx: Context, conn: AsyncConnection, window: dict[str, Any]) -> Tally | None:
    """Once per window: still-firing incidents announced, one summary card in the channel."""
    now = ctx.now()
    if not await windows.claim_close_out(conn, window["id"], now):
        return None  # another replica (or an `end`) did
    stored = await windows.stored_in(conn, window["id"])
    still_open = [r for r in stored if r["status"] == "open"]
    for row in still_open:
        if not row["correlated"]:
            await note(conn, row["id"], kind="maintenance", actor=FIREBELL, at=now,
                       text=f"maintenance {window_ref(window['id'])} is over and this is still "
                            "open: announced now")
            await queue_correlation(ctx, conn, await store.get(conn, row["id"]))
    tally = Tally(len(stored), sum(r["status"] != "open" for r in stored),
                  tuple((r["id"], r["title"]) for r in still_open))
    channel = await conversations.channel_for(conn, target_team(ctx, window))
    if channel is None:
        log.warning("maintenance %s over; no channel for its summary", window_ref(window["id"]))
        return tally
    card = maintenance_summary_card(window, tally, target_label=target_label(ctx, window),
                                    ended_by=window.get("ended_by"))
    await queue_card_message(ctx, conn, conversation_id=channel, card=card,
                             summary=f"Maintenance {window_ref(window['id'])} is over: "
                                     f"{tally.text}",
                             once_key=f"maintenance:{window['id']}:summary")
    return tally


async def close_out_due(ctx: Context, *, now: datetime | None = None) -> int:
    """The periodic look: recurring occurrences that started are stored (so each gets its
    summary even if nothing alerted), and every window that is over is closed out."""
    now = now or ctx.now()
    async with ctx.db.write() as conn:
        await windows_on(ctx, conn, now)
        due = await windows.over(conn, now)
    closed = 0
    for window in due:
        async with ctx.db.write() as conn:
            closed += await close_out(ctx, conn, window) is not None
    if closed:
        ctx.wake_worker()
    return closed
