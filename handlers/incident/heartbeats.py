"""Heartbeats on the write path: a beat (from its door or Alertmanager's Watchdog) moves "last
seen" and resolves the incident of the silence it ends; the sweep (scheduler/periodic.py, under
a lease) opens "No heartbeat from <name> for N min" for the heartbeat's service once its
interval and grace have passed without a beat, one incident per silence, and resolves it if
beats came back without it hearing (a beat the door took while the database was busy).

A new heartbeat incident is stored like any other and correlation decides whether it is a root
(card, follow-ups) or folds into another incident; nothing here calls out."""
from __future__ import annotations

import logging
from datetime import datetime
from typing import Iterable

from sqlalchemy.ext.asyncio import AsyncConnection

from handlers.context import Context
from handlers.incident.change import change, queue_correlation
from incidents import heartbeats as rules
from incidents import postmortem as pm_rules
from incidents.fingerprint import title_fingerprint
from incidents.heartbeats import Heartbeat, Verdict
from incidents.lifecycle import OPEN, RESOLVED
from incidents.model import Actor, Incident
from storage import heartbeats as store
from storage import incidents as incidents_store
from storage.timeline import note

log = logging.getLogger("firebell.heartbeats")
SOURCE = "heartbeat"


def heartbeat_actor(name: str) -> Actor:
    return Actor(f"heartbeat {name}", SOURCE)


async def record_beats(ctx: Context, names: Iterable[str]) -> None:
    """Beats received now, one transaction: each moves its heartbeat's last beat forward and
    ends its silence (its incident resolves)."""
    async with ctx.db.write(urgent=True) as conn:
        for name in dict.fromkeys(names):
            await record_beat(ctx, conn, name, ctx.now())
    ctx.wake_worker()


async def record_beat(ctx: Context, conn: AsyncConnection, name: str, at: datetime) -> None:
    await store.ensure(ctx.db, conn, name, at)
    row = await store.get(ctx.db, conn, name, lock=True)
    await store.beat(conn, name, at)
    if row["state"] != rules.UP or row["incident_id"]:
        await _beats_resumed(ctx, conn, name, row["incident_id"], at)


async def _beats_resumed(ctx: Context, conn: AsyncConnection, name: str,
                         incident_id: int | None, at: datetime) -> None:
    await store.set_fields(conn, name, at, state=rules.UP, incident_id=None)
    if incident_id is None:
        return
    incident = await incidents_store.get(conn, incident_id, lock=True)
    if incident is not None and incident.status == OPEN:
        await change(ctx, conn, incident, {"status": RESOLVED, "resolved_at": at},
                     kind="resolved", text=f"beats from {name} resumed",
                     actor=heartbeat_actor(name), at=at)


async def sweep(ctx: Context) -> dict[str, str]:
    """Look at every heartbeat of the catalog once; returns name -> state."""
    states = {}
    for beat in ctx.catalog.heartbeats.values():
        async with ctx.db.write() as conn:
            states[beat.name] = await _sweep_one(ctx, conn, beat)
    ctx.wake_worker()
    return states


async def _sweep_one(ctx: Context, conn: AsyncConnection, beat: Heartbeat) -> str:
    now = ctx.now()
    await store.ensure(ctx.db, conn, beat.name, now)
    row = await store.get(ctx.db, conn, beat.name, lock=True)
    found = rules.verdict(beat, last_beat=row["last_beat_at"], watched_since=row["watched_since"],
                          last_swept=row["swept_at"], now=now)
    incident_id = row["incident_id"]
    if found.state == rules.MISSING and incident_id is None:
        incident_id = await _open_silence(ctx, conn, beat, found, now)
    elif found.state != rules.MISSING and incident_id is not None:
        await _beats_resumed(ctx, conn, beat.name, incident_id, row["last_beat_at"] or now)
        incident_id = None
    await store.set_fields(conn, beat.name, now, state=found.state, swept_at=now,
                           watched_since=found.watched_since, incident_id=incident_id)
    return found.state


async def _open_silence(ctx: Context, conn: AsyncConnection, beat: Heartbeat, found: Verdict,
                        now: datetime) -> int | None:
    """The incident of this silence (None when one existed and was already closed by people:
    a silence opens one incident, never a second)."""
    external_id = rules.outage_id(beat, found.silent_since)
    existing = await incidents_store.get_by_external(conn, SOURCE, external_id)
    if existing is not None:
        return existing.id if existing.status == OPEN else None
    row = _incident_row(ctx, beat, external_id, found.silent_for(now), now)
    ids = await incidents_store.insert_many(ctx.db, conn, [row], now)
    incident_id = ids[(SOURCE, external_id)]
    await note(conn, incident_id, kind="triggered", actor=heartbeat_actor(beat.name), at=now,
               text=_opened_text(beat, found, now))
    incident = await incidents_store.get(conn, incident_id)
    await queue_correlation(ctx, conn, incident)
    log.warning("heartbeat missing", extra={"incident": incident.ref, "heartbeat": beat.name})
    return incident_id


def _incident_row(ctx: Context, beat: Heartbeat, external_id: str, silent_for, now: datetime):
    catalog = ctx.catalog
    title = rules.missing_title(beat, silent_for)
    service = catalog.service(beat.service)
    level = beat.level or catalog.levels.level_for(title)
    return {
        "source": SOURCE, "external_id": external_id, "title": title,
        "service": beat.service, "team": service.owner_team if service else None,
        "level": level, "status": OPEN, "triggered_at": now, "last_event_at": now,
        "postmortem_required": pm_rules.required_after(False, level, True, catalog.levels),
        "fingerprint": title_fingerprint(beat.service, title),
        "duplicate_window_until": now + ctx.policy.duplicate_window,
        "details": {"heartbeat": beat.name}}


def _opened_text(beat: Heartbeat, found: Verdict, now: datetime) -> str:
    # A length of time, no clock time: the entry is read on cards in many zones.
    never = "; none since Firebell started watching" if found.silent_since == \
        found.watched_since else ""
    return (f"no heartbeat from {beat.name} for {rules.format_duration(found.silent_for(now))} "
            f"({beat.every()}{never})")


def heartbeat_of(incident: Incident) -> str | None:
    """The heartbeat whose silence this incident is, if it is one."""
    return incident.details.get("heartbeat") if incident.source == SOURCE else None
