"""Every report-side card at its largest realistic size: Adaptive Card 1.5, under Teams' 28 KB,
at most 6 actions per action set, unique element ids, user text only in TextRuns."""
from datetime import date, datetime, timedelta, timezone

import pytest

from cards.common import MAX_CARD_BYTES, size
from cards.digest import TeamRow, WeeklyDigest, weekly_digest_card
from cards.reminder import (DueItem, Who, action_reminder_card, postmortem_reminder_card,
                            stale_nudge_card)
from cards.report import HistoryRow, MonthlyReport, MonthlyTeamRow, history_card, \
    monthly_report_card
from cards.search import Found, search_card
from cards.stats import stats_card
from cards.summary import CloseSummary, close_summary_card
from incidents import metrics as m
from incidents.model import Incident
from incidents.periods import month_of, week_of
from zoneinfo import ZoneInfo

AMS = ZoneInfo("Europe/Amsterdam")
NOW = datetime(2025, 3, 31, 7, 0, tzinfo=timezone.utc)
LONG = "[x](http://evil) **bold** <b>" + "very long alert title " * 60
P = m.Percentiles(1000, 123.4, 4567.8)


def busy_figures() -> m.Figures:
    return m.Figures(new=99999, resolved=99999, closed=99999, still_open=9999, linked=9999,
                     by_level={f"level-{i}-{LONG[:30]}": 100 - i for i in range(12)},
                     by_service={f"service-{i}-{'x' * 80}": 500 - i for i in range(500)},
                     by_team={f"Team {i}": i for i in range(200)}, mtta=P, mttr=P,
                     impact_usd=123456789.0, impact_open=99)


def incident(i: int) -> Incident:
    return Incident(id=10_000_000 + i, source="pagerduty", external_id=f"P{i}", title=LONG,
                    service="s" * 200, team="t" * 100, level="service-down", status="resolved",
                    triggered_at=NOW, fingerprint="f", version=9, created_at=NOW,
                    updated_at=NOW, resolved_at=NOW + timedelta(hours=3),
                    first_acknowledged_at=NOW + timedelta(minutes=3),
                    html_url="https://pagerduty.example/incidents/" + "P" * 200)


def worst_cards():
    week, month = week_of(date(2025, 3, 26), AMS), month_of(date(2025, 3, 1), AMS)
    teams = [TeamRow(f"t{i}", f"Team {i} {LONG[:60]}", busy_figures(), busy_figures())
             for i in range(200)]
    pms = [m.OverduePostmortem(i, LONG, "t", f"owner{i}@x.example", NOW) for i in range(500)]
    acts = [m.OverdueAction(i, i, LONG, "t", f"o{i}@x.example", date(2025, 1, 1), "ABC-123456")
            for i in range(500)]
    rec = [m.Recurring("f" * 64, 99, LONG, "s" * 200, "t", i) for i in range(200)]
    costly = [m.Costly(i, LONG, "s" * 200, "t", 99999.0, 1e9) for i in range(50)]
    for scope in ("company", "t1"):
        yield weekly_digest_card(WeeklyDigest(
            scope=scope, name=LONG, period=week, figures=busy_figures(), before=busy_figures(),
            teams=teams, overdue_postmortems=pms, overdue_postmortems_total=50000,
            overdue_actions=acts, overdue_actions_total=50000, recurring=rec,
            costliest=costly, people={f"owner{i}@x.example": LONG for i in range(500)}))
        trend = [m.TrendPoint(f"2025-0{i}", "Mar 25", 99999, P, P, 1e9) for i in range(1, 7)]
        yield monthly_report_card(MonthlyReport(
            scope=scope, name=LONG, period=month, figures=busy_figures(), trend=trend,
            postmortems_done=999, postmortems_needed=1000,
            teams=[MonthlyTeamRow(f"t{i}", LONG, busy_figures(), 9, 10) for i in range(200)]),
            chart_url="https://firebell.example/charts/" + "k" * 32 + ".png")
    yield stats_card(LONG, week, busy_figures())
    yield search_card(LONG, [Found(incident(i), "https://teams.microsoft.com/l/message/" + "c" * 300,
                                   "https://firebell.example/postmortems/" + "p" * 32)
                             for i in range(10)], more=True)
    yield history_card([HistoryRow("weekly", "2025-W13", "email:" + "t" * 290, NOW,
                                   "failed (" + "e" * 150 + ")") for i in range(31)],
                       heading="Report history", total=5000)
    who = Who("someone@x.example", LONG[:200])
    yield postmortem_reminder_card(12345678, LONG, who, NOW, 99, [LONG] * 20,
                                   "https://firebell.example/postmortems/" + "p" * 32)
    yield action_reminder_card(who, [DueItem(i, LONG, date(2025, 1, 1), "ABC-1",
                                             "https://jira.example/browse/ABC-1")
                                     for i in range(300)], date(2025, 3, 31))
    yield stale_nudge_card(12345678, LONG, 99, 99999.0, who)
    yield close_summary_card(CloseSummary(
        incident=incident(1), team_name=LONG, impact_usd=1e9, linked=999,
        postmortem={k: "x" * 4000 for k in ("summary", "customer_impact", "root_cause",
                                             "resolution", "lessons")},
        action_items=[{"title": LONG, "owner": "a@x.example", "due_date": date(2025, 1, 1),
                       "jira_key": "ABC-1"} for _ in range(100)],
        page_url="https://firebell.example/p", teams_url="https://teams.microsoft.com/l/x"))


def walk(node, found):
    if isinstance(node, dict):
        if node.get("type") in ("ActionSet",) or "actions" in node:
            found["action_sets"].append(len(node.get("actions") or []))
        if "id" in node:
            found["ids"].append(node["id"])
        if node.get("type") == "TextBlock":
            found["blocks"].append(node["text"])
        for value in node.values():
            walk(value, found)
    elif isinstance(node, list):
        for value in node:
            walk(value, found)


@pytest.mark.parametrize("card", list(worst_cards()), ids=lambda c: c["body"][0].get(
    "type", "card"))
def test_worst_case_cards_fit_teams(card):
    assert card["version"] == "1.5" and card["type"] == "AdaptiveCard"
    assert size(card) < MAX_CARD_BYTES, size(card)
    found = {"action_sets": [], "ids": [], "blocks": []}
    walk(card, found)
    assert all(n <= 6 for n in found["action_sets"])
    assert len(found["ids"]) == len(set(found["ids"]))
    # What people or alerts wrote never lands in a Markdown TextBlock.
    markup = ("](http", "**bold**", "<b>")
    assert not any(m in text for text in found["blocks"] for m in markup)
