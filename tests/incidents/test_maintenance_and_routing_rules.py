"""The pure rules of maintenance windows and routing: how long a typed window lasts, when a
recurring one is on (in the catalog's time zone), what the catalog may say, and which route a
level takes."""
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from incidents import maintenance as mw
from incidents import routing
from incidents.catalog import CatalogError, load_catalog, parse_catalog
from incidents.levels import parse_level_policy
from tests.conftest import CATALOG

AMS = ZoneInfo("Europe/Amsterdam")
NOW = datetime(2025, 3, 14, 21, 0, tzinfo=timezone.utc)        # 22:00 in Amsterdam


def test_a_typed_window_lasts_a_duration_or_until_a_local_time():
    assert mw.window_end(["2h", "kernel", "patching"], NOW, AMS) == \
        (NOW + timedelta(hours=2), ["kernel", "patching"])
    assert mw.window_end(["1h30m"], NOW, AMS)[0] == NOW + timedelta(minutes=90)
    assert mw.window_end(["until", "23:30"], NOW, AMS)[0] == NOW + timedelta(minutes=90)
    # 21:00 Amsterdam has passed: tomorrow's.
    assert mw.window_end(["until", "21:00"], NOW, AMS)[0] == NOW + timedelta(hours=23)
    for words in ([], ["soon"], ["until"], ["until", "24:00"], ["30s"], ["200h"], ["5"]):
        with pytest.raises(mw.BadLength):
            mw.window_end(words, NOW, AMS)


def test_window_ids_read_as_end_takes_them():
    assert [mw.parse_window_ref(x) for x in ("MW-3", "mw-3", "mw3", "3", "INC-3", "")] == \
        [3, 3, 3, None, None, None]
    assert mw.window_ref(3) == "MW-3"


def test_a_recurring_window_is_on_for_its_duration_in_the_catalog_time_zone():
    (window,) = load_catalog(CATALOG).maintenance       # Sundays 04:00 Amsterdam, 1h
    sunday = datetime(2025, 3, 16, 3, 0, tzinfo=timezone.utc)   # 04:00 CET
    assert window.started_last(sunday - timedelta(seconds=1)) is None
    assert window.started_last(sunday) == sunday
    assert window.started_last(sunday + timedelta(minutes=59)) == sunday
    assert window.started_last(sunday + timedelta(hours=1)) is None
    summer = datetime(2025, 4, 6, 2, 30, tzinfo=timezone.utc)   # 04:30 CEST
    assert window.started_last(summer) == datetime(2025, 4, 6, 2, 0, tzinfo=timezone.utc)
    assert window.key(sunday) == "catalog-db-patching@2025-03-16T03:00Z"


def test_bad_recurring_windows_are_listed_with_where_they_are():
    with pytest.raises(CatalogError) as err:
        parse_catalog({"teams": {"a": {}}, "services": [{"name": "s", "owner_team": "a"}],
                       "maintenance": [
                           {"name": "x", "service": "s", "team": "a", "cron": "0 4 * * *",
                            "duration": "1h"},
                           {"name": "y", "service": "nope", "cron": "0 4 * * *",
                            "duration": "1h"},
                           {"name": "z", "team": "a", "cron": "61 4 * * *", "duration": "1h"},
                           {"name": "w", "team": "a", "cron": "0 4 * * *", "duration": "9d"}]})
    problems = "\n".join(err.value.problems)
    assert "maintenance[0] 'x': name exactly one of `service` or `team`" in problems
    assert "maintenance[1] 'y': unknown service 'nope'" in problems
    assert "maintenance[2] 'z': cron '61 4 * * *' is not a crontab line" in problems
    assert "maintenance[3] 'w': duration '9d'" in problems


def test_routes_by_rule_urgency_and_filter():
    levels = parse_level_policy(None)
    problems: list[str] = []
    rules = routing.parse_routing(
        {"rules": [{"team": "search", "record": ["minor"], "post": ["high-latency"],
                    "channel": {"service-down": "sre"}},
                   {"service": "catalog-db", "record": ["high-latency"]}]},
        ["search-service", "catalog-db"], ["search", "sre", "data"], levels.levels, problems)
    assert problems == []

    def route(service, team, level, urgency="high"):
        return routing.route(rules, service=service, team=team, level=level,
                             source="pagerduty", urgency=urgency)
    assert route("search-service", "search", "minor").recorded_because == \
        "the routing rule of team search records minor"
    assert route("search-service", "search", "service-down") == routing.Route("sre", None)
    # A rule that posts a level explicitly wins over the low-urgency default.
    assert route("search-service", "search", "high-latency", "low").recorded_because is None
    assert "low-urgency" in route("search-service", "search", "high-error-rate",
                                  "low").recorded_because
    # The service's own rule comes before its team's.
    assert route("catalog-db", "search", "high-latency").recorded_because is not None
    assert routing.admits(levels, "high-error-rate", "service-down")
    assert routing.admits(levels, "high-error-rate", "high-error-rate")
    assert not routing.admits(levels, "high-error-rate", "minor")
    assert routing.admits(levels, None, "minor")
    assert routing.parse_filter("level>=High-Error-Rate", levels) == "high-error-rate"
    with pytest.raises(ValueError, match="is not a filter"):
        routing.parse_filter("level>sev1", levels)


def test_bad_routing_rules_name_what_and_where():
    levels = parse_level_policy(None).levels
    problems: list[str] = []
    routing.parse_routing({"low_urgency": "page", "rules": [
        {"team": "a", "post": ["minor"], "record": ["minor"], "colour": "red"},
        {"team": "a"},
        {"service": "s", "channel": {"minor": "nobody"}, "war_room": ["sev1"]}]},
        ["s"], ["a"], levels, problems, lines={0: 12, 2: 20})
    assert problems == [
        "routing.low_urgency: 'page' must be `record` or `post`",
        "catalog line 12: routing.rules[0]: unknown key(s) ['colour']; a rule has post, record, "
        "war_room and channel",
        "catalog line 12: routing.rules[0]: ['minor'] both posted and recorded",
        "routing.rules[1]: a second rule for team a",
        f"catalog line 20: routing.rules[2].war_room: unknown level 'sev1'; known: {list(levels)}",
        "catalog line 20: routing.rules[2].channel.minor: unknown team 'nobody' (a team key, or "
        "`default`)"]
    assert routing.rule_lines("routing:\n  rules:\n    - team: a\n\n    - team: b\n") == \
        {0: 3, 1: 5}
    assert routing.rule_lines("not: [valid") == {}
