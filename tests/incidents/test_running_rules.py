"""The rules of running an incident (pure): catalog roles and cadences, validated at load with
every problem named; role names as people type them; when an update is overdue and which
cadence a reminder belongs to; the digest's update figures; the bridge's meeting key."""
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
import yaml

from incidents import bridge, roles, updates
from incidents.catalog import CatalogError, load_catalog, parse_catalog
from incidents.model import Incident
from tests.conftest import CATALOG, SHARED

T0 = datetime(2025, 3, 31, 8, 0, tzinfo=timezone.utc)


def catalog_with(**extra):
    raw = yaml.safe_load(CATALOG.read_text())
    levels = extra.pop("levels", None)
    if levels is not None:
        raw["levels"] = {**raw["levels"], **levels}
    return parse_catalog({**raw, **extra})


def test_the_example_catalog_shows_each_new_key():
    catalog = load_catalog(CATALOG)
    assert catalog.roles == ("communications", "scribe", "customer-liaison")
    assert catalog.levels.update_every == {"service-down": timedelta(minutes=30),
                                           "high-error-rate": timedelta(minutes=60)}


def test_without_the_keys_the_built_in_roles_and_no_cadence():
    catalog = load_catalog(SHARED / "fixtures" / "services.yaml")
    assert catalog.roles == roles.BUILT_IN and catalog.levels.update_every == {}


@pytest.mark.parametrize("raw, problem", [
    (["Customer Liaison"], "roles[0]: 'Customer Liaison' is not a role name"),
    (["commander"], "roles[0]: 'commander' is the incident commander"),
    ("scribe", "roles: expected a list of role names"),
])
def test_bad_roles_are_named_at_load(raw, problem):
    with pytest.raises(CatalogError) as err:
        catalog_with(roles=raw)
    assert any(p.startswith(problem) for p in err.value.problems), err.value.problems


def test_listing_a_built_in_role_again_is_fine():
    assert catalog_with(roles=["scribe", "legal"]).roles == ("communications", "scribe", "legal")


@pytest.mark.parametrize("raw, problem", [
    ({"service-down": "30"}, "levels.update_every.service-down: '30' is not a duration"),
    ({"service-down": "10s"}, "shorter than 30s"),
    ({"sev1": "30m"}, "levels.update_every: unknown level 'sev1'"),
    (["30m"], "levels.update_every: expected a mapping"),
])
def test_bad_cadences_are_named_at_load(raw, problem):
    with pytest.raises(CatalogError) as err:
        catalog_with(levels={"update_every": raw})
    assert problem in str(err.value)


def test_durations():
    assert updates.parse_duration("90s") == timedelta(seconds=90)
    assert updates.parse_duration("60m") == timedelta(hours=1)
    assert updates.parse_duration("2H") == timedelta(hours=2)
    for bad in ("", "m30", "1.5h", 30, None, "30 minutes"):
        assert updates.parse_duration(bad) is None
    assert updates.cadence_text(timedelta(seconds=90)) == "90 s"
    assert updates.cadence_text(timedelta(minutes=30)) == "30 min"


def test_role_names_as_people_type_them():
    known = ("communications", "scribe", "customer-liaison")
    assert roles.normalise("Scribe", known) == "scribe"
    assert roles.normalise("customer liaison", known) == "customer-liaison"
    assert roles.normalise("IC", known) == roles.normalise("commander", known) == "commander"
    assert roles.normalise("janitor", known) is None
    assert roles.title("customer-liaison") == "Customer liaison"


def test_an_update_is_overdue_once_per_cadence():
    every = timedelta(minutes=30)
    assert updates.overdue_spell(T0, T0 + timedelta(minutes=29), every) is None
    assert updates.overdue_spell(T0, T0 + timedelta(minutes=30), every) == 1
    assert updates.overdue_spell(T0, T0 + timedelta(minutes=59), every) == 1
    assert updates.overdue_spell(T0, T0 + timedelta(minutes=61), every) == 2


def test_update_figures_count_and_median_gap():
    incidents = [{"id": 1, "title": "a", "team": "checkout", "level": "service-down"},
                 {"id": 2, "title": "b", "team": "payments", "level": "service-down"},
                 {"id": 3, "title": "c", "team": None, "level": "minor"}]
    posted = [{"incident_id": 1, "posted_at": T0 + timedelta(minutes=m)} for m in (100, 10, 40)]
    posted.append({"incident_id": 3, "posted_at": T0})
    figures = updates.update_figures(incidents, posted)
    assert [(f.incident_id, f.count, f.median_gap_seconds) for f in figures] == [
        (1, 3, 45 * 60.0), (3, 1, None), (2, 0, None)]


def test_the_meeting_key_is_stable_for_one_incident_and_differs_between_installs():
    incident = Incident(id=7, source="teams", external_id=None, title="checkout is down",
                        service="checkout-api", team="checkout", level="service-down",
                        status="open", triggered_at=T0, fingerprint="f", version=1,
                        created_at=T0, updated_at=T0)
    here = bridge.installation_key("https://firebell.shopfront.example/")
    key = bridge.external_id(incident, here)
    assert key.startswith("firebell-INC-7-") and key == bridge.external_id(
        replace(incident, version=9, title="renamed"), here)
    assert key != bridge.external_id(incident, bridge.installation_key("http://localhost:3978"))
    reset = replace(incident, created_at=T0 + timedelta(days=30))   # a new INC-7 after a reset
    assert key != bridge.external_id(reset, here)
    assert bridge.opens_automatically("service-down")
    assert not bridge.opens_automatically("high-error-rate")
    assert len(bridge.subject(replace(incident, title="x" * 500))) == bridge.SUBJECT_LIMIT
