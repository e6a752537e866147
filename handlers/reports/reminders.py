"""Reminders, run by the periodic scheduler:

- a postmortem still in draft after its due date (N business days after the resolve): a card
  in the team channel that @mentions the owner, and an e-mail to the owner; again every
  FIREBELL_REMINDER_INTERVAL_HOURS, on working days and hours only, until the RCA is complete;
- action items past their JIRA due date and not done: the same, per owner;
- an open incident nobody has updated for FIREBELL_STALE_INCIDENT_HOURS: a nudge in its war
  room (when Firebell is in that chat) or in the thread of its card, and a timeline entry, so
  the next nudge comes only after another quiet spell.

Every reminder is marked sent in the same transaction that queues it (conditionally on what was
read), so replicas racing each other send it once.
"""
from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncConnection

from cards.reminder import (DueItem, Who, action_reminder_card, postmortem_reminder_card,
                            stale_nudge_card)
from handlers.context import Context
from handlers.effects.channel_messages import queue_card_message
from handlers.effects.email import queue_email
from handlers.reads import links
from handlers.reads.privacy import home_of
from handlers.reports.settings import ReportSettings
from incidents import postmortem as pm_rules
from incidents.metrics import duration
from incidents.model import FIREBELL, ref
from incidents.periods import local_date
from mail.reminders import action_reminder_email, postmortem_reminder_email
from storage import conversations
from storage import postmortems as pm_store
from storage import reminders as store
from storage import reports as deliveries
from storage.timeline import note

log = logging.getLogger("firebell.reminders")
WORKING_HOURS = (9, 18)


def working_time(now: datetime, tz) -> bool:
    """People are reminded on working days and hours, local time, not at 3 a.m."""
    local = now.astimezone(tz)
    return local.weekday() < 5 and WORKING_HOURS[0] <= local.hour < WORKING_HOURS[1]


async def send_reminders(ctx: Context, settings: ReportSettings, *,
                         now: datetime | None = None) -> dict[str, int]:
    now = now or ctx.now()
    sent = {"postmortems": 0, "action_items": 0, "stale": 0}
    if working_time(now, ctx.catalog.timezone):
        sent["postmortems"] = await remind_postmortems(ctx, settings, now)
        sent["action_items"] = await remind_action_items(ctx, settings, now)
    sent["stale"] = await nudge_stale(ctx, settings, now)
    if any(sent.values()):
        log.info("reminders queued", extra=sent)
        ctx.wake_worker()
    return sent


def _who(ctx: Context, email: str | None) -> Who:
    person = ctx.catalog.person(email)
    return Who(email, person.name if person else (email or "nobody"))


async def _record(ctx: Context, conn: AsyncConnection, kind: str, period: str, team: str | None,
                  jobs: list[str], now: datetime) -> None:
    """Shown by `incident report history` (unique like every delivery)."""
    await deliveries.claim_delivery(ctx.db, conn, kind=kind, period=period[:40],
                                    target=f"channel:{team or 'default'}", now=now,
                                    detail={"jobs": jobs})


async def remind_postmortems(ctx: Context, settings: ReportSettings, now: datetime) -> int:
    days = ctx.policy.postmortem_due_business_days
    tz = ctx.catalog.timezone
    queued = 0
    async with ctx.db.write() as conn:
        rows = await store.postmortems_due(conn, now=now,
                                           undated_before=now - timedelta(days=days),
                                           reminded_before=now - settings.reminder_interval)
        for row in rows:
            due = row["due_at"] or pm_rules.due_after(row["resolved_at"], days, tz)
            if due > now:
                continue
            if not await store.mark_postmortem_reminded(conn, row["incident_id"],
                                                        row["reminders"], now):
                continue  # another replica just did
            await _queue_postmortem(ctx, conn, row, due, row["reminders"] + 1, now)
            queued += 1
    return queued


async def _queue_postmortem(ctx: Context, conn: AsyncConnection, row: dict, due: datetime,
                            number: int, now: datetime) -> None:
    incident_id = row["incident_id"]
    postmortem = await pm_store.get(conn, incident_id)
    missing = pm_rules.missing(postmortem, await pm_store.action_items(conn, incident_id))
    page = links.postmortem_page(ctx, postmortem)
    owner = _who(ctx, row["owner"])
    key = f"reminder:postmortem:{incident_id}:{number}"
    jobs = []
    channel = await home_of(conn, incident_id, row["team"], row["private"])
    if channel:
        card = postmortem_reminder_card(incident_id, row["title"], owner, due, number, missing,
                                        page)
        await queue_card_message(ctx, conn, conversation_id=channel, card=card,
                                 summary=f"Postmortem overdue: {ref(incident_id)}",
                                 once_key=f"{key}:card", incident_id=incident_id)
        jobs.append(f"{key}:card")
    team = ctx.catalog.team(row["team"])
    to = [row["owner"]] if row["owner"] else ([team.email] if team and team.email else [])
    if to and ctx.configured.email:
        subject, text, html = postmortem_reminder_email(incident_id, row["title"], owner, due,
                                                        missing, page,
                                                        zone=ctx.catalog.timezone)
        await queue_email(ctx, conn, to=to, subject=subject, text=text, html=html,
                          once_key=f"{key}:email", incident_id=incident_id)
        jobs.append(f"{key}:email")
    await _record(ctx, conn, "postmortem_reminder", f"{ref(incident_id)}#{number}", row["team"],
                  jobs, now)


async def remind_action_items(ctx: Context, settings: ReportSettings, now: datetime) -> int:
    today = local_date(now, ctx.catalog.timezone)
    queued = 0
    async with ctx.db.write() as conn:
        rows = await store.actions_due(conn, today=today,
                                       reminded_before=now - settings.reminder_interval)
        claimed: dict[str, list[dict]] = defaultdict(list)
        for row in rows:
            if await store.mark_action_reminded(conn, row["id"], row["last_reminded_at"], now):
                claimed[row["owner"].lower()].append(row)
        for owner_email, items in claimed.items():
            await _queue_actions(ctx, conn, owner_email, items, today, now)
            queued += 1
    return queued


async def _queue_actions(ctx: Context, conn: AsyncConnection, owner_email: str,
                         rows: list[dict], today, now: datetime) -> None:
    owner = _who(ctx, owner_email)
    stamp = now.strftime("%Y%m%dT%H%M")
    ids = ",".join(str(r["id"]) for r in rows)[:120]
    key = f"reminder:actions:{owner_email}:{stamp}:{ids}"[:280]

    def item(r: dict) -> DueItem:
        return DueItem(r["incident_id"], r["title"], r["due_date"], r["jira_key"],
                       links.jira_task(ctx, r["jira_key"]))

    # A private incident's items are reminded of in its private chat, never in a channel.
    by_place: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        by_place[(r["incident_id"], r["team"], True) if r["private"]
                 else (None, r["team"], False)].append(r)
    for (incident_id, team, private), team_rows in by_place.items():
        channel = await home_of(conn, incident_id, team, private)
        place = f"{team}:{ref(incident_id)}" if private else team
        if channel:
            card = action_reminder_card(owner, [item(r) for r in team_rows], today)
            await queue_card_message(ctx, conn, conversation_id=channel, card=card,
                                     summary=f"Action items overdue for {owner.name}",
                                     once_key=f"{key}:card:{place}"[:300])
        await _record(ctx, conn, "action_reminder", f"{owner_email[:24]}@{stamp}", team,
                      [f"{key}:card:{place}"[:300], f"{key}:email"[:300]], now)
    if not ctx.configured.email:
        return
    subject, text, html = action_reminder_email(owner, [item(r) for r in rows])
    await queue_email(ctx, conn, to=[owner_email], subject=subject, text=text, html=html,
                      once_key=f"{key}:email"[:300])


async def nudge_stale(ctx: Context, settings: ReportSettings, now: datetime) -> int:
    queued = 0
    async with ctx.db.write() as conn:
        for row in await store.stale_incidents(conn, quiet_since=now - settings.stale_after):
            if await _nudge(ctx, conn, row, now):
                queued += 1
    return queued


async def _nudge(ctx: Context, conn: AsyncConnection, row: dict, now: datetime) -> bool:
    incident_id = row["id"]
    last = row["last_update"] or row["triggered_at"]
    where = await _nudge_conversation(ctx, conn, incident_id, row["team"], row["private"])
    if where is None:
        return False
    conversation_id, place = where
    commander = _who(ctx, row["commander"]) if row["commander"] and "@" in row["commander"] \
        else None
    card = stale_nudge_card(incident_id, row["title"], row["version"],
                            (now - last).total_seconds(), commander)
    key = f"nudge:{incident_id}:{last.strftime('%Y%m%dT%H%M%S')}"
    if not await queue_card_message(ctx, conn, conversation_id=conversation_id, card=card,
                                    summary=f"{ref(incident_id)}: no update for a while",
                                    once_key=key, incident_id=incident_id):
        return False
    # The nudge is on the timeline too: the next one comes after another quiet spell. (A
    # length of time, not a clock time: the entry is shown on cards read in many zones.)
    await note(conn, incident_id, kind="nudge", actor=FIREBELL, at=now,
               text=f"no update for {duration((now - last).total_seconds())}: nudged {place}")
    return True


async def _nudge_conversation(ctx: Context, conn: AsyncConnection, incident_id: int,
                              team: str | None, private: bool) -> tuple[str, str] | None:
    """The war-room chat when Firebell is a member of it, else the thread under the incident's
    card in its channel, else the team's channel. A private incident: its private chat only."""
    room = await pm_store.war_room(conn, incident_id)
    if room and room.get("chat_id") and await conversations.get(conn, room["chat_id"]):
        return room["chat_id"], "the war room"
    if private:
        return None
    for msg in await conversations.card_messages_of(conn, incident_id):
        channel = await conversations.get(conn, msg["conversation_id"])
        if not (msg["activity_id"] and channel and channel["kind"] == "channel"):
            continue
        thread = f"{msg['conversation_id']};messageid={msg['activity_id']}"
        if await conversations.get(conn, thread) is None:
            # Replies to the card go to its thread: remember that conversation like the channel.
            reference = dict(channel["reference"] or {})
            reference["conversation"] = {**(reference.get("conversation") or {}), "id": thread}
            await conversations.remember(ctx.db, conn, conversation_id=thread, kind="thread",
                                         service_url=channel["service_url"],
                                         tenant_id=channel["tenant_id"],
                                         team_id=channel["team_id"],
                                         name=f"thread of {ref(incident_id)}",
                                         reference=reference, now=ctx.now())
        return thread, "the card's thread"
    channel_id = await conversations.channel_for(conn, team)
    return (channel_id, "the team channel") if channel_id else None
