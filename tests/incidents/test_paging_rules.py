"""Whom `incident page` names and how PagerDuty is asked to page them (incidents/paging.py)."""
import pytest

from incidents.catalog import load_catalog
from incidents.paging import (PERSON, SERVICE, TEAM, Named, NoPageTarget, name_target,
                              page_state, page_target, responders_of_target, split_words)
from tests.conftest import CATALOG

C = load_catalog(CATALOG)


def test_the_incident_id_splits_whom_from_the_message():
    assert split_words("data platform INC-7 lag is growing") == (
        ["data", "platform"], 7, "lag is growing")
    assert split_words("checkout #12") == (["checkout"], 12, "")
    # A bare number is part of the message: "3 replicas" must not page for INC-3.
    assert split_words("dba 3 replicas lagging") == (["dba", "3", "replicas", "lagging"], None, "")


def test_the_longest_name_wins_and_the_rest_is_the_message():
    named, rest = name_target(C, "Data Platform the replica lags".split(), whole=False)
    assert (named, rest) == (Named(TEAM, "data-platform", "Data Platform"),
                             ["the", "replica", "lags"])
    named, rest = name_target(C, ["@Noah", "Bergström", "please", "look"], whole=False)
    assert (named.kind, named.key, rest) == (PERSON, "noah.bergstrom@shopfront.example",
                                             ["please", "look"])
    assert name_target(C, ["order-db"], whole=True)[0] == Named(SERVICE, "order-db", "order-db")
    with pytest.raises(NoPageTarget, match="neither a team nor a service"):
        name_target(C, ["payments", "now"], whole=True)   # an id followed: all of it is the name


def test_what_pagerduty_is_asked_for_each_kind_of_target():
    team = page_target(C, Named(TEAM, "data-platform", "Data Platform"), "checkout-api")
    assert (team.service_id, team.escalation_policy_id, team.assignee_id) == (
        "PCHK4PI", "PEPDT03", None)
    alone = page_target(C, Named(TEAM, "payments", "Payments"), None)
    assert (alone.service_id, alone.escalation_policy_id) == ("PPAY7GW", "PEPPY02")
    service = page_target(C, Named(SERVICE, "order-db", "order-db"), "checkout-api")
    assert (service.service_id, service.escalation_policy_id) == ("PORD3DB", None)
    person = page_target(C, Named(PERSON, "ana.costa@shopfront.example", "Ana Costa"), None)
    assert (person.assignee_id, person.escalation_policy_id) == ("PJ9HT4E", None)
    assert person.service_id in ("PORD3DB", "PCAT6DB", "PLDG8DB")  # one of her team's
    with pytest.raises(NoPageTarget, match="SRE has no `escalation_policy_id`"):
        page_target(C, Named(TEAM, "sre", "SRE"), "checkout-api")
    with pytest.raises(NoPageTarget, match="monitoring has no `pagerduty_service_id`"):
        page_target(C, Named(SERVICE, "monitoring", "monitoring"), None)


def test_who_responds_for_a_target_and_how_a_page_reads():
    assert "mei.tanaka@shopfront.example" in responders_of_target(
        C, Named(TEAM, "payments", "Payments"))
    assert "priya.raman@shopfront.example" not in responders_of_target(
        C, Named(SERVICE, "payment-gateway", "payment-gateway"))
    assert "priya.raman@shopfront.example" in responders_of_target(
        C, Named(PERSON, "ana.costa@shopfront.example", "Ana Costa"))
    assert page_state({"status": "acknowledged", "pd_number": 1234,
                       "acknowledged_by": "Ana Costa"}) == \
        "PagerDuty #1234 · acknowledged by Ana Costa"
    assert page_state({"status": "requested", "requested_by": "Priya Raman"}) == \
        "requested by Priya Raman, not in PagerDuty yet"
