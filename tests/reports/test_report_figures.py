"""Report figures on the run's database for a small set worked out by hand: a week with the
spring DST change, incidents across period edges, a reopened incident, duplicates and cascade
children, an RCA impact override, an incident still open; and the month cache going stale."""
from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from handlers.reports.compile import compile_report
from incidents.periods import parse_period
from storage import incidents as store
from storage import postmortems as pm_store
from storage.schema import report_rollups

UTC = timezone.utc
MIN = 60.0


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


async def add(ctx, conn, *, service, team, level, trig, ack=None, res=None, closed=None,
              parent=None, kind=None, fp=None, title=None):
    status = "closed" if closed else ("resolved" if res else "open")
    incident = await store.insert(conn, {
        "source": "teams", "external_id": None, "title": title or f"{service} {level}",
        "service": service,
        "team": team, "level": level, "status": status, "triggered_at": trig,
        "first_acknowledged_at": ack, "acknowledged_at": ack, "resolved_at": res,
        "closed_at": closed, "fingerprint": fp or f"{service}:{level}:{trig.isoformat()}",
        "parent_id": parent, "link_kind": kind, "correlated": True}, trig)
    return incident


async def story(ctx):
    """The set the expected figures below were computed from (times UTC; Amsterdam is UTC+1
    until 30 March 2025 01:00 UTC, UTC+2 after)."""
    ids = {}
    async with ctx.db.write() as conn:
        a = await add(ctx, conn, service="checkout-api", team="checkout", level="service-down",
                      trig=at("2025-03-24T08:00"), ack=at("2025-03-24T08:02"),
                      res=at("2025-03-24T08:30"), closed=at("2025-03-25T10:00"))
        ids["A"] = a.id
        # Over the DST change: 01:30 CET -> 03:30 CEST on the clock, one hour in reality.
        ids["B"] = (await add(ctx, conn, service="checkout-api", team="checkout",
                              level="high-latency", trig=at("2025-03-30T00:30"),
                              ack=at("2025-03-30T01:10"), res=at("2025-03-30T01:30"),
                              fp="latency", title="Checkout latency p99 2s")).id
        # Sunday 23:30 CEST (this week), resolved Monday 00:30 CEST (next week), never acked.
        ids["C"] = (await add(ctx, conn, service="checkout-api", team="checkout", level="minor",
                              trig=at("2025-03-30T21:30"), res=at("2025-03-30T22:30"),
                              fp="latency", title="Checkout latency p99 3s")).id
        # Monday 00:30 CEST: next week.
        ids["D"] = (await add(ctx, conn, service="checkout-api", team="checkout", level="minor",
                              trig=at("2025-03-30T22:30"))).id
        # Reopened: acknowledged, resolved, reopened, resolved again for good.
        e = await add(ctx, conn, service="checkout-api", team="checkout",
                      level="high-error-rate", trig=at("2025-03-26T10:00"))
        now = at("2025-03-26T12:00")
        e = await store.update_fields(conn, e, {"acknowledged_at": at("2025-03-26T10:05"),
                                                "first_acknowledged_at": at("2025-03-26T10:05"),
                                                "acknowledged_by": "Priya"}, now)
        e = await store.update_fields(conn, e, {"status": "resolved",
                                                "resolved_at": at("2025-03-26T10:20")}, now)
        e = await store.update_fields(conn, e, {"status": "open", "resolved_at": None,
                                                "acknowledged_at": None,
                                                "acknowledged_by": None}, now)
        e = await store.update_fields(conn, e, {"status": "resolved",
                                                "resolved_at": at("2025-03-26T12:00")}, now)
        ids["E"] = e.id
        # A duplicate of A and a cascade child of a payments root: folded into their roots.
        await add(ctx, conn, service="checkout-api", team="checkout", level="service-down",
                  trig=at("2025-03-24T08:01"), res=at("2025-03-24T08:31"), parent=a.id,
                  kind="duplicate")
        h = await add(ctx, conn, service="payment-gateway", team="payments",
                      level="service-down", trig=at("2025-03-27T09:00"),
                      ack=at("2025-03-27T09:03"), res=at("2025-03-27T09:20"))
        ids["H"] = h.id
        await add(ctx, conn, service="checkout-api", team="checkout", level="high-error-rate",
                  trig=at("2025-03-27T09:02"), ack=at("2025-03-27T09:04"),
                  res=at("2025-03-27T09:25"), parent=h.id, kind="cascade")
        # Still open at the end of the week (and at report time).
        ids["J"] = (await add(ctx, conn, service="payment-gateway", team="payments",
                              level="minor", trig=at("2025-03-29T12:00"))).id
        # The four weeks before: checkout MTTA 10 and 20 min, MTTR 60 and 40 min.
        await add(ctx, conn, service="checkout-api", team="checkout", level="minor",
                  trig=at("2025-03-20T10:00"), ack=at("2025-03-20T10:10"),
                  res=at("2025-03-20T11:00"))
        ids["K2"] = (await add(ctx, conn, service="checkout-api", team="checkout",
                               level="minor", trig=at("2025-03-05T10:00"),
                               ack=at("2025-03-05T10:20"), res=at("2025-03-05T10:40"))).id
        # A's RCA says customers were affected for 45 minutes; it is overdue, as is an item.
        await pm_store.create(ctx.db, conn, a.id, owner="priya.raman@shopfront.example",
                              timeline="", now=at("2025-03-24T09:00"))
        await pm_store.set_fields(conn, a.id, impact_minutes=45, due_at=at("2025-03-28T10:00"))
        await pm_store.add_action_item(conn, a.id, position=0, title="Add a canary",
                                       owner="daniel.okafor@shopfront.example",
                                       due_date=date(2025, 3, 27), now=at("2025-03-25T10:00"))
    return ids


REPORT_TIME = at("2025-03-31T07:00")   # Monday 09:00 CEST


async def test_weekly_figures_match_the_hand_computed_ones(harness):
    ctx = harness.ctx
    ids = await story(ctx)
    report = await compile_report(ctx, "weekly", now=REPORT_TIME)
    assert report.period.key == "2025-W13"
    assert report.period.end - report.period.start == timedelta(hours=167)

    checkout = report.teams["checkout"]
    f = checkout.figures
    assert (f.new, f.linked, f.resolved, f.closed, f.still_open) == (4, 2, 3, 1, 1)
    assert f.by_level == {"high-error-rate": 1, "high-latency": 1, "minor": 1,
                          "service-down": 1}
    # MTTA over acknowledged roots: 2, 40, 5 min (C never acknowledged; E's first ack counts).
    assert (f.mtta.n, f.mtta.median, f.mtta.p90) == (3, 5 * MIN, pytest.approx(33 * MIN))
    # MTTR to the final resolve: 30, 60 (over DST), 60 (into next week), 120 (reopened).
    assert (f.mttr.n, f.mttr.median, f.mttr.p90) == (4, 60 * MIN, pytest.approx(102 * MIN))
    before = checkout.before
    assert (before.mtta.median, before.mtta.p90) == (15 * MIN, pytest.approx(19 * MIN))
    assert (before.mttr.median, before.mttr.p90) == (50 * MIN, pytest.approx(58 * MIN))
    # Impact: A 45 min (RCA override) + B 60 + C 60 + E 120, at $2,500 a minute.
    assert f.impact_usd == pytest.approx(285 * 2500)
    assert [r.count for r in checkout.recurring] == [2]
    assert checkout.overdue_postmortems_total == 1
    assert checkout.overdue_postmortems[0].incident_id == ids["A"]
    assert checkout.overdue_actions_total == 1
    assert checkout.overdue_actions[0].owner == "daniel.okafor@shopfront.example"

    payments = report.teams["payments"].figures
    assert (payments.new, payments.still_open, payments.mtta.median, payments.mttr.median) == \
        (2, 1, 3 * MIN, 20 * MIN)
    # J is still open: counted up to the end of the week (34 h).
    assert payments.impact_usd == pytest.approx((20 + 34 * 60) * 2500)
    assert payments.impact_open == 1

    company = report.company.figures
    assert (company.new, company.linked, company.still_open) == (6, 2, 2)
    assert (company.mtta.median, company.mtta.p90) == (4 * MIN, pytest.approx(29.5 * MIN))
    assert (company.mttr.median, company.mttr.p90) == (60 * MIN, pytest.approx(96 * MIN))
    assert company.impact_usd == pytest.approx(285 * 2500 + (20 + 34 * 60) * 2500)
    assert report.company.costliest[0].incident_id == ids["J"]

    quiet = report.teams["search"]
    assert quiet.quiet and quiet.figures.new == 0


async def test_monthly_trend_is_cached_per_month_and_recomputed_when_it_changes(harness):
    ctx = harness.ctx
    ids = await story(ctx)
    march = await compile_report(ctx, "monthly", now=at("2025-04-01T07:00"))
    assert march.period.key == "2025-03"
    f = march.teams["checkout"].figures
    # March (local): A, B, C, D, E, K, K2 are checkout roots; D ends March at 00:30 CEST.
    assert (f.new, f.linked) == (7, 2)
    assert [p.key for p in march.teams["checkout"].trend] == \
        ["2024-10", "2024-11", "2024-12", "2025-01", "2025-02", "2025-03"]
    assert march.teams["checkout"].postmortems_needed == 3   # A, B, E (D is open)
    assert march.teams["checkout"].postmortems_done == 0

    april = await compile_report(ctx, "monthly", now=at("2025-05-01T07:00"))
    point = april.teams["checkout"].trend[-2]
    assert (point.key, point.new) == ("2025-03", 7)
    async with ctx.db.read() as conn:
        cached = (await conn.execute(select(report_rollups.c.period))).scalars().all()
    assert "2025-03" in cached
    assert point.mttr.p90 == pytest.approx(90 * MIN)   # 30, 40, 60, 60, 60, 120 min
    # A late change to a March incident: the cached month is stale and computed again.
    async with ctx.db.write() as conn:
        k2 = await store.get(conn, ids["K2"])
        await store.update_fields(conn, k2, {"resolved_at": at("2025-03-05T20:00")},
                                  at("2025-05-01T08:00"))
    again = await compile_report(ctx, "monthly", now=at("2025-05-01T09:00"))
    changed = again.teams["checkout"].trend[-2].mttr
    assert (changed.n, changed.p90) == (6, pytest.approx(360 * MIN))


async def test_period_keys_round_trip(harness):
    tz = harness.ctx.catalog.timezone
    assert parse_period("2025-W13", REPORT_TIME, tz).start == at("2025-03-23T23:00")
    assert parse_period("2025-03", REPORT_TIME, tz).end == at("2025-03-31T22:00")


async def test_the_monthly_report_counts_sticky_postmortems_and_leaves_out_waived_ones(harness):
    """A postmortem stays needed once its incident was at a postmortem level, whatever level it
    was lowered to; a waived one is not needed any more."""
    ctx = harness.ctx
    async with ctx.db.write() as conn:
        for day in (9, 10):
            lowered = await add(ctx, conn, service="checkout-api", team="checkout",
                                level="minor", trig=at(f"2025-03-{day:02}T10:00"),
                                res=at(f"2025-03-{day:02}T11:00"))
            await store.update_fields(conn, lowered, {"postmortem_required": True},
                                      at("2025-03-10T11:00"))
        waived = await add(ctx, conn, service="checkout-api", team="checkout",
                           level="service-down", trig=at("2025-03-11T10:00"),
                           res=at("2025-03-11T11:00"))
        await pm_store.waive(ctx.db, conn, waived.id, by="sarah.kim@shopfront.example",
                             reason="false alarm", timeline="", now=at("2025-03-11T12:00"))
        await add(ctx, conn, service="checkout-api", team="checkout", level="minor",
                  trig=at("2025-03-12T10:00"), res=at("2025-03-12T11:00"))
    march = await compile_report(ctx, "monthly", now=at("2025-04-01T07:00"))
    assert march.teams["checkout"].postmortems_needed == 2   # the lowered ones only
