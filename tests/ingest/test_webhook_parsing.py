import json

import pytest

from handlers.ingest.alertmanager import parse_alertmanager
from handlers.ingest.delivery import Rejected
from handlers.ingest.pagerduty import parse_pagerduty
from handlers.ingest.signature import sign, signature_matches
from incidents import alerts as a
from tests.conftest import FIXTURES, fixture_bytes

SIGNATURES = json.loads((FIXTURES / "signatures.json").read_bytes())


@pytest.mark.parametrize("name", sorted(SIGNATURES))
def test_fixture_signatures_match_the_exact_bytes(name):
    body = fixture_bytes(name)
    assert signature_matches(SIGNATURES[name], body, ["whsec-test-secret"])
    assert not signature_matches(SIGNATURES[name], body + b" ", ["whsec-test-secret"])
    assert not signature_matches(SIGNATURES[name], body, ["another-secret"])


def test_rotation_any_signature_any_secret():
    body = b'{"event": {}}'
    header = f"{sign('old', body)}, {sign('new', body)}"
    assert signature_matches(header, body, ["new"])
    assert signature_matches(header, body, ["unrelated", "old"])
    assert not signature_matches(header, body, ["unrelated"])
    assert not signature_matches(None, body, ["new"]) and not signature_matches("v1=", body, [])


def test_v3_trigger():
    (e,) = parse_pagerduty(fixture_bytes("01-payment-gateway-triggered.json"), "w1").events
    assert (e.kind, e.external_id, e.number, e.service, e.service_ref) == \
        (a.TRIGGERED, "P8MZ3QK", 1207, "payment-gateway", "PPAY7GW")
    assert e.actor is None and e.assignees == ("Mei Tanaka",) and e.priority is None
    assert e.occurred_at.isoformat() == "2025-03-14T14:00:07.412000+00:00"


def test_v3_note_takes_the_incident_from_data_incident():
    (e,) = parse_pagerduty(fixture_bytes("05-checkout-api-annotated.json"), "w5").events
    assert (e.kind, e.external_id, e.actor) == (a.ANNOTATED, "PJ5TN2R", "Priya Raman")
    assert e.note.startswith("Upstream cause: payment-gateway")


def test_v3_priority_and_bridge():
    (e,) = parse_pagerduty(fixture_bytes("06-checkout-api-priority-updated.json"), "w6").events
    assert (e.kind, e.priority, e.actor) == (a.UPDATED, "P1", "Sarah Kim")
    assert e.conference_url.startswith("https://teams.microsoft.com/l/meetup-join/")


def test_v2_messages():
    delivery = parse_pagerduty(fixture_bytes("10-order-db-legacy-v2-trigger.json"), "w10")
    (e,) = delivery.events
    assert (e.kind, e.external_id, e.number, e.service, e.actor) == \
        (a.TRIGGERED, "PV6DB1X", 1210, "order-db", "Ravi Shah")
    assert e.event_id == "pd2:5d3a9e40-00e1-11f0-9c2b-0a58a9feac02"


def test_events_firebell_does_not_act_on_are_ignored_not_refused():
    body = json.dumps({"event": {"id": "x", "event_type": "pagey.ping", "resource_type": "pagey",
                                 "occurred_at": "2025-03-14T14:00:00Z", "data": {}}}).encode()
    delivery = parse_pagerduty(body, "w")
    assert delivery.events == () and delivery.ignored == ("pagey.ping",)
    service = json.dumps({"event": {"id": "y", "event_type": "service.updated",
                                    "resource_type": "service", "data": {}}}).encode()
    assert parse_pagerduty(service, "w").ignored == ("service.updated",)


@pytest.mark.parametrize("body,says", [
    (b"not json", "not valid JSON"), (b"[1,2]", "JSON object"), (b"{}", "not a PagerDuty"),
    (json.dumps({"event": {"event_type": "incident.triggered",
                           "occurred_at": "2025-03-14T14:00:00Z"}}).encode(), "event.id"),
    (json.dumps({"event": {"id": "e", "event_type": "incident.triggered",
                           "occurred_at": "yesterday", "data": {"id": "P"}}}).encode(),
     "not an ISO 8601"),
    (json.dumps({"messages": [{"event": "incident.trigger"}]}).encode(), "needs an id"),
])
def test_malformed_pagerduty_bodies(body, says):
    with pytest.raises(Rejected) as err:
        parse_pagerduty(body, None)
    assert err.value.status == 400 and says in err.value.reason


def test_alertmanager_group():
    (e,) = parse_alertmanager(fixture_bytes("11-alertmanager-search-service-firing.json")).events
    assert e.kind == a.TRIGGERED and e.service == "search-service"
    assert e.external_id.startswith("{}/{team=\"search\"}")
    assert e.title == "search-service p99 latency above 1.5s"
    assert [x["fingerprint"] for x in e.alerts] == ["a53d6adfea0c0066", "e52955df752c3b87"]
    assert all(x["ends_at"] is None for x in e.alerts)  # 0001-01-01 means "still firing"
    (r,) = parse_alertmanager(fixture_bytes("12-alertmanager-search-service-resolved.json")).events
    assert r.kind == a.RESOLVED and r.external_id == e.external_id
    assert r.fingerprint == e.fingerprint and r.event_id != e.event_id


def test_alertmanager_group_with_one_alert_still_firing_stays_firing():
    doc = json.loads(fixture_bytes("11-alertmanager-search-service-firing.json"))
    doc["alerts"][0]["status"] = "resolved"
    doc["alerts"][0]["endsAt"] = "2025-03-14T15:10:00Z"
    (e,) = parse_alertmanager(json.dumps(doc).encode()).events
    assert e.kind == a.TRIGGERED and e.detail == "1 of 2 alerts firing"


@pytest.mark.parametrize("doc,says", [
    ({"status": "firing", "alerts": []}, "not an Alertmanager webhook"),
    ({"groupKey": "g", "status": "burning", "alerts": []}, "not an Alertmanager webhook"),
    ({"groupKey": "g", "status": "firing", "alerts": [], "version": "3"}, "version"),
    ({"groupKey": "g", "status": "firing", "alerts": [{"status": "firing"}]}, "startsAt"),
])
def test_malformed_alertmanager_bodies(doc, says):
    with pytest.raises(Rejected, match=says):
        parse_alertmanager(json.dumps(doc).encode())
