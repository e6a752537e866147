"""Issue #14 part 1: a cascade child owned by another team than its root's gets the compact card
in its own team's channel (the shared fixtures' story: checkout-api's 5xx, owned by Checkout,
caused by payment-gateway's outage, owned by Payments), whatever the arrival order; it follows
the root, and its buttons acknowledge or unlink. Same-team duplicates post nothing new."""
import pytest

from tests.harness import card_text

HEADLINE = ("🔗 INC-{child} checkout-api: HTTP 5xx error rate 23.5% on POST /v1/checkout "
            "(threshold 5%): likely caused by INC-{root} payment-gateway (Payments); follow it "
            "there.")
ROOT, CHILD = "01-payment-gateway-triggered.json", "02-checkout-api-triggered.json"


async def _story(h, order):
    await h.subscribe("checkout")
    await h.subscribe("payments")
    for name in order:
        assert (await h.pagerduty(name)).status == 200
        await h.settle()
    ids = {name: n for n, name in enumerate(order, start=1)}
    return ids[ROOT], ids[CHILD]


def _verbs(card):
    return [a["verb"] for a in card.get("actions", []) if a["type"] == "Action.Execute"]


@pytest.mark.parametrize("order", [(ROOT, CHILD), (CHILD, ROOT)], ids=["root-first",
                                                                       "child-first"])
async def test_the_paged_team_gets_one_compact_card_whatever_the_order(harness, order):
    h = harness
    root_id, child_id = await _story(h, order)
    child = await h.incident(child_id)
    assert (child.parent_id, child.link_kind, child.team) == (root_id, "cascade", "checkout")
    headline = HEADLINE.format(child=child_id, root=root_id)
    await h.connector.wait_for(lambda: headline in card_text(h.cards_in("checkout")[0]))
    (compact,) = h.cards_in("checkout")  # one message: posted, or the early card turned compact
    assert _verbs(compact) == ["ack", "unlink"]
    assert compact["actions"][-1]["title"] == f"INC-{root_id} in PagerDuty"
    assert compact["body"][0]["style"] == "emphasis"
    assert "Warning" not in str(compact)
    # The root's team keeps the full card, listing the symptom.
    (full,) = h.cards_in("payments")
    assert "Impacted downstream: checkout-api" in card_text(full)
    assert "follow it there" not in card_text(full)
    # `incident show` always gives the full card, timeline included.
    reply = await h.say(f"incident show INC-{child_id}")
    shown = card_text(reply["attachments"][0]["content"])
    assert f"Likely caused by **INC-{root_id}**" in shown and "Timeline" in shown


async def test_the_compact_card_follows_its_root(harness):
    h = harness
    root_id, child_id = await _story(h, (ROOT, CHILD))
    root = await h.incident(root_id)
    status, _ = await h.send(h.card_click("ack", {"incident": f"INC-{root_id}",
                                                  "version": root.version},
                                          channel="payments", who="mei"))
    assert status == 200
    await h.settle()
    await h.connector.wait_for(lambda: "Open · service-down · acknowledged" in
                               card_text(h.cards_in("checkout")[0]))
    assert (await h.pagerduty("07-payment-gateway-resolved.json")).status == 200
    await h.settle()
    await h.connector.wait_for(lambda: f"INC-{root_id} is resolved; check whether this one "
                               "recovered too." in card_text(h.cards_in("checkout")[0]))
    assert len(h.cards_in("checkout")) == 1


async def test_acknowledge_on_the_compact_card(harness):
    h = harness
    root_id, child_id = await _story(h, (ROOT, CHILD))
    child = await h.incident(child_id)
    status, body = await h.send(h.card_click("ack", {"incident": f"INC-{child_id}",
                                                     "version": child.version}))
    assert status == 200
    assert (await h.incident(child_id)).acknowledged_by == "Priya Raman"
    card = body["value"]
    assert "follow it there" in card_text(card) and _verbs(card) == ["unlink"]
    assert "Open · acknowledged" in card_text(card)


async def test_not_related_on_the_compact_card_unlinks_and_shows_the_full_card(harness):
    h = harness
    root_id, child_id = await _story(h, (ROOT, CHILD))
    child = await h.incident(child_id)
    status, body = await h.send(h.card_click("unlink", {"incident": f"INC-{child_id}",
                                                        "version": child.version}))
    assert status == 200
    assert (await h.incident(child_id)).parent_id is None
    assert "follow it there" not in card_text(body["value"])
    await h.settle()
    await h.connector.wait_for(lambda: "follow it there" not in
                               card_text(h.cards_in("checkout")[0]))
    assert len(h.cards_in("checkout")) == 1  # the same message, now the full card


async def test_not_related_is_for_responders(harness):
    h = harness
    _, child_id = await _story(h, (ROOT, CHILD))
    child = await h.incident(child_id)
    status, body = await h.send(h.card_click("unlink", {"incident": f"INC-{child_id}",
                                                        "version": child.version}, who="guest"))
    assert status == 200 and (await h.incident(child_id)).parent_id == 1
    assert "responder" in str(body).lower()


async def test_a_same_team_duplicate_posts_nothing_new(harness):
    h = harness
    await _story(h, (ROOT, CHILD))
    assert (await h.pagerduty("04-checkout-api-duplicate-triggered.json")).status == 200
    await h.settle()
    dup = await h.incident(3)
    assert (dup.parent_id, dup.link_kind) == (2, "duplicate")
    assert len(h.cards_in("checkout")) == 1 and len(h.cards_in("payments")) == 1


@pytest.mark.parametrize("arrivals", [
    ((1, "payment-gateway", 0), (2, "checkout-api", 14)),     # the root first, 14 min before
    ((1, "checkout-api", 0), (2, "payment-gateway", 4)),      # the symptom first, 4 min before
    ((1, "checkout-api", 2), (2, "payment-gateway", 0)),      # the root delivered late
    ((1, "payment-gateway", 0), (2, "checkout-api", 0)),      # the same second
], ids=["root-14min-before", "child-4min-before", "root-delivered-late", "same-second"])
async def test_the_same_outcome_whatever_the_gap(harness, arrivals):
    from tests.incident.test_correlation import _event
    h = harness
    await h.subscribe("checkout")
    await h.subscribe("payments")
    for n, service, minute in arrivals:
        await h.deliver(_event(n, service, f"{service} trouble", minute))
        await h.settle()
    root_id = next(n for n, service, _ in arrivals if service == "payment-gateway")
    child_id = 3 - root_id
    assert (await h.incident(child_id)).parent_id == root_id
    headline = (f"🔗 INC-{child_id} checkout-api trouble: likely caused by INC-{root_id} "
                "payment-gateway (Payments); follow it there.")
    await h.connector.wait_for(lambda: headline in card_text(h.cards_in("checkout")[0]))
    assert len(h.cards_in("checkout")) == 1 and len(h.cards_in("payments")) == 1
