import pytest

from incidents.fingerprint import alert_fingerprint, normalise_title, title_fingerprint
from incidents.levels import parse_level_policy

POLICY = parse_level_policy(None)


@pytest.mark.parametrize("title,labels,level", [
    ("payment-gateway: 0/6 pods ready, health checks failing in prod-eu-west-1", None,
     "service-down"),
    ("checkout-api: HTTP 5xx error rate 23.5% on POST /v1/checkout (threshold 5%)", None,
     "high-error-rate"),
    ("search-service p99 latency above 1.5s", {"alertname": "SearchServiceHighLatency"},
     "high-latency"),
    ("order-db: replication lag 47s on order-db-replica-2 (threshold 30s)", None, "high-latency"),
    ("disk usage at 71%", None, "minor"),
    ("something odd", {"alertname": "Weird", "severity": "critical"}, "service-down"),
    ("", {"alertname": "KubeAPIDown"}, "service-down"),
])
def test_default_level_rules(title, labels, level):
    assert POLICY.level_for(title, labels) == level


def test_postmortem_and_war_room_levels():
    assert POLICY.needs_postmortem_for("high-latency")
    assert not POLICY.needs_postmortem_for("minor")
    assert POLICY.needs_war_room("service-down") and not POLICY.needs_war_room("high-latency")


def test_catalog_rules_come_first_and_may_add_levels():
    policy = parse_level_policy({"rules": [{"level": "security", "match": "cve|breach"}],
                                 "needs_postmortem": ["service-down", "security"]})
    assert policy.level_for("Possible breach on login service down") == "security"
    assert "security" in policy.levels and policy.needs_postmortem_for("security")


@pytest.mark.parametrize("word,level", [("Service Down", "service-down"),
                                        ("HIGH_LATENCY", "high-latency"), ("nope", None)])
def test_user_typed_levels_are_normalised(word, level):
    assert POLICY.normalise(word) == level


def test_normalised_titles_mask_volatile_parts():
    a = normalise_title("checkout-api: HTTP 5xx error rate 23.5% on POST /v1/checkout")
    b = normalise_title("checkout-api: HTTP 5xx error rate 31.0% on POST /v1/checkout")
    assert a == b
    masked = normalise_title("pod api-7d9f8c6b5-x2kqp at 2025-03-14T15:04:12Z from 10.0.0.1 "
                             "req 3f2a9c1e-1b2c-4d5e-8f90-123456789abc sha 9f4c2b7e1a")
    for volatile in ("7d9f8c6b5", "2025", "10.0.0.1", "3f2a9c1e", "9f4c2b7e1a"):
        assert volatile not in masked


def test_fingerprints_keep_services_apart():
    title = "HTTP 5xx error rate 23.5%"
    assert title_fingerprint("checkout-api", title) == title_fingerprint("checkout-api",
                                                                        "HTTP 5xx error rate 9%")
    assert title_fingerprint("checkout-api", title) != title_fingerprint("order-db", title)
    labels = {"alertname": "HighLatency", "service": "search"}
    assert alert_fingerprint("HighLatency", labels) == alert_fingerprint("HighLatency",
                                                                         dict(labels))
    assert alert_fingerprint("HighLatency", labels) != alert_fingerprint(
        "HighLatency", {**labels, "service": "checkout"})
