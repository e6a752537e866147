"""When digests and reports go out, and to whom besides the subscribed channels (FIREBELL_*
settings, read in app.py)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import time, timedelta

from incidents.periods import MONTH, WEEK, Schedule

WEEKLY, MONTHLY = "weekly", "monthly"


@dataclass(frozen=True)
class ReportSettings:
    """Schedules and recipients (FIREBELL_* settings, read in app.py)."""
    weekly: Schedule | None = Schedule(WEEK, time(9, 0), weekday=0)
    monthly: Schedule | None = Schedule(MONTH, time(9, 0), day=1)
    digest_emails: tuple[str, ...] = ()
    reminder_interval: timedelta = timedelta(hours=24)
    stale_after: timedelta = timedelta(hours=4)

    def schedule(self, kind: str) -> Schedule | None:
        return self.weekly if kind == WEEKLY else self.monthly
