"""Periods, schedules and percentile rules, by hand."""
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from incidents import metrics as m
from incidents.periods import (MONTH, WEEK, Schedule, ScheduleError, last_complete, month_of,
                               parse_period, parse_schedule, shift, week_of)

AMS = ZoneInfo("Europe/Amsterdam")
UTC = timezone.utc


def test_iso_weeks_are_local_monday_to_monday_and_dst_correct():
    spring = week_of(date(2025, 3, 26), AMS)          # clocks go forward on Sun 30 March
    assert spring.key == "2025-W13"
    assert spring.start == datetime(2025, 3, 23, 23, 0, tzinfo=UTC)    # Mon 00:00 CET
    assert spring.end == datetime(2025, 3, 30, 22, 0, tzinfo=UTC)      # Mon 00:00 CEST
    assert spring.end - spring.start == timedelta(hours=167)
    autumn = week_of(date(2025, 10, 22), AMS)         # clocks go back on Sun 26 October
    assert autumn.end - autumn.start == timedelta(hours=169)
    assert shift(spring, 1, AMS).start == spring.end
    assert shift(spring, -4, AMS).key == "2025-W09"
    # ISO week-numbering years: 29 Dec 2025 is in 2026-W01.
    assert week_of(date(2025, 12, 31), AMS).key == "2026-W01"


def test_months_in_local_time():
    march = month_of(date(2025, 3, 15), AMS)
    assert (march.key, march.label) == ("2025-03", "March 2025")
    assert march.start == datetime(2025, 2, 28, 23, 0, tzinfo=UTC)
    assert march.end == datetime(2025, 3, 31, 22, 0, tzinfo=UTC)
    assert shift(march, -3, AMS).key == "2024-12"
    assert shift(march, 10, AMS).key == "2026-01"
    now = datetime(2025, 3, 1, 0, 30, tzinfo=UTC)   # 01:30 on 1 March in Amsterdam
    assert last_complete(MONTH, now, AMS).key == "2025-02"
    assert last_complete(WEEK, now, AMS).key == "2025-W08"


def test_schedules_fire_in_local_time_and_name_the_period_due():
    weekly = parse_schedule("mon 09:00", WEEK)
    assert weekly == Schedule(WEEK, time(9, 0), weekday=0)
    assert weekly.cron() == {"hour": 9, "minute": 0, "day_of_week": "mon"}
    # Monday 31 March 2025, CEST: 09:00 local is 07:00 UTC.
    before = datetime(2025, 3, 31, 6, 59, tzinfo=UTC)
    at = datetime(2025, 3, 31, 7, 0, tzinfo=UTC)
    assert weekly.last_fire(before, AMS) == datetime(2025, 3, 24, 8, 0, tzinfo=UTC)  # CET
    assert weekly.due_period(before, AMS).key == "2025-W12"
    assert weekly.due_period(at, AMS).key == "2025-W13"
    # Down all Monday, back on Thursday: last week's digest is still the one due.
    assert weekly.due_period(datetime(2025, 4, 3, 12, 0, tzinfo=UTC), AMS).key == "2025-W13"
    monthly = parse_schedule("1 09:00", MONTH)
    assert monthly.cron() == {"hour": 9, "minute": 0, "day": 1}
    assert monthly.due_period(datetime(2025, 4, 1, 7, 0, tzinfo=UTC), AMS).key == "2025-03"
    assert monthly.due_period(datetime(2025, 4, 1, 6, 59, tzinfo=UTC), AMS).key == "2025-02"
    assert parse_schedule("off", WEEK) is None
    for bad, kind in (("monday 25:00", WEEK), ("funday 09:00", WEEK), ("31 09:00", MONTH),
                      ("09:00", WEEK)):
        with pytest.raises(ScheduleError):
            parse_schedule(bad, kind)


def test_periods_as_people_type_them():
    now = datetime(2025, 3, 12, 10, 0, tzinfo=UTC)   # a Wednesday
    assert parse_period("last-week", now, AMS).key == "2025-W10"
    assert parse_period("2025-W02", now, AMS).key == "2025-W02"
    assert parse_period("2025-01", now, AMS).key == "2025-01"
    week = parse_period("week", now, AMS)
    assert (week.start, week.end) == (week_of(date(2025, 3, 12), AMS).start, now)
    days = parse_period(None, now, AMS)
    assert (days.key, days.start) == ("30d", now - timedelta(days=30))
    assert parse_period("7d", now, AMS).start == now - timedelta(days=7)
    assert parse_period("sometime", now, AMS) is None
    assert parse_period("2025-13", now, AMS) is None


def test_percentiles_interpolate_like_percentile_cont():
    assert m.percentile([], m.MEDIAN) is None
    assert m.percentile([7], m.P90) == 7
    assert m.percentile([1, 2, 3, 4], m.MEDIAN) == 2.5
    assert m.percentile([1, 2, 3, 4], m.P90) == pytest.approx(3.7)
    assert m.percentile([10, 20, 30, 40, 50], m.MEDIAN) == 30
    assert m.percentile([10, 20, 30, 40, 50], m.P90) == pytest.approx(46)
    # From the two ranked values the SQL returns.
    for n in range(1, 40):
        values = [v * v for v in range(n)]
        ranks = {i: values[i] for p in (m.MEDIAN, m.P90) for i in m.rank_bounds(n, p)}
        got = m.Percentiles.from_ranks(n, ranks)
        assert got == m.Percentiles(n, m.percentile(values, m.MEDIAN),
                                    m.percentile(values, m.P90))


def test_impact_and_wording():
    assert m.impact_usd({"checkout-api": 10, "order-db": 30, None: 5},
                        {"checkout-api": 2500, "order-db": 900}) == 52000
    assert m.duration(42) == "42 s" and m.duration(3900) == "1 h 05 min"
    assert m.money(1_250_000) == "$1.2M" and m.money(999) == "$999"
    assert m.trend_word(120, 100) == "▲ slower" and m.trend_word(80, 100) == "▼ faster"
    f = m.Figures(new=2, mtta=m.Percentiles(2, 1.0, 2.0))
    assert m.figures_from_json(m.figures_to_json(f)) == f
