"""What every handler gets: the database, the catalog, the policy knobs, which outside systems
are configured, metrics and a clock. Not the outside systems' clients: only the outbox's
effects (handlers/effects/) are handed those, so no request path can call out."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Callable

from incidents.catalog import Catalog
from observability.metrics import Metrics
from storage.db import Database


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class Policy:
    duplicate_window: timedelta = timedelta(minutes=30)
    cascade_window_before: timedelta = timedelta(minutes=15)
    cascade_window_after: timedelta = timedelta(minutes=5)
    card_update_interval: timedelta = timedelta(seconds=3)
    public_base_url: str = "http://localhost:3978"
    remember_events_for: timedelta = timedelta(days=30)
    admins: frozenset[str] = frozenset()
    teams_app_id: str = ""                       # catalog id of the Firebell Teams app
    trigger_email_levels: frozenset[str] = frozenset({"service-down", "high-error-rate"})
    postmortem_due_business_days: int = 5


@dataclass(frozen=True)
class Configured:
    """Which outside systems Firebell may use. A step whose system is not configured is not
    queued, and the card or `incident status` says so (never silently skipped)."""
    graph: bool = False
    jira: bool = False
    email: bool = False
    pagerduty: bool = False
    jira_url: str = ""           # JIRA's base URL, for links to its tasks
    # Heartbeats whose bearer token is set (the others take beats from Alertmanager only).
    heartbeat_tokens: frozenset[str] = frozenset()
    meeting_organizer: str = ""  # FIREBELL_MEETING_ORGANIZER: whose Teams meetings bridges are

    @property
    def bridge(self) -> bool:
        """Meeting bridges need Graph and an organizer."""
        return self.graph and bool(self.meeting_organizer)


@dataclass
class Context:
    db: Database
    catalog: Catalog
    policy: Policy = field(default_factory=Policy)
    configured: Configured = field(default_factory=Configured)
    clock: Callable[[], datetime] = utcnow
    metrics: Metrics = field(default_factory=Metrics)
    # Called after a commit that queued outbox work, so the in-process worker starts now
    # instead of at its next poll. Other replicas find the work on their own poll.
    wake_worker: Callable[[], None] = lambda: None

    def now(self) -> datetime:
        return self.clock()
