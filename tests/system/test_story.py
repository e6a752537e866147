"""The shared fixture story (shared/fixtures/pagerduty/README.md), played end to end through the
real HTTP endpoints, on whichever database the run uses."""
from tests.harness import CHANNELS, card_text


async def _setup_channels(h):
    await h.send(h.install())
    for team in ("checkout", "payments", "search"):
        await h.subscribe(team)
    await h.subscribe("default", channel="general")


async def test_the_friday_story(harness):
    h = harness
    await _setup_channels(h)

    # 01 payment-gateway down: a new root incident, its card in the Payments channel.
    resp = await h.pagerduty("01-payment-gateway-triggered.json")
    assert resp.status == 200
    await h.settle()
    pg = await h.incident(1)
    assert (pg.service, pg.team, pg.level, pg.status, pg.pd_number) == \
        ("payment-gateway", "payments", "service-down", "open", 1207)
    (card,) = h.cards_in("payments")
    assert "INC-1" in card_text(card) and "0/6 pods ready" in card_text(card)
    assert "<at>Mei Tanaka</at>" in card_text(card)

    # 02 checkout-api 5xx two minutes later: a cascade child of INC-1. Checkout was paged too,
    # so its channel gets the compact card pointing at Payments' incident.
    await h.pagerduty("02-checkout-api-triggered.json")
    await h.settle()
    checkout = await h.incident(2)
    assert (checkout.parent_id, checkout.link_kind, checkout.level) == (1, "cascade",
                                                                        "high-error-rate")
    assert "2 min 4 s before" in checkout.link_reason
    (compact,) = h.cards_in("checkout")
    assert "likely caused by INC-1 payment-gateway (Payments); follow it there" in \
        card_text(compact)
    assert "Impacted downstream: checkout-api" in card_text(h.cards_in("payments")[0])

    # The same delivery again (PagerDuty retries) changes nothing and posts nothing.
    timeline_before = len(await h.timeline(2))
    posts_before = len(h.connector.posts)
    resp = await h.pagerduty("02-checkout-api-triggered.json")
    assert resp.status == 200
    await h.settle()
    assert len(await h.incidents()) == 2
    assert len(await h.timeline(2)) == timeline_before
    assert len(h.connector.posts) == posts_before

    # 03 Priya acknowledges; 04 Tom opens the same problem by hand: a duplicate of #1208.
    await h.pagerduty("03-checkout-api-acknowledged.json")
    await h.pagerduty("04-checkout-api-duplicate-triggered.json")
    await h.settle()
    assert (await h.incident(2)).acknowledged_by == "Priya Raman"
    dup = await h.incident(3)
    assert (dup.parent_id, dup.link_kind, dup.pd_number) == (2, "duplicate", 1209)
    assert len(h.cards_in("checkout")) == 1  # nobody is paged twice

    # 05 a note, 06 priority P1 and a bridge.
    await h.pagerduty("05-checkout-api-annotated.json")
    await h.pagerduty("06-checkout-api-priority-updated.json")
    await h.settle()
    checkout = await h.incident(2)
    assert checkout.priority == "P1" and checkout.conference_url.startswith("https://teams")
    texts = [e["text"] for e in await h.timeline(2)]
    assert any(t.startswith("Upstream cause: payment-gateway") for t in texts)
    assert any("priority none → P1" in t for t in texts)

    # 07 payment-gateway resolved straight from triggered; 08 checkout resolved.
    await h.pagerduty("07-payment-gateway-resolved.json")
    await h.pagerduty("08-checkout-api-resolved.json")
    await h.settle()
    assert (await h.incident(1)).status == "resolved"
    assert (await h.incident(2)).status == "resolved"
    assert (await h.incident(1)).first_acknowledged_at is None  # never acknowledged
    payments_card = h.cards_in("payments")[0]
    assert "RESOLVED" in card_text(payments_card)
    assert len(h.cards_in("payments")) == 1  # the same message, updated in place

    # 09 checkout reopened: the same incident and history, Open again.
    await h.pagerduty("09-checkout-api-reopened.json")
    await h.settle()
    reopened = await h.incident(2)
    assert (reopened.status, reopened.resolved_at, reopened.parent_id) == ("open", None, 1)
    assert len(await h.incidents()) == 3
    assert [e["kind"] for e in await h.timeline(2)][-1] == "reopened"

    # 10 legacy V2 body, unsigned, authenticated by the URL token: order-db.
    resp = await h.pagerduty("10-order-db-legacy-v2-trigger.json",
                             headers={"X-PagerDuty-Signature": None}, query="?token=v2-token")
    assert resp.status == 200
    await h.settle()
    order_db = await h.incident(4)
    assert (order_db.service, order_db.team, order_db.status, order_db.pd_number) == \
        ("order-db", "data-platform", "open", 1210)
    # Data Platform has no channel: its card goes to the default channel.
    assert any("INC-4" in card_text(c) for c in h.cards_in("general"))

    # 11/12 Alertmanager group firing then resolved: one incident, keyed on groupKey.
    assert (await h.alertmanager("11-alertmanager-search-service-firing.json")).status == 200
    await h.settle()
    search = await h.incident(5)
    assert (search.source, search.service, search.level) == ("alertmanager", "search-service",
                                                              "high-latency")
    assert len(search.details["alerts"]) == 2
    assert (await h.alertmanager("12-alertmanager-search-service-resolved.json")).status == 200
    await h.settle()
    assert (await h.incident(5)).status == "resolved"
    (search_card,) = h.cards_in("search")
    assert "RESOLVED" in card_text(search_card)

    # #1209 is left open on purpose.
    assert (await h.incident(3)).status == "open"
    assert set(h.connector.count_by_conversation()) <= {
        *(c for c in CHANNELS.values()), *(p["conversation_id"] for p in h.connector.posts)}
