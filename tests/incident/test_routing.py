"""Routing rules through the running app: the example catalog's rule for Fulfilment (shipping-api)
records high-latency incidents (no card, listed in the weekly digest), opens war rooms for
service-down and high-error-rate, and sends service-down cards to SRE's channel; a low-urgency
PagerDuty incident is recorded unless `routing: low_urgency: post`; `incident subscribe <team>
level>=<level>` narrows a channel; and a rule naming an unknown level or service stops start-up
with the catalog line to fix."""
import json
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from app import Firebell
from handlers.reports.compile import compile_report
from incidents.catalog import CatalogError, load_catalog
from incidents.periods import parse_period
from incidents.routing import Routing
from mail.reports import weekly_email
from tests.conftest import CATALOG, fixture_bytes
from tests.harness import card_text, make_settings

SERVICES = {"shipping-api": "PSHP2AP", "payment-gateway": "PPAY7GW", "checkout-api": "PCHK4PI"}
T0 = datetime(2025, 3, 12, 10, 0, tzinfo=timezone.utc)   # a Wednesday of 2025-W11


def _event(n: int, service: str, title: str, *, urgency: str = "high") -> bytes:
    doc = json.loads(fixture_bytes("01-payment-gateway-triggered.json"))
    when = (T0 + timedelta(minutes=n)).isoformat().replace("+00:00", "Z")
    doc["event"].update(id=f"EV{n}", event_type="incident.triggered", occurred_at=when)
    doc["event"]["data"].update(id=f"PINC{n}", number=8000 + n, title=title, created_at=when,
                                status="triggered", urgency=urgency,
                                service={"id": SERVICES[service], "summary": service,
                                         "type": "service_reference"})
    return json.dumps(doc).encode()


async def test_a_rule_records_a_level_lists_it_in_the_digest_and_routes_another(harness):
    h = harness
    await h.subscribe("default", channel="general")
    await h.subscribe("sre", channel="search")
    await h.deliver(_event(1, "shipping-api", "shipping-api: p99 latency 9 s to the carrier"))
    await h.settle()
    incident = await h.incident(1)
    assert (incident.level, incident.routed, incident.correlated) == \
        ("high-latency", "recorded", False)
    assert h.cards_in("general") == [] and h.cards_in("search") == []
    (entry,) = [e for e in await h.timeline(1) if e["kind"] == "routing"]
    assert "recorded only, no card: the routing rule of team fulfilment records high-latency" \
        in entry["text"]
    shown = await h.say("incident show INC-1", who="sarah", channel="checkout")
    assert "Recorded only (routing rules)" in card_text(shown["attachments"][0]["content"])

    tz = h.ctx.catalog.timezone
    week = parse_period("2025-W11", T0, tz)
    compiled = await compile_report(h.ctx, "weekly", now=T0 + timedelta(days=6), period=week)
    text = card_text(compiled.card("fulfilment"))
    assert "Recorded only, no card (1)" in text
    assert "INC-1 · high-latency · shipping-api — shipping-api: p99 latency 9 s" in text
    assert "Recorded only, no card (1)" in card_text(compiled.card("company"))
    assert "Recorded only, no card" not in card_text(compiled.card("checkout"))
    _, plain, _ = weekly_email(compiled.view("fulfilment"))
    assert "INC-1 | high-latency | shipping-api" in plain

    # Its level rises: routed again, and the rule sends service-down to SRE's channel.
    reply = await h.say("incident level INC-1 service-down", who="sarah", channel="general")
    assert "service-down" in reply["text"], reply
    await h.settle()
    incident = await h.incident(1)
    assert (incident.routed, incident.correlated) == (None, True)
    (card,) = h.cards_in("search")
    assert "shipping-api: p99 latency 9 s" in card_text(card)
    assert h.cards_in("general") == []


async def test_a_low_urgency_pagerduty_incident_is_recorded_unless_configured(harness):
    h = harness
    await h.subscribe("payments")
    await h.deliver(_event(1, "payment-gateway", "payment-gateway: card errors", urgency="low"))
    await h.settle()
    assert (await h.incident(1)).routed == "recorded" and h.cards_in("payments") == []
    assert any("a low-urgency PagerDuty incident" in e["text"] for e in await h.timeline(1))

    h.ctx.catalog = replace(h.ctx.catalog, routing=Routing(low_urgency="post"))
    await h.deliver(_event(2, "payment-gateway", "payment-gateway: refunds failing",
                          urgency="low"))
    await h.settle()
    assert (await h.incident(2)).routed is None
    (card,) = h.cards_in("payments")
    assert "refunds failing" in card_text(card)


async def test_subscribe_with_a_level_filter(harness):
    h = harness
    reply = await h.say("incident subscribe checkout level>=high-error-rate")
    assert "now gets Checkout incidents at high-error-rate or above" in reply["text"]
    await h.deliver(_event(1, "checkout-api", "checkout-api: p99 latency 3 s"))
    await h.deliver(_event(2, "checkout-api", "checkout-api: 5xx error rate 12%"))
    await h.settle()
    assert (await h.incident(1)).routed == "recorded"
    assert any("its channel takes checkout incidents at level>=high-error-rate" in e["text"]
               for e in await h.timeline(1))
    (card,) = h.cards_in("checkout")
    assert "5xx error rate 12%" in card_text(card)

    bad = await h.say("incident subscribe checkout level>=sev1")
    assert "`level>=sev1` is not a filter" in bad["text"]
    assert "service-down, high-error-rate, high-latency, minor" in bad["text"]
    again = await h.say("incident subscribe checkout")           # no filter: everything again
    assert again["text"].startswith("✅ This channel now gets Checkout incidents.")
    await h.deliver(_event(3, "checkout-api", "checkout-api: p99 latency 5 s"))
    await h.settle()
    assert (await h.incident(3)).routed is None and len(h.cards_in("checkout")) == 2


def test_war_rooms_follow_the_rule_else_the_levels():
    catalog = load_catalog(CATALOG)
    assert catalog.needs_war_room("shipping-api", "fulfilment", "high-error-rate")
    assert not catalog.needs_war_room("checkout-api", "checkout", "high-error-rate")
    assert catalog.needs_war_room("checkout-api", "checkout", "service-down")


def test_an_unknown_level_or_service_stops_start_up_naming_the_line(tmp_path, database_url):
    text = CATALOG.read_text().replace("      post: [service-down, high-error-rate]",
                                       "      post: [service-down, sev-1]")
    text = text.rstrip("\n") + "\n    - service: shipping-apii\n      record: [minor]\n"
    bad = tmp_path / "catalog.yaml"
    bad.write_text(text)
    lines = text.splitlines()
    first = lines.index("    - team: fulfilment") + 1
    second = lines.index("    - service: shipping-apii") + 1
    with pytest.raises(CatalogError) as err:
        load_catalog(bad)
    assert err.value.problems == [
        f"catalog line {first}: routing.rules[0].post: unknown level 'sev-1'; known: "
        "['service-down', 'high-error-rate', 'high-latency', 'minor']",
        f"catalog line {second}: routing.rules[1]: unknown service 'shipping-apii'"]
    with pytest.raises(CatalogError, match=f"catalog line {first}: routing.rules"):
        Firebell(make_settings(database_url, catalog_path=str(bad)))
