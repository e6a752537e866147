"""Meeting bridges against the Graph stand-in (onlineMeetings createOrGet), a real SMTP server
and the Bot Connector stand-in: a service-down incident gets one Teams meeting, shown as "Join
bridge" on its card in the channel and in the war room, and in its trigger e-mail; a retry never
makes a second meeting; a missing access policy is visible on the card; responders open one for
any incident with `incident bridge`; not configured, nothing shows and Firebell says why."""
import json

import pytest

from app import Integrations
from incidents.catalog import load_catalog
from tests.conftest import CATALOG
from tests.fakes.graph import FakeGraph
from tests.fakes.smtp import FakeSmtpServer
from tests.harness import Harness, card_text, make_settings

CATALOG_DATA = load_catalog(CATALOG)
ORGANIZER = "sarah.kim@shopfront.example"
PAYMENTS_DOWN = "01-payment-gateway-triggered.json"


def join_buttons(card: dict) -> dict[str, str]:
    """{title: url} of the card's link buttons."""
    found = {}

    def walk(node):
        if isinstance(node, dict):
            if node.get("type") == "Action.OpenUrl":
                found[node["title"]] = node["url"]
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
    walk(card)
    return found


async def bridged(database_url, connector, *, organizer: str = ORGANIZER, policy: bool = True,
                  smtp: bool = True):
    graph = FakeGraph()
    await graph.start()
    for person in CATALOG_DATA.people.values():
        user = graph.add_user(person.name, upn=person.email)
        if policy and person.email == organizer:
            graph.grant_meeting_policy(user)
    mail = FakeSmtpServer() if smtp else None
    if mail:
        await mail.start()
    integrations = Integrations(
        graph_client_id=graph.client_id, graph_client_secret=graph.client_secret,
        graph_tenant_id=graph.tenant_id, graph_base_url=graph.graph_url,
        azure_authority_host=graph.base_url, meeting_organizer=organizer,
        **({"smtp_host": mail.host, "smtp_port": mail.port, "smtp_starttls": False,
            "smtp_from": "firebell@shopfront.example"} if mail else {}))
    h = await Harness(make_settings(database_url, integrations=integrations), connector).start()
    for team in ("checkout", "payments"):
        await h.subscribe(team)
    h.graph, h.smtp = graph, mail
    return h


@pytest.fixture
async def world(database_url, connector):
    h = await bridged(database_url, connector)
    yield h
    await h.stop()
    await h.graph.stop()
    await h.smtp.stop()


def organizer(h) -> dict:
    return h.graph.find_user(ORGANIZER)


async def test_service_down_gets_one_meeting_on_its_cards_and_in_its_trigger_email(world):
    h = world
    await h.pagerduty(PAYMENTS_DOWN)
    await h.settle()
    (meeting,) = h.graph.meetings_of(organizer(h))
    url = meeting["joinWebUrl"]
    assert meeting["externalId"].startswith("firebell-INC-1-")
    assert meeting["subject"].startswith("INC-1 bridge: payment-gateway")
    # Graph was asked by object id (the onlineMeetings API takes no UPN there).
    (call,) = h.graph.requests_of("create_or_get_meeting")
    assert call.params["userId"] == organizer(h)["id"] and call.status == 201
    # The channel's card and the war room's card carry the button.
    (card,) = h.cards_in("payments")
    assert join_buttons(card)["Join bridge"] == url
    (chat,) = h.graph.chats.values()
    room_cards = [a["attachments"][0]["content"] for a in h.connector.messages(chat["id"])]
    assert room_cards and join_buttons(room_cards[-1])["Join bridge"] == url
    # The trigger e-mail waited for the bridge and links it.
    (mail,) = await h.smtp.wait_for_messages(1)
    assert url in mail.message.get_body(("plain",)).get_content()
    assert "Join bridge" in mail.message.get_body(("html",)).get_content()
    timeline = [e["text"] for e in await h.timeline(1)]
    assert any(t.startswith("meeting bridge opened") for t in timeline)


async def test_a_linked_incident_shows_its_roots_bridge_and_pagerdutys_conference(world):
    h = world
    for fixture in (PAYMENTS_DOWN, "02-checkout-api-triggered.json",
                    "06-checkout-api-priority-updated.json"):
        await h.pagerduty(fixture)
        await h.settle()
    (meeting,) = h.graph.meetings_of(organizer(h))  # the cascade child gets none of its own
    child = await h.incident(2)
    assert child.parent_id == 1 and child.conference_url.startswith("https://")
    reply = await h.say("incident show 2", channel="checkout")
    buttons = join_buttons(reply["attachments"][0]["content"])
    assert buttons["Join bridge"] == meeting["joinWebUrl"]
    assert buttons["Conference bridge"] == child.conference_url


async def test_a_lost_answer_or_a_retry_never_makes_a_second_meeting(world):
    h = world
    h.graph.lose_answer_next(kind="create_or_get_meeting")  # made, but Firebell never hears
    await h.pagerduty(PAYMENTS_DOWN)
    await h.settle(timeout=15)
    (meeting,) = h.graph.meetings_of(organizer(h))
    statuses = [r.status for r in h.graph.requests_of("create_or_get_meeting")]
    assert statuses == [None, 200]  # the retry got the same meeting back
    assert join_buttons(h.cards_in("payments")[0])["Join bridge"] == meeting["joinWebUrl"]
    # Asking again changes nothing either.
    reply = await h.say("incident bridge INC-1", channel="payments", who="mei")
    assert meeting["joinWebUrl"] in reply["text"]
    await h.settle()
    assert len(h.graph.requests_of("create_or_get_meeting")) == 2


async def test_responders_open_a_bridge_for_any_incident_and_others_are_told_who_may(world):
    h = world
    await h.say("incident declare checkout latency creeping up service=checkout-api "
                "level=high-latency", channel="checkout")
    await h.settle()
    assert h.graph.meetings_of(organizer(h)) == []  # not service-down: none by itself
    refused = await h.say("incident bridge INC-1", channel="checkout", who="guest")
    assert "only the Checkout team" in refused["text"] and "open a meeting bridge" in \
        refused["text"]
    await h.settle()
    assert h.graph.requests_of("create_or_get_meeting") == []
    reply = await h.say("incident bridge INC-1", channel="checkout", who="priya")
    assert "Opening a Teams meeting for INC-1" in reply["text"]
    await h.settle()
    (meeting,) = h.graph.meetings_of(organizer(h))
    assert join_buttons(h.cards_in("checkout")[0])["Join bridge"] == meeting["joinWebUrl"]
    timeline = await h.timeline(1)
    assert "asked for by Priya Raman" in timeline[-1]["text"]
    # The card's More → Open bridge is gone once there is one.
    assert "Open bridge" not in json.dumps(h.cards_in("checkout")[0])


async def test_open_bridge_from_the_card(world):
    h = world
    await h.say("incident declare checkout latency service=checkout-api level=high-latency",
                channel="checkout")
    await h.settle()
    card = h.cards_in("checkout")[0]
    assert "Open bridge" in json.dumps(card)
    incident = await h.incident(1)
    status, body = await h.send(h.card_click("open_bridge", {"incident": "INC-1",
                                                             "version": incident.version}))
    assert status == 200 and body["type"] == "application/vnd.microsoft.card.adaptive"
    await h.settle()
    assert len(h.graph.meetings_of(organizer(h))) == 1


async def test_no_access_policy_shows_on_the_card_and_retry_works_once_granted(
        database_url, connector):
    h = await bridged(database_url, connector, policy=False, smtp=False)
    try:
        await h.pagerduty(PAYMENTS_DOWN)
        await h.settle(timeout=15)
        (call,) = h.graph.requests_of("create_or_get_meeting")
        assert call.status == 403
        text = card_text(h.cards_in("payments")[0])
        assert "Meeting bridge: failed" in text and "application access policy" in text
        assert "Join bridge" not in text
        reply = await h.say("incident bridge INC-1", channel="payments", who="mei")
        assert "failed" in reply["text"] and "incident retry INC-1" in reply["text"]
        h.graph.grant_meeting_policy(organizer(h))
        await h.say("incident retry INC-1", channel="payments")
        await h.settle(timeout=15)
        (meeting,) = h.graph.meetings_of(organizer(h))
        card = h.cards_in("payments")[0]
        assert join_buttons(card)["Join bridge"] == meeting["joinWebUrl"]
        assert "Meeting bridge: failed" not in card_text(card)
    finally:
        await h.stop()
        await h.graph.stop()


async def test_an_organizer_graph_does_not_know_is_named(database_url, connector):
    h = await bridged(database_url, connector, organizer="nobody@shopfront.example",
                      smtp=False)
    try:
        await h.pagerduty(PAYMENTS_DOWN)
        await h.settle(timeout=15)
        text = card_text(h.cards_in("payments")[0])
        assert "FIREBELL_MEETING_ORGANIZER nobody@shopfront.example is not a user" in text
        assert h.graph.requests_of("create_or_get_meeting") == []
    finally:
        await h.stop()
        await h.graph.stop()


async def test_not_configured_no_button_and_firebell_says_why(database_url, connector):
    h = await Harness(make_settings(database_url), connector).start()
    try:
        await h.subscribe("payments")
        await h.pagerduty(PAYMENTS_DOWN)
        await h.settle()
        card = h.cards_in("payments")[0]
        assert "Join bridge" not in card_text(card) and "Open bridge" not in json.dumps(card)
        reply = await h.say("incident bridge INC-1", channel="payments", who="mei")
        assert "Microsoft Graph is not configured" in reply["text"]
        status = await h.say("incident status", channel="payments", who="sarah")
        text = card_text(status["attachments"][0]["content"])
        assert "Meeting bridge" in text and "FIREBELL_MEETING_ORGANIZER" in text
    finally:
        await h.stop()


async def test_graph_without_an_organizer_says_what_to_set(database_url, connector):
    h = await bridged(database_url, connector, organizer="", smtp=False)
    try:
        await h.pagerduty(PAYMENTS_DOWN)
        await h.settle()
        assert "Join bridge" not in card_text(h.cards_in("payments")[0])
        reply = await h.say("incident bridge INC-1", channel="payments", who="mei")
        assert "set FIREBELL_MEETING_ORGANIZER" in reply["text"]
        assert h.graph.requests_of("create_or_get_meeting") == []
    finally:
        await h.stop()
        await h.graph.stop()


async def test_a_stakeholder_update_is_posted_in_the_war_room_with_the_bridge(world):
    h = world
    await h.pagerduty(PAYMENTS_DOWN)
    await h.settle()
    (chat,) = h.graph.chats.values()
    reply = await h.say("incident update INC-1 identified Gateway pods crash on start",
                        channel="payments", who="mei")
    assert "Update 1 on INC-1" in reply["text"]
    await h.settle()
    room = [a["attachments"][0]["content"] for a in h.connector.messages(chat["id"])]
    (update,) = [c for c in room if "INC-1 · update 1" in card_text(c)]
    assert "Gateway pods crash on start" in card_text(update)
    (meeting,) = h.graph.meetings_of(organizer(h))
    assert join_buttons(update)["Join bridge"] == meeting["joinWebUrl"]
    # payment-gateway's stakeholders (catalog) get it by e-mail.
    mails = await h.smtp.wait_for_messages(2)
    (mail,) = [m for m in mails if "update 1" in m.message["Subject"]]
    assert mail.rcpt_tos == ["sarah.kim@shopfront.example"]
