"""Follow-ups through the outbox against real stand-ins: war rooms (Graph), JIRA tasks, e-mail
(a real SMTP server) and two-way PagerDuty; each exactly once, including across outages."""
import asyncio
import json
import re
from dataclasses import replace

import pytest

from app import Integrations
from incidents.catalog import load_catalog, war_room_members
from storage import postmortems as pm_store
from tests.conftest import CATALOG
from tests.fakes.graph import FakeGraph
from tests.fakes.jira import FakeJira
from tests.fakes.pagerduty import FakePagerDuty
from tests.fakes.smtp import FakeSmtpServer
from tests.harness import Harness, card_text, make_settings

CATALOG_DATA = load_catalog(CATALOG)


@pytest.fixture
async def world(database_url, connector):
    graph, jira, smtp, pd = FakeGraph(), FakeJira(), FakeSmtpServer(), FakePagerDuty()
    await graph.start()
    await jira.start()
    await smtp.start()
    await pd.start()
    for person in CATALOG_DATA.people.values():
        graph.add_user(person.name, upn=person.email)
        jira.add_user(person.email, display_name=person.name)
    for team in CATALOG_DATA.teams.values():
        jira.add_project(team.jira_project)
    pd.add_user("Firebell Bot", "firebell@shopfront.example")
    for svc in CATALOG_DATA.services.values():
        pd.add_service(svc.name, id=svc.pagerduty_service_id)
    pd.add_incident("payment-gateway down", "PPAY7GW", id="P8MZ3QK")
    pd.add_incident("checkout 5xx", "PCHK4PI", id="PJ5TN2R")
    integrations = Integrations(
        graph_client_id=graph.client_id, graph_client_secret=graph.client_secret,
        graph_tenant_id=graph.tenant_id, graph_base_url=graph.graph_url,
        azure_authority_host=graph.base_url, jira_url=jira.base_url, jira_email=jira.email,
        jira_api_token=jira.api_token, smtp_host=smtp.host, smtp_port=smtp.port,
        smtp_starttls=False, smtp_from="firebell@shopfront.example",
        pagerduty_api_token=pd.token if hasattr(pd, "token") else "pd-api-token",
        pagerduty_api_url=pd.base_url, pagerduty_from_email="firebell@shopfront.example")
    settings = make_settings(database_url, integrations=integrations)
    h = await Harness(settings, connector).start()
    await h.send(h.install())
    for team in ("checkout", "payments"):
        await h.subscribe(team)
    await h.subscribe("default", channel="general")
    h.graph, h.jira, h.smtp, h.pd = graph, jira, smtp, pd
    yield h
    await h.stop()
    for fake in (graph, jira, smtp, pd):
        await fake.stop()


def _postmortem_links(text):
    return re.findall(r"http://firebell\.test/postmortems/[A-Za-z0-9_-]+", text)


async def test_cards_mails_and_jira_tasks_link_the_postmortem_by_its_token(world):
    h = world
    await h.pagerduty("01-payment-gateway-triggered.json")
    await h.settle()
    async with h.ctx.db.read() as conn:
        token = (await pm_store.get(conn, 1))["link_token"]
    link = f"http://firebell.test/postmortems/{token}"
    (card,) = h.cards_in("payments")
    await h.smtp.wait_for_messages(1)
    mail = h.smtp.messages[0].message
    (task,) = h.jira.issues_labelled("firebell-INC-1-postmortem")
    # An action item's task links the RCA too.
    good = {"incident": "INC-1", "items": [None], "summary": "All pods crashed",
            "item_0_title": "Validate config before push", "item_0_owner": "Mei Tanaka",
            "item_0_due": "2025-03-28"}
    status, body = await h.send(h.card_click("rca_save", good, channel="payments", who="mei"))
    await h.settle()
    (item_task,) = h.jira.issues_labelled("firebell-INC-1-action-1")
    for where, text in (("card", json.dumps(card)), ("summary card", json.dumps(body)),
                        ("JIRA task", task.description),
                        ("JIRA action item", item_task.description)):
        assert set(_postmortem_links(text)) == {link}, where
        assert "/incidents/INC-1/postmortem" not in text, where
    # The trigger e-mail has no postmortem link (the close e-mail's is checked below).
    assert "/postmortem" not in mail.get_body(("plain",)).get_content()


async def test_service_down_gets_war_room_postmortem_jira_and_email_once(world):
    h = world
    await h.pagerduty("01-payment-gateway-triggered.json")
    await h.settle()
    # War room: one chat, named after the incident, with the right people.
    (chat,) = h.graph.chats_with_topic("INC-1 payment-gateway: payment-gateway: 0/6 pods ready, "
                                       "health checks failing in prod-eu-west-1")
    expected = set(war_room_members(CATALOG_DATA, "payment-gateway", None, h.ctx.now()))
    member_upns = {h.graph.find_user(uid)["userPrincipalName"]
                   for uid in h.graph.member_ids(chat["id"])}
    assert member_upns == expected
    assert {"mei.tanaka@shopfront.example", "sven.lindqvist@shopfront.example",
            "sarah.kim@shopfront.example"} <= member_upns
    # The incident card is posted in the war room too, and the channel card links to it.
    assert h.connector.messages(chat["id"])
    (card,) = h.cards_in("payments")
    assert "War room" in card_text(card) and "Postmortem" in card_text(card)
    # JIRA: the postmortem task in Payments' project, labelled with the incident.
    (task,) = h.jira.issues_labelled("firebell-INC-1-postmortem")
    assert task.key.startswith("PAY-") and task.summary.startswith("Postmortem: INC-1")
    assert task.key in card_text(h.cards_in("payments")[0])
    # E-mail on trigger to the team, the on-call and (cc) the stakeholders.
    await h.smtp.wait_for_messages(1)
    (mail,) = h.smtp.messages
    assert {"payments@shopfront.example", "mei.tanaka@shopfront.example"} <= set(mail.rcpt_tos)
    assert mail.message["Subject"].startswith("[Firebell] INC-1 service-down")
    timeline = [e["kind"] for e in await h.timeline(1)]
    assert {"postmortem", "war_room", "jira", "email"} <= set(timeline)

    # A cascade child: no war room, task or e-mail of its own; its people join the root's room.
    await h.pagerduty("02-checkout-api-triggered.json")
    await h.settle()
    assert len(h.graph.chats) == 1
    assert not h.jira.issues_labelled("firebell-INC-2-postmortem")
    assert len(h.smtp.messages) == 1
    members = {h.graph.find_user(uid)["userPrincipalName"] for uid in h.graph.member_ids(chat["id"])}
    assert "priya.raman@shopfront.example" in members


async def test_teams_ack_and_resolve_reach_pagerduty_and_the_echo_changes_nothing(world):
    h = world
    await h.pagerduty("01-payment-gateway-triggered.json")
    await h.settle()
    version = (await h.incident(1)).version
    await h.send(h.card_click("ack", {"incident": "INC-1", "version": version}, channel="payments",
                              who="mei"))
    await h.settle()
    assert h.pd.incidents["P8MZ3QK"].status == "acknowledged"
    entries = len(await h.timeline(1))
    # PagerDuty then sends the change back: nothing changes.
    body = (b'{"event": {"id": "01ECHO", "event_type": "incident.acknowledged", '
            b'"resource_type": "incident", "occurred_at": "2099-01-01T00:00:00Z", '
            b'"agent": {"type": "user_reference", "id": "PX", "summary": "Firebell Bot"}, '
            b'"data": {"id": "P8MZ3QK", "type": "incident", "title": "payment-gateway down", '
            b'"status": "acknowledged"}}}')
    from handlers.ingest.signature import sign
    resp = await h.pagerduty("x", body=body, headers={"X-PagerDuty-Signature": sign(
        "whsec-test-secret", body), "Content-Type": "application/json"})
    assert resp.status == 200
    await h.settle()
    assert (await h.incident(1)).acknowledged_by == "Mei Tanaka"
    assert len(await h.timeline(1)) == entries
    await h.say("incident resolve INC-1", channel="payments", who="mei")
    await h.settle()
    assert h.pd.incidents["P8MZ3QK"].status == "resolved"


async def test_close_waits_for_the_rca_then_mails_it(world):
    h = world
    await h.pagerduty("01-payment-gateway-triggered.json")
    await h.settle()
    await h.say("incident resolve 1", channel="payments", who="mei")
    reply = await h.say("incident close 1", channel="payments", who="mei")
    assert "postmortem is incomplete" in reply["text"] and "root cause" in reply["text"]

    status, body = await h.send(h.card_click("rca", {"incident": "INC-1"}, channel="payments"))
    form = body["value"]
    assert form["body"][0]["text"].startswith("📝 **RCA for INC-1**")
    timeline_input = next(i for i in form["body"] if i.get("id") == "timeline")
    assert "Triggered in PagerDuty #1207" in timeline_input["value"]

    # A bad owner and date come back as messages in the card; nothing is lost.
    bad = {"incident": "INC-1", "items": [None, None], "summary": "pods crashed",
           "item_0_title": "Add readiness alarm", "item_0_owner": "nobody here",
           "item_0_due": "soon"}
    status, body = await h.send(h.card_click("rca_save", bad, channel="payments", who="mei"))
    text = card_text(body["value"])
    assert "owner `nobody here`" in text and "due date must look like" in text
    assert next(i for i in body["value"]["body"] if i.get("id") == "summary")["value"] == \
        "pods crashed"

    good = {"incident": "INC-1", "items": [None, None], "summary": "All pods crashed",
            "customer_impact": "Card payments failed for 31 minutes",
            "detection": "PagerDuty health check", "root_cause": "Bad config push",
            "resolution": "Rolled back", "impact_minutes": "31",
            "item_0_title": "Validate config before push", "item_0_owner": "Mei Tanaka",
            "item_0_due": "2025-03-28"}
    status, body = await h.send(h.card_click("rca_save", good, channel="payments", who="mei"))
    assert "Postmortem INC-1" in card_text(body["value"]) and "complete" in card_text(body["value"])
    await h.settle()
    (pm_task,) = h.jira.issues_labelled("firebell-INC-1-postmortem")
    (item_task,) = h.jira.issues_labelled("firebell-INC-1-action-1")
    assert item_task.summary == "Validate config before push"
    assert h.jira.links_of(item_task.key)
    reply = await h.say("incident close 1", channel="payments", who="mei")
    assert "closed by" in reply["text"]
    await h.settle()
    await h.smtp.wait_for_messages(2)
    closed = h.smtp.messages[-1].message
    assert closed["Subject"] == ("[Firebell] INC-1 closed: payment-gateway: 0/6 pods ready, "
                                 "health checks failing in prod-eu-west-1")
    text = closed.get_body(("plain",)).get_content()
    assert "Bad config push" in text and "Validate config before push" in text
    html = closed.get_body(("html",)).get_content()
    assert len(set(_postmortem_links(text + html))) == 1 and "/incidents/INC-1/" not in html
    # The postmortem page (at its capability URL, linked from the mail) shows it all, escaped.
    page_url = _postmortem_links(text)[0].replace("http://firebell.test", h.url)
    async with h.http.get(page_url) as resp:
        page = await resp.text()
        assert resp.status == 200 and "Bad config push" in page and item_task.key in page
    async with h.http.get(page_url + ".md") as resp:
        assert "## Root cause" in await resp.text()
    async with h.http.get(f"{h.url}/incidents/INC-1/postmortem") as resp:
        assert resp.status == 404


async def test_jira_down_then_back_files_the_task_once_and_the_card_shows_it(world):
    h = world
    await h.jira.go_down()
    await h.pagerduty("01-payment-gateway-triggered.json")
    await h.settle(timeout=3) if False else await asyncio.sleep(1.0)
    card = card_text(h.cards_in("payments")[0]) if h.cards_in("payments") else ""
    await h.connector.wait_for(lambda: "JIRA: failed" in card_text(h.cards_in("payments")[0]),
                               timeout=10)
    await h.jira.come_back()
    h.firebell.worker.wake()
    await h.say("incident retry INC-1", channel="payments")
    await h.settle(timeout=15)
    assert len(h.jira.issues_labelled("firebell-INC-1-postmortem")) == 1
    assert "JIRA: failed" not in card_text(h.cards_in("payments")[0])
    assert card is not None


async def test_a_lost_create_answer_does_not_make_a_second_task(world):
    h = world
    h.jira.lose_answer_next(kind="create")
    await h.pagerduty("01-payment-gateway-triggered.json")
    await h.settle(timeout=15)
    assert len(h.jira.issues_labelled("firebell-INC-1-postmortem")) == 1


async def test_smtp_refusing_for_a_while_delivers_once_when_back(world):
    h = world
    await h.smtp.refuse()
    await h.pagerduty("01-payment-gateway-triggered.json")
    await asyncio.sleep(0.5)
    assert h.smtp.messages == []
    await h.smtp.come_back()
    await h.say("incident retry INC-1", channel="payments")
    await h.settle(timeout=15)
    await h.smtp.wait_for_messages(1)
    await asyncio.sleep(0.3)
    assert len(h.smtp.messages) == 1


async def test_graph_rate_limit_is_honoured(world):
    h = world
    h.graph.fail_next(1, status=429, retry_after=1, kind="create_chat")
    await h.pagerduty("01-payment-gateway-triggered.json")
    await h.settle(timeout=15)
    assert len(h.graph.chats) == 1
    statuses = [r.status for r in h.graph.requests_of("create_chat")]
    assert statuses == [429, 201]


async def test_without_configuration_the_cards_stay_quiet_and_admins_are_told(
        database_url, connector, caplog):
    """Issue #14 part 4: "X is not configured" is admin noise on an incident card (open or
    closed). It is said in the start-up log, the retry reply and `incident status`."""
    caplog.set_level("WARNING", logger="firebell")
    h = await Harness(make_settings(database_url, integrations=Integrations()), connector).start()
    try:
        assert any("JIRA is not configured, so no postmortem and action-item tasks: set "
                   "JIRA_URL" in r.getMessage() for r in caplog.records)
        await h.subscribe("payments")
        await h.pagerduty("01-payment-gateway-triggered.json")
        await h.pagerduty("07-payment-gateway-resolved.json")
        await h.settle()
        resolved = card_text(h.cards_in("payments")[0])
        assert "Resolved" in resolved and "not configured" not in resolved
        assert "Firebell-only" not in resolved
        reply = await h.say("incident retry INC-1", channel="payments", who="mei")
        assert "Microsoft Graph is not configured, so no war rooms: set GRAPH_CLIENT_ID" in \
            reply["text"]
        reply = await h.say("incident status", channel="payments", who="sarah")
        status = card_text(reply["attachments"][0]["content"])
        assert "PagerDuty: not configured" in status
        reply = await h.say("incident waive INC-1 a probe", channel="payments", who="sarah")
        reply = await h.say("incident close INC-1", channel="payments", who="mei")
        await h.settle()
        closed = card_text(h.cards_in("payments")[0])
        assert "Closed" in closed and "not configured" not in closed
    finally:
        await h.stop()
    assert replace  # keeps the import used for readers extending these settings
