"""Periodic work on APScheduler, in the catalog's time zone: the weekly digest and the monthly
report at their scheduled moments, reminders every few minutes (those of running incidents, a
missing commander or an overdue stakeholder update, every 30 s), and a catch-up at start-up and
every hour (a digest missed while Firebell was down goes out when it is back, once). Also the
housekeeping ticks: JIRA statuses read back, PagerDuty's service dependencies imported (and the
graph every replica uses rebuilt from them), old inbound event ids forgotten.

Every run takes a lease first, so across replicas one computes while the others skip; the
deliveries themselves are unique per (kind, period, target) anyway, so even two runs that both
get through (a lease that lapsed mid-run) send each digest once.
"""
from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta, timezone

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from handlers.context import Context
from handlers.effects.registry import Clients
from handlers.effects.dependency_import import import_from_pagerduty
from handlers.effects.jira_status import sync_statuses
from handlers.effects.oncall_sync import sync_from_pagerduty
from handlers.incident.heartbeats import sweep as sweep_heartbeats
from handlers.incident.maintenance import close_out_due
from handlers.reports.deliver import deliver_due
from handlers.reports.reminders import send_reminders
from handlers.reports.running import remind_running
from handlers.reports.settings import MONTHLY, WEEKLY, ReportSettings
from handlers.sync.dependencies import refresh_graph
from handlers.sync.retention import forget_old_events
from storage import leases
from storage.db import DatabaseUnavailable

log = logging.getLogger("firebell.periodic")


# How often the periodic work runs, and how long one replica's turn at a piece of it lasts.
REMINDERS_EVERY = timedelta(minutes=15)
RUNNING_REMINDERS_EVERY = timedelta(seconds=30)   # cadences may be as short as 30 s
JIRA_SYNC_EVERY = timedelta(minutes=10)
# Heartbeat intervals are 10 s at the shortest; a silence shows within this of its deadline.
HEARTBEAT_SWEEP_EVERY = timedelta(seconds=10)
# Maintenance windows end on the minute at the finest (`until HH:MM`, cron): a summary and the
# still-firing incidents follow within this.
MAINTENANCE_EVERY = timedelta(seconds=20)
LEASE = timedelta(minutes=10)


class PeriodicScheduler:
    def __init__(self, ctx: Context, clients: Clients, settings: ReportSettings, *,
                 dependency_import_every: timedelta = timedelta(hours=1)):
        self.ctx, self.clients, self.settings = ctx, clients, settings
        self.dependency_import_every = dependency_import_every
        self.holder = f"periodic-{uuid.uuid4().hex[:8]}"
        self._scheduler: AsyncIOScheduler | None = None

    def start(self) -> None:
        tz = self.ctx.catalog.timezone
        s = self._scheduler = AsyncIOScheduler(timezone=tz)
        common = dict(coalesce=True, max_instances=1, misfire_grace_time=3600)
        for kind in (WEEKLY, MONTHLY):
            schedule = self.settings.schedule(kind)
            if schedule is not None:
                s.add_job(self.deliver, CronTrigger(timezone=tz, **schedule.cron()), args=[kind],
                          id=kind, **common)
        now = datetime.now(timezone.utc)  # APScheduler runs on the wall clock
        s.add_job(self.catch_up, IntervalTrigger(hours=1), id="catch_up", next_run_time=now,
                  **common)
        s.add_job(self.remind, IntervalTrigger(seconds=REMINDERS_EVERY.total_seconds()),
                  id="reminders", next_run_time=now + timedelta(seconds=30), **common)
        s.add_job(self.remind_running,
                  IntervalTrigger(seconds=RUNNING_REMINDERS_EVERY.total_seconds()),
                  id="running_reminders", next_run_time=now + timedelta(seconds=20), **common)
        self._housekeeping(s, now, common)
        s.start()

    def _housekeeping(self, s: AsyncIOScheduler, now: datetime, common: dict) -> None:
        if self.clients.pagerduty is not None:
            s.add_job(self._sync_oncall, IntervalTrigger(minutes=5), id="oncall",
                      next_run_time=now + timedelta(seconds=2), **common)
            s.add_job(self._import_dependencies,
                      IntervalTrigger(seconds=self.dependency_import_every.total_seconds()),
                      id="dependencies", next_run_time=now + timedelta(seconds=5), **common)
        s.add_job(self._refresh_graph, IntervalTrigger(minutes=5), id="graph", **common)
        if self.clients.jira is not None:
            s.add_job(self._sync_jira,
                      IntervalTrigger(seconds=JIRA_SYNC_EVERY.total_seconds()),
                      id="jira_sync", next_run_time=now + timedelta(minutes=1), **common)
        s.add_job(self._forget_events, IntervalTrigger(hours=24), id="forget_events",
                  next_run_time=now + timedelta(minutes=10), **common)
        s.add_job(self.close_out_maintenance,
                  IntervalTrigger(seconds=MAINTENANCE_EVERY.total_seconds()), id="maintenance",
                  next_run_time=now + timedelta(seconds=3), **common)
        if self.ctx.catalog.heartbeats:
            s.add_job(self.sweep_heartbeats,
                      IntervalTrigger(seconds=HEARTBEAT_SWEEP_EVERY.total_seconds()),
                      id="heartbeats", next_run_time=now + timedelta(seconds=1), **common)

    async def _import_dependencies(self) -> int:
        count = await self._under_lease(
            "dependencies", lambda: import_from_pagerduty(self.ctx, self.clients)) or 0
        await self._refresh_graph()
        return count

    async def _sync_oncall(self) -> int:
        return await self._under_lease(
            "oncall", lambda: sync_from_pagerduty(self.ctx, self.clients)) or 0

    async def _refresh_graph(self) -> None:
        # Every replica: another one may have imported new edges.
        try:
            await refresh_graph(self.ctx)
        except DatabaseUnavailable:
            log.warning("graph refresh: database unavailable; next tick retries")

    async def _sync_jira(self) -> int:
        return await self._under_lease(
            "jira_sync", lambda: sync_statuses(self.ctx, self.clients)) or 0

    async def _forget_events(self) -> int:
        return await self._under_lease("forget_events",
                                       lambda: forget_old_events(self.ctx)) or 0

    async def sweep_heartbeats(self) -> dict[str, str]:
        """Every heartbeat looked at once (one replica at a time): silences open incidents."""
        return await self._under_lease("heartbeats", lambda: sweep_heartbeats(self.ctx)) or {}

    async def close_out_maintenance(self) -> int:
        """Windows that are over get their summary, their still-firing incidents announced."""
        return await self._under_lease("maintenance", lambda: close_out_due(self.ctx)) or 0

    async def stop(self) -> None:
        if self._scheduler is not None and self._scheduler.running:
            self._scheduler.shutdown(wait=False)

    async def deliver(self, kind: str) -> int:
        return await self._under_lease(f"report:{kind}",
                                       lambda: deliver_due(self.ctx, kind, self.settings)) or 0

    async def catch_up(self) -> int:
        return sum([await self.deliver(WEEKLY), await self.deliver(MONTHLY)])

    async def remind(self) -> dict[str, int]:
        return await self._under_lease("reminders",
                                       lambda: send_reminders(self.ctx, self.settings)) or {}

    async def remind_running(self) -> dict[str, int]:
        return await self._under_lease("running_reminders",
                                       lambda: remind_running(self.ctx)) or {}

    async def _under_lease(self, name: str, work):
        ctx = self.ctx
        try:
            async with ctx.db.write() as conn:
                if not await leases.acquire(ctx.db, conn, name, self.holder, now=ctx.now(),
                                            ttl=LEASE):
                    log.debug("%s: another replica holds the lease", name)
                    return None
            try:
                return await work()
            finally:
                async with ctx.db.write() as conn:
                    await leases.release(conn, name, self.holder)
        except DatabaseUnavailable as exc:
            log.warning("%s: database unavailable (%s); next tick retries", name, exc)
        except Exception:
            log.exception("%s failed; next tick retries", name)
        return None
