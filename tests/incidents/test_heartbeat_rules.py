"""The catalog's `heartbeats:` entries, durations, when a heartbeat is missing, which Alertmanager
alert beats which heartbeat (incidents/heartbeats.py)."""
from datetime import datetime, timedelta, timezone

import pytest

from incidents.catalog import CatalogError, load_catalog, parse_catalog
from incidents.heartbeats import (MISSING, UP, WAITING, Heartbeat, missing_title,
                                  parse_duration, verdict, watchdog_of)
from tests.conftest import CATALOG

T0 = datetime(2025, 3, 14, 9, 0, tzinfo=timezone.utc)


def _raw(heartbeats):
    return {"teams": {"a": {"name": "A", "members": ["p@x.example"]}},
            "services": [{"name": "monitoring", "owner_team": "a"}],
            "people": [{"name": "P", "email": "p@x.example"}], "heartbeats": heartbeats}


def test_durations_are_seconds_minutes_hours():
    assert parse_duration("90s") == timedelta(seconds=90)
    assert parse_duration("5m") == timedelta(minutes=5)
    assert parse_duration("1h30m") == timedelta(minutes=90)
    for bad in ("5", 5, "5 min", "m", "", None, "-5m", "1.5m"):
        assert parse_duration(bad) is None, bad


def test_the_example_catalog_declares_one_heartbeat_fed_by_its_door_and_the_watchdog():
    (beat,) = load_catalog(CATALOG).heartbeats.values()
    assert (beat.name, beat.service, beat.interval, beat.grace, beat.token_env, beat.alertname) \
        == ("alert-pipeline", "monitoring", timedelta(minutes=5), timedelta(minutes=2),
            "FIREBELL_HEARTBEAT_ALERT_PIPELINE_TOKEN", "Watchdog")


def test_every_problem_of_a_heartbeat_entry_is_listed_with_where_it_is():
    with pytest.raises(CatalogError) as err:
        parse_catalog(_raw([
            {"name": "ok", "service": "monitoring", "interval": "5m", "grace": "1m",
             "token_env": "OK_TOKEN"},
            {"name": "ok", "service": "monitoring", "interval": "5m", "token_env": "OK_TOKEN"},
            {"name": "Bad Name", "service": "ghost", "interval": "5", "grace": "2 minutes",
             "token_env": "not a variable", "level": "sev0", "colour": "red"},
            {"name": "silent", "service": "monitoring", "interval": "5s"},
            {"name": "w1", "service": "monitoring", "interval": "5m", "alertname": "Watchdog"},
            {"name": "w2", "service": "monitoring", "interval": "5m", "alertname": "Watchdog"},
            "nonsense"]))
    problems = "\n".join(err.value.problems)
    for expected in ("heartbeats[1]: a second heartbeat named 'ok'",
                     "heartbeats[2]: name 'Bad Name' must be lower-case",
                     "service 'ghost' is not a service in the catalog",
                     "interval: '5' is not a duration like 90s, 5m or 1h30m",
                     "grace: '2 minutes' is not a duration",
                     "token_env: 'not a variable' is not an environment variable name",
                     "level: unknown level 'sev0'",
                     "unknown key(s) ['colour']",
                     "heartbeats[3] 'silent'.interval: '5s' must be between 10s and 7 days",
                     "heartbeats[3] 'silent': needs token_env",
                     "'w1' and 'w2' both take the Watchdog alert with the same labels",
                     "heartbeats[6]: expected {name, service, interval, grace, token_env}"):
        assert expected in problems, expected


def test_watchdog_alerts_are_told_apart_by_their_labels():
    beats = [Heartbeat("eu", "monitoring", timedelta(minutes=5), timedelta(0),
                       alertname="Watchdog", labels={"prometheus": "eu"}),
             Heartbeat("us", "monitoring", timedelta(minutes=5), timedelta(0),
                       alertname="Watchdog", labels={"prometheus": "us"})]
    assert watchdog_of(beats, {"alertname": "Watchdog", "prometheus": "us"}) == "us"
    assert watchdog_of(beats, {"alertname": "Watchdog", "prometheus": "ap"}) is None
    assert watchdog_of(beats, {"alertname": "HighLatency", "prometheus": "eu"}) is None


def test_missing_after_interval_plus_grace_counted_only_while_watched():
    beat = Heartbeat("b", "monitoring", timedelta(minutes=5), timedelta(minutes=2), "T")

    def at(minutes, last_beat=0.0, swept=None):
        return verdict(beat, last_beat=T0 + timedelta(minutes=last_beat) if last_beat is not None
                       else None, watched_since=T0, now=T0 + timedelta(minutes=minutes),
                       last_swept=T0 + timedelta(minutes=minutes - (swept or 0.2)))
    assert at(7).state == UP
    missing = at(7.5)
    assert missing.state == MISSING and missing.silent_since == T0
    assert at(3, last_beat=None).state == WAITING
    assert at(8, last_beat=None).state == MISSING
    # Not swept for longer than the allowed silence: watching starts again, nothing is missing.
    late = at(60, swept=30)
    assert late.state == WAITING and late.watched_since == T0 + timedelta(minutes=60)
    assert missing_title(beat, timedelta(minutes=7, seconds=30)) == \
        "No heartbeat from b for 7 min"
    assert missing_title(beat, timedelta(seconds=20)) == "No heartbeat from b for 1 min"
