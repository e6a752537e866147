"""Reporting periods and delivery schedules, in the catalog's time zone.

A week is an ISO week, Monday 00:00 to the next Monday 00:00 local time; a month runs from the
1st 00:00 to the next 1st 00:00 local time. Boundaries are computed in local time and then
turned into UTC instants, so a week that contains a daylight-saving change is 167 or 169 hours
long, as the calendar says. Pure: no I/O, no clock (callers pass `now`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

UTC = timezone.utc
WEEK, MONTH, RANGE = "week", "month", "range"
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December")


@dataclass(frozen=True)
class Period:
    kind: str          # week | month | range
    key: str           # 2025-W11 | 2025-03 | 2025-03-01..2025-03-08T10:00
    start: datetime    # aware UTC, inclusive
    end: datetime      # aware UTC, exclusive
    label: str         # for people: "week 11 (10–16 Mar 2025)", "March 2025", "last 30 days"


def _local_midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def week_of(day: date, tz: ZoneInfo) -> Period:
    monday = day - timedelta(days=day.weekday())
    sunday = monday + timedelta(days=6)
    iso = monday.isocalendar()
    span = (f"{monday.day} {_MONTHS[monday.month - 1][:3]}–{sunday.day} "
            f"{_MONTHS[sunday.month - 1][:3]} {sunday.year}")
    return Period(WEEK, f"{iso.year}-W{iso.week:02d}", _local_midnight(monday, tz),
                  _local_midnight(monday + timedelta(days=7), tz), f"week {iso.week} ({span})")


def month_of(day: date, tz: ZoneInfo) -> Period:
    first = day.replace(day=1)
    following = (first + timedelta(days=32)).replace(day=1)
    return Period(MONTH, f"{first.year}-{first.month:02d}", _local_midnight(first, tz),
                  _local_midnight(following, tz), f"{_MONTHS[first.month - 1]} {first.year}")


def local_date(at: datetime, tz: ZoneInfo) -> date:
    return at.astimezone(tz).date()


def shift(period: Period, n: int, tz: ZoneInfo) -> Period:
    """The week or month `n` periods later (negative: earlier)."""
    start = local_date(period.start, tz)
    if period.kind == WEEK:
        return week_of(start + timedelta(weeks=n), tz)
    if period.kind == MONTH:
        months = start.year * 12 + start.month - 1 + n
        return month_of(date(months // 12, months % 12 + 1, 1), tz)
    raise ValueError("only weeks and months can be shifted")


def last_complete(kind: str, now: datetime, tz: ZoneInfo) -> Period:
    """The most recent week or month that has ended at `now`."""
    current = (week_of if kind == WEEK else month_of)(local_date(now, tz), tz)
    return shift(current, -1, tz)


def parse_period(word: str | None, now: datetime, tz: ZoneInfo) -> Period | None:
    """A period as people type it: `week` (so far), `last-week`, `month`, `last-month`, `7d`,
    `30d`, `2025-W11`, `2025-03`, `today`. No word: the last 30 days. None if unreadable."""
    w = (word or "30d").strip().lower().replace("_", "-").replace(" ", "-")
    today = local_date(now, tz)
    if w in ("week", "this-week"):
        p = week_of(today, tz)
        return Period(WEEK, p.key, p.start, now, f"this week so far ({p.key})")
    if w in ("month", "this-month"):
        p = month_of(today, tz)
        return Period(MONTH, p.key, p.start, now, f"{p.label} so far")
    if w in ("last-week", "lastweek", "previous-week"):
        return last_complete(WEEK, now, tz)
    if w in ("last-month", "lastmonth", "previous-month"):
        return last_complete(MONTH, now, tz)
    if w == "today":
        start = _local_midnight(today, tz)
        return Period(RANGE, today.isoformat(), start, now, "today")
    m = re.fullmatch(r"(\d{1,3})d(?:ays?)?", w)
    if m and 1 <= int(m.group(1)) <= 366:
        days = int(m.group(1))
        return Period(RANGE, f"{days}d", now - timedelta(days=days), now, f"last {days} days")
    m = re.fullmatch(r"(\d{4})-?w(\d{1,2})", w)
    if m:
        try:
            monday = date.fromisocalendar(int(m.group(1)), int(m.group(2)), 1)
        except ValueError:
            return None
        return week_of(monday, tz)
    m = re.fullmatch(r"(\d{4})-(\d{1,2})", w)
    if m and 1 <= int(m.group(2)) <= 12:
        return month_of(date(int(m.group(1)), int(m.group(2)), 1), tz)
    return None


# -- schedules ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Schedule:
    """When a periodic delivery goes out, local time: weekly on a weekday, monthly on a day."""
    kind: str                 # week | month: which period it reports on
    at: time
    weekday: int = 0          # weeks: 0 = Monday
    day: int = 1              # months: 1..28

    def cron(self) -> dict[str, object]:
        """APScheduler CronTrigger fields."""
        fields: dict[str, object] = {"hour": self.at.hour, "minute": self.at.minute}
        if self.kind == WEEK:
            fields["day_of_week"] = _DAYS[self.weekday]
        else:
            fields["day"] = self.day
        return fields

    def last_fire(self, now: datetime, tz: ZoneInfo) -> datetime:
        """The latest scheduled moment at or before `now` (aware UTC)."""
        local = now.astimezone(tz)
        if self.kind == WEEK:
            day = local.date() - timedelta(days=(local.weekday() - self.weekday) % 7)
        else:
            day = local.date().replace(day=self.day)
        fire = datetime.combine(day, self.at, tzinfo=tz).astimezone(UTC)
        while fire > now:  # today's moment is still to come: the previous one
            if self.kind == WEEK:
                day -= timedelta(days=7)
            else:
                day = (day.replace(day=1) - timedelta(days=1)).replace(day=self.day)
            fire = datetime.combine(day, self.at, tzinfo=tz).astimezone(UTC)
        return fire

    def due_period(self, now: datetime, tz: ZoneInfo) -> Period:
        """The period the latest delivery at or before `now` reports on: the last complete week
        or month before that moment. A delivery missed while Firebell was down is still this
        one until the next scheduled moment."""
        return last_complete(self.kind, self.last_fire(now, tz), tz)


class ScheduleError(ValueError):
    pass


def parse_schedule(text: str | None, kind: str) -> Schedule | None:
    """`mon 09:00` (weekly) or `1 09:00` (monthly: day of month, 1..28). `off` -> None."""
    raw = (text or "").strip().lower()
    if raw in ("off", "none", "no", "false", "0"):
        return None
    m = re.fullmatch(r"([a-z]+|\d{1,2})\s+(\d{1,2}):(\d{2})", raw)
    if not m or int(m.group(2)) > 23 or int(m.group(3)) > 59:
        raise ScheduleError(f"{text!r}: expected " + ("`mon 09:00`" if kind == WEEK else
                                                       "`1 09:00` (day of month, time)"))
    at = time(int(m.group(2)), int(m.group(3)))
    when = m.group(1)
    if kind == WEEK:
        if when[:3] not in _DAYS:
            raise ScheduleError(f"{text!r}: {when!r} is not a weekday (mon..sun)")
        return Schedule(WEEK, at, weekday=_DAYS.index(when[:3]))
    if not when.isdigit() or not 1 <= int(when) <= 28:
        raise ScheduleError(f"{text!r}: the day of the month must be 1..28")
    return Schedule(MONTH, at, day=int(when))
