"""Delivering digests and reports on schedule: to every subscribed channel (the company-wide one
to the `default` channel) and every team e-mail, exactly once per period and target, caught up
after downtime. Each delivery is a report_deliveries row written in the same transaction as its
outbox job, so replicas racing each other send it once."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Iterable

from sqlalchemy.ext.asyncio import AsyncConnection

from handlers.context import Context
from handlers.effects.channel_messages import queue_card_message
from handlers.effects.email import queue_email
from handlers.reads import links
from handlers.reports.compile import COMPANY, Compiled, compile_report
from handlers.reports.settings import MONTHLY, WEEKLY, ReportSettings
from incidents.periods import Period
from mail.reports import monthly_email, weekly_email
from storage import conversations
from storage import reports as store

log = logging.getLogger("firebell.reports")
CHART_RETENTION = timedelta(days=400)


@dataclass(frozen=True)
class Target:
    key: str                # report_deliveries.target: channel:<team> | email:<team> | ...
    scope: str              # a team key or "company"
    conversation_id: str | None = None
    emails: tuple[str, ...] = ()


def targets(ctx: Context, subscriptions: dict[str, str],
            digest_emails: Iterable[str]) -> list[Target]:
    out = []
    for team, conversation_id in sorted(subscriptions.items()):
        if team == "default":
            out.append(Target(f"channel:{COMPANY}", COMPANY, conversation_id=conversation_id))
        elif team in ctx.catalog.teams:
            out.append(Target(f"channel:{team}", team, conversation_id=conversation_id))
    if not ctx.configured.email:
        return out  # no SMTP configured: channels only
    for key, team in ctx.catalog.teams.items():
        if team.email:
            out.append(Target(f"email:{key}", key, emails=(team.email,)))
    emails = tuple(dict.fromkeys(e.strip().lower() for e in digest_emails if e.strip()))
    if emails:
        out.append(Target(f"email:{COMPANY}", COMPANY, emails=emails))
    return out


async def deliver_due(ctx: Context, kind: str, settings: ReportSettings, *,
                      now: datetime | None = None) -> int:
    """Send the latest due digest/report to every target that has not had it. Safe to call
    any number of times, from any number of replicas: each (kind, period, target) goes once.
    A delivery missed while Firebell was down is the latest due one until the next one is due,
    so calling this at start-up catches up."""
    schedule = settings.schedule(kind)
    if schedule is None:
        return 0
    now = now or ctx.now()
    period = schedule.due_period(now, ctx.catalog.timezone)
    return await deliver(ctx, kind, period, settings, now=now)


async def deliver(ctx: Context, kind: str, period: Period, settings: ReportSettings, *,
                  now: datetime, scope: str | None = None) -> int:
    """Queue `period`'s report for every target that has not had it (only `scope`'s targets,
    a team key or "company", when given: `firebell report … --team T --send`)."""
    async with ctx.db.read() as conn:
        subscriptions = await conversations.all_subscriptions(conn)
        done = await store.delivered_targets(conn, kind, period.key)
    missing = [t for t in targets(ctx, subscriptions, settings.digest_emails)
               if t.key not in done and scope in (None, t.scope)]
    if not missing:
        return 0
    compiled = await compile_report(ctx, kind, now=now, period=period)
    queued = 0
    async with ctx.db.write() as conn:
        if kind == MONTHLY:
            # Cards in Teams keep pointing at their chart: keep a good year and a bit of them.
            await store.forget_charts(conn, now - CHART_RETENTION)
        for target in missing:
            once_key = f"report:{kind}:{period.key}:{target.key}"
            claimed = await store.claim_delivery(
                ctx.db, conn, kind=kind, period=period.key, target=target.key, now=now,
                detail={"jobs": [once_key], "scope": target.scope,
                        "to": target.conversation_id or list(target.emails)})
            if not claimed:
                continue  # another replica got there first
            await _queue(ctx, conn, compiled, target, once_key, now)
            queued += 1
    if queued:
        log.info("%s %s queued for %d target(s)", kind, period.key, queued)
        ctx.wake_worker()
    return queued


async def _queue(ctx: Context, conn: AsyncConnection, compiled: Compiled, target: Target,
                 once_key: str, now: datetime) -> None:
    view = compiled.view(target.scope)
    what = "Weekly incident digest" if compiled.kind == WEEKLY else "Monthly incident report"
    if target.conversation_id:
        chart_url = await chart_link(ctx, conn, compiled, target.scope, now)
        await queue_card_message(ctx, conn, conversation_id=target.conversation_id,
                                 card=compiled.card(target.scope, chart_url),
                                 summary=f"{what}: {view.name}, {compiled.period.label}",
                                 once_key=once_key)
        return
    if compiled.kind == WEEKLY:
        subject, text, html = weekly_email(view)
        images: list[tuple[str, bytes]] = []
    else:
        cid = f"trend.{target.scope}.{compiled.period.key}@firebell"
        subject, text, html = monthly_email(view, chart_cid=cid)
        images = [(cid, compiled.chart(target.scope))]
    await queue_email(ctx, conn, to=list(target.emails), subject=subject, text=text, html=html,
                      once_key=once_key, images=images)


async def chart_link(ctx: Context, conn: AsyncConnection, compiled: Compiled, scope: str,
                     now: datetime) -> str | None:
    png = compiled.chart(scope)
    if png is None:
        return None
    key = await store.save_chart(ctx.db, conn, png, now)
    return links.chart(ctx, key)
