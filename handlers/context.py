"""What every handler gets: the database, the catalog, the policy knobs and a clock."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

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
    bot_app_id: str = ""
    teams_app_id: str = ""                       # catalog id of the Firebell Teams app
    trigger_email_levels: frozenset[str] = frozenset({"service-down", "high-error-rate"})
    postmortem_due_business_days: int = 5


@dataclass
class Context:
    db: Database
    catalog: Catalog
    policy: Policy = field(default_factory=Policy)
    clock: Callable[[], datetime] = utcnow
    metrics: Metrics = field(default_factory=Metrics)
    # Called after a commit that queued outbox work, so the in-process worker starts now
    # instead of at its next poll. Other replicas find the work on their own poll.
    wake_worker: Callable[[], None] = lambda: None
    # Outside systems, used only by outbox jobs (rule 1: never on a request's path).
    # None = not configured: the step is skipped and the card says so.
    teams: Any = None          # integrations.teams_connector.TeamsConnector
    graph: Any = None          # integrations.graph.GraphClient (war rooms)
    jira: Any = None           # integrations.jira_tracker.JiraTracker
    mailer: Any = None         # integrations.mailer.Mailer
    pagerduty: Any = None      # integrations.pagerduty.PagerDutyClient

    def now(self) -> datetime:
        return self.clock()
