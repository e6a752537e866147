from datetime import datetime, timezone

import pytest

from incidents.catalog import CatalogError, load_catalog, parse_catalog
from tests.conftest import CATALOG, SHARED


def test_loads_the_shared_example_catalog_as_is():
    catalog = load_catalog(SHARED / "fixtures" / "services.yaml")
    assert set(catalog.teams) == {"checkout", "payments", "data-platform", "search",
                                  "fulfilment", "web", "sre"}
    checkout = catalog.service("checkout-api")
    assert checkout.owner_team == "checkout"
    assert checkout.calls == ("payment-gateway", "order-db")
    assert checkout.primary == "priya.raman@shopfront.example"
    assert checkout.revenue_per_minute_usd == 2500
    assert catalog.service_by_pagerduty_id("PPAY7GW").name == "payment-gateway"
    assert catalog.person("priya.raman@shopfront.example").pagerduty_user_id == "PX7QK2M"
    assert catalog.incident_commanders() == ["sarah.kim@shopfront.example"]
    assert catalog.timezone.key == "Europe/Amsterdam"


def test_repo_catalog_adds_level_rules_on_top_of_the_shared_one():
    catalog = load_catalog(CATALOG)
    assert catalog.levels.level_for("ledger-db: disk 97% full") == "service-down"
    assert catalog.levels.levels[:4] == ("service-down", "high-error-rate", "high-latency",
                                        "minor")


def test_standby_rotates_weekly_on_monday_0900_local_time():
    standby = load_catalog(CATALOG).standby
    # Week of 2025-01-06 (the start): first in each list.
    assert standby.on_standby("dba", datetime(2025, 1, 7, 12, tzinfo=timezone.utc)) == \
        "ravi.shah@shopfront.example"
    # Monday 2025-01-13 08:30 local is still the old week; 09:00 local hands over.
    assert standby.on_standby("dba", datetime(2025, 1, 13, 7, 30, tzinfo=timezone.utc)) == \
        "ravi.shah@shopfront.example"
    assert standby.on_standby("dba", datetime(2025, 1, 13, 8, 0, tzinfo=timezone.utc)) == \
        "ana.costa@shopfront.example"
    # The story's Friday 2025-03-14 is week 10 after the start: devops has 3 people.
    assert standby.on_standby("devops", datetime(2025, 3, 14, 14, tzinfo=timezone.utc)) == \
        "jonas.weber@shopfront.example"


def _minimal(**overrides):
    raw = {"teams": {"a": {"name": "A", "email": "a@x.example", "members": ["p@x.example"]}},
           "services": [{"name": "svc", "owner_team": "a", "calls": []}],
           "people": [{"name": "P", "email": "p@x.example"}]}
    raw.update(overrides)
    return raw


def test_every_problem_is_listed_with_where_it_is():
    raw = _minimal(services=[
        {"name": "svc", "owner_team": "nobody", "calls": ["ghost"]},
        {"name": "other", "owner_team": "a", "oncall": {"primary": "not-an-email"}},
    ])
    raw["teams"]["a"]["members"] = ["bad address"]
    with pytest.raises(CatalogError) as err:
        parse_catalog(raw)
    problems = "\n".join(err.value.problems)
    assert "owner_team 'nobody' is not a team" in problems
    assert "calls unknown service 'ghost'" in problems
    assert "bad e-mail address 'not-an-email'" in problems
    assert "teams.a.members: bad e-mail address 'bad address'" in problems


def test_bad_level_rules_and_time_zones_are_refused():
    with pytest.raises(CatalogError) as err:
        parse_catalog(_minimal(timezone="Mars/Olympus",
                               levels={"rules": [{"level": "minor", "match": "("}]}))
    text = str(err.value)
    assert "unknown time zone 'Mars/Olympus'" in text
    assert "bad regex" in text


def test_missing_file_and_bad_yaml_say_so(tmp_path):
    with pytest.raises(CatalogError, match="does not exist"):
        load_catalog(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("teams: [unclosed")
    with pytest.raises(CatalogError, match="not valid YAML"):
        load_catalog(bad)
