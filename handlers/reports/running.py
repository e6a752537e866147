"""Reminders while an incident runs, checked every 30 s by the periodic scheduler:

- a root incident at a postmortem level with no commander 10 minutes after its trigger: one
  reminder in its team's channel, @mentioning the service's on-call;
- a root incident at a level with an update cadence (`levels: update_every:`) whose
  stakeholders have not heard from it for a cadence: a reminder in the channel @mentioning its
  commander (else the on-call), at most once per cadence. Resolving the incident stops them;
- a root incident at a paging level (`levels: ack_within:`) nobody acknowledged in that time:
  one reminder in the channel @mentioning the service's on-call and standby. Acknowledging it
  first means none is sent.

Each is recorded (incident_reminders, unique) in the transaction that queues it, so replicas
racing each other send it once, and a missed tick sends it late rather than twice."""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncConnection

from cards.reminder import Who
from cards.running_messages import (ack_reminder_card, commander_reminder_card,
                                    update_reminder_card)
from handlers.context import Context
from handlers.reads.privacy import home_of
from handlers.effects.channel_messages import queue_card_message
from handlers.effects.incident_cards import refresh_cards
from handlers.reads.oncall import who_is_on_call
from incidents import updates as rules
from incidents.catalog import OnCallNow
from incidents.model import FIREBELL, Incident
from storage import running, updates
from storage import incidents as store
from storage.timeline import note

log = logging.getLogger("firebell.reminders")
COMMANDER_AFTER = timedelta(minutes=10)


async def remind_running(ctx: Context, *, now: datetime | None = None) -> dict[str, int]:
    now = now or ctx.now()
    sent = {"commander": await remind_commanderless(ctx, now),
            "updates": await remind_updates(ctx, now),
            "unacknowledged": await escalate_unacknowledged(ctx, now)}
    if any(sent.values()):
        log.info("running-incident reminders queued", extra=sent)
        ctx.wake_worker()
    return sent


async def remind_commanderless(ctx: Context, now: datetime) -> int:
    levels = sorted(ctx.catalog.levels.needs_postmortem)
    queued = 0
    async with ctx.db.write() as conn:
        rows = await running.without_commander(conn, levels=levels,
                                               triggered_before=now - COMMANDER_AFTER)
        oncall = await who_is_on_call(ctx, conn) if rows else None
        for row in rows:
            if not await running.claim_reminder(ctx.db, conn, row["id"], kind="commander",
                                                key="", now=now):
                continue  # another replica just did
            queued += await _commander_reminder(ctx, conn, row, oncall, now)
    return queued


async def _commander_reminder(ctx: Context, conn: AsyncConnection, row: dict,
                              oncall: OnCallNow, now: datetime) -> int:
    incident = await store.get(conn, row["id"])
    channel = await home_of(conn, incident.id, incident.team, incident.private)
    if channel is None:
        return 0
    who = _oncall_of(ctx, incident, oncall)
    card = commander_reminder_card(incident, who, (now - incident.triggered_at).total_seconds())
    await queue_card_message(ctx, conn, conversation_id=channel, card=card,
                             summary=f"{incident.ref} has no incident commander",
                             once_key=f"reminder:commander:{incident.id}",
                             incident_id=incident.id)
    await note(conn, incident.id, kind="reminder", actor=FIREBELL, at=now,
               text="no incident commander after 10 min: reminded "
                    + (who.name if who else "the channel"))
    return 1


async def remind_updates(ctx: Context, now: datetime) -> int:
    cadence = ctx.catalog.levels.update_every
    queued = 0
    async with ctx.db.write() as conn:
        rows = await running.open_at_levels(conn, sorted(cadence))
        last = await updates.last_posted(conn, [r["id"] for r in rows])
        oncall = None
        for row in rows:
            since = last.get(row["id"]) or row["triggered_at"]
            spell = rules.overdue_spell(since, now, cadence[row["level"]])
            if spell is None:
                continue
            key = f"{since:%Y%m%dT%H%M%S.%f}#{spell}"
            if not await running.claim_reminder(ctx.db, conn, row["id"], kind="update",
                                                key=key, now=now):
                continue
            oncall = oncall or await who_is_on_call(ctx, conn)
            queued += await _update_reminder(ctx, conn, row, since, key, oncall, now,
                                             first=row["id"] not in last)
    return queued


async def _update_reminder(ctx: Context, conn: AsyncConnection, row: dict, since: datetime,
                           key: str, oncall: OnCallNow, now: datetime, *, first: bool) -> int:
    incident = await store.get(conn, row["id"])
    channel = await home_of(conn, incident.id, incident.team, incident.private)
    if channel is None:
        return 0
    commander = ctx.catalog.person(incident.commander)
    who = Who(commander.email, commander.name) if commander else _oncall_of(ctx, incident,
                                                                            oncall)
    whose = "incident commander" if commander else "on call"
    every = rules.cadence_text(ctx.catalog.levels.update_every[incident.level])
    card = update_reminder_card(incident, who, whose, (now - since).total_seconds(), every,
                                first=first)
    await queue_card_message(ctx, conn, conversation_id=channel, card=card,
                             summary=f"{incident.ref}: stakeholder update due",
                             once_key=f"reminder:update:{incident.id}:{key}"[:300],
                             incident_id=incident.id)
    await note(conn, incident.id, kind="reminder", actor=FIREBELL, at=now,
               text=f"stakeholder update overdue (every {every} at {incident.level}): reminded "
                    + (who.name if who else "the channel"))
    await refresh_cards(ctx, conn, incident.id)  # the card says it is overdue
    return 1


async def escalate_unacknowledged(ctx: Context, now: datetime) -> int:
    within = ctx.catalog.levels.ack_within
    queued = 0
    async with ctx.db.write() as conn:
        rows = await running.unacknowledged(conn, sorted(within))
        oncall = None
        for row in rows:
            if now - row["triggered_at"] < within[row["level"]]:
                continue
            if not await running.claim_reminder(ctx.db, conn, row["id"], kind="ack", key="",
                                                now=now):
                continue  # another replica just did
            oncall = oncall or await who_is_on_call(ctx, conn)
            queued += await _ack_reminder(ctx, conn, row, oncall, now)
    return queued


async def _ack_reminder(ctx: Context, conn: AsyncConnection, row: dict, oncall: OnCallNow,
                        now: datetime) -> int:
    incident = await store.get(conn, row["id"])
    # A private incident's reminders go to its private chat, as every message about it does.
    channel = await home_of(conn, incident.id, incident.team, incident.private)
    if channel is None:
        return 0
    primary, standby = oncall.services.get(incident.service or "", (None, None))
    who = [_who(ctx, e) for e in (primary, standby)]
    within = rules.cadence_text(ctx.catalog.levels.ack_within[incident.level])
    card = ack_reminder_card(incident, *who, (now - incident.triggered_at).total_seconds(),
                             within)
    await queue_card_message(ctx, conn, conversation_id=channel, card=card,
                             summary=f"{incident.ref} is not acknowledged",
                             once_key=f"reminder:ack:{incident.id}", incident_id=incident.id)
    names = " and ".join(w.name for w in who if w) or "the channel"
    await note(conn, incident.id, kind="reminder", actor=FIREBELL, at=now,
               text=f"not acknowledged within {within} at {incident.level}: reminded {names}")
    return 1


def _who(ctx: Context, email: str | None) -> Who | None:
    if not email:
        return None
    person = ctx.catalog.person(email)
    return Who(email, person.name if person else email)


def _oncall_of(ctx: Context, incident: Incident, oncall: OnCallNow) -> Who | None:
    primary, _ = oncall.services.get(incident.service or "", (None, None))
    if not primary:
        return None
    person = ctx.catalog.person(primary)
    return Who(primary, person.name if person else primary)
