"""`incident page <team|service|@person> [INC-n] [message]` through the running app against the
PagerDuty stand-in: the PagerDuty incident it creates (escalation policy, assignee, From header,
incident_key), exactly once (a lost answer, a redelivered activity), the card following the
page's acknowledgement as PagerDuty's webhooks come back (which never open an incident of their
own), the refusals, and a failing page shown on the card and retried."""
import json
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from app import Integrations
from handlers.ingest.signature import sign
from incidents.catalog import load_catalog
from storage.schema import outbox, pagerduty_pages
from tests.conftest import CATALOG
from tests.fakes.pagerduty import FakePagerDuty
from tests.harness import SECRET, Harness, card_text, make_settings

CATALOG_DATA = load_catalog(CATALOG)
FROM = "firebell@shopfront.example"
T0 = datetime(2025, 3, 14, 9, 0, tzinfo=timezone.utc)


@pytest.fixture
async def paging(database_url, connector):
    async with FakePagerDuty() as pd:
        pd.add_user("Firebell Bot", FROM)
        for person in CATALOG_DATA.people.values():
            pd.add_user(person.name, person.email, id=person.pagerduty_user_id)
        for svc in CATALOG_DATA.services.values():
            if svc.pagerduty_service_id:
                pd.add_service(svc.name, id=svc.pagerduty_service_id)
        for team in CATALOG_DATA.teams.values():
            if team.escalation_policy_id:
                pd.add_escalation_policy(f"{team.name} - Primary", id=team.escalation_policy_id)
        integrations = Integrations(pagerduty_api_token=pd.token, pagerduty_api_url=pd.base_url,
                                    pagerduty_from_email=FROM)
        h = await Harness(make_settings(database_url, integrations=integrations),
                          connector).start()
        await h.subscribe("checkout")
        await h.say("incident declare checkout is down", who="priya")
        await h.settle()
        h.pd = pd
        yield h
        await h.stop()


async def _count(h, table, *where) -> int:
    async with h.ctx.db.read() as conn:
        return (await conn.execute(select(func.count()).select_from(table).where(*where))
                ).scalar_one()


def _pd_event(pd, incident_id, event_type, *, seq, agent=None):
    """A signed PagerDuty V3 webhook about an incident the stand-in holds."""
    incident = pd.incidents[incident_id]
    who = {"type": "user_reference", "id": agent[0], "summary": agent[1]} if agent else \
        {"type": "service_reference", "id": incident.service_id, "summary": "service"}
    body = json.dumps({"event": {
        "id": f"01PAGE{seq:04d}", "event_type": event_type, "resource_type": "incident",
        "occurred_at": (T0 + timedelta(minutes=seq)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "agent": who, "data": {
            "id": incident.id, "type": "incident", "number": incident.number,
            "status": event_type.split(".")[1], "incident_key": incident.incident_key,
            "title": incident.title, "html_url": f"https://shopfront.pagerduty.com/incidents/"
                                                 f"{incident.id}",
            "service": {"id": incident.service_id, "summary": pd.services[incident.service_id],
                        "type": "service_reference"},
            "assignees": [{"id": u, "summary": pd.users[u].name, "type": "user_reference"}
                          for u in incident.assignee_ids]}}}).encode()
    return body, {"X-PagerDuty-Signature": sign(SECRET, body), "Content-Type": "application/json"}


async def _webhook(h, incident_id, event_type, *, seq, agent=None):
    body, headers = _pd_event(h.pd, incident_id, event_type, seq=seq, agent=agent)
    resp = await h.pagerduty("page-event", body=body, headers=headers)
    assert resp.status == 200, resp.status
    await h.settle()


async def test_paging_a_team_creates_one_pagerduty_incident_and_the_card_follows_its_ack(paging):
    h = paging
    reply = await h.say("incident page data-platform INC-1 order-db replication is lagging",
                        who="priya")
    assert reply["text"] == ("📟 Paging Data Platform in PagerDuty for INC-1. Its card shows "
                             "when they acknowledge.")
    await h.settle()
    (post,) = h.pd.requests_of("create_incident")
    sent = post.body["incident"]
    assert post.headers["From"] == FROM
    assert sent["title"] == "INC-1: order-db replication is lagging"
    assert sent["escalation_policy"] == {"id": "PEPDT03", "type": "escalation_policy_reference"}
    assert sent["service"] == {"id": "PCHK4PI", "type": "service_reference"}  # the incident's
    assert sent["incident_key"].startswith("firebell-page-") and sent["urgency"] == "high"
    assert "Paged from Microsoft Teams by Priya Raman" in sent["body"]["details"]
    (pd_id,) = h.pd.incidents
    number = h.pd.incidents[pd_id].number
    text = card_text(h.cards_in("checkout")[0])
    assert f"📟 Paged Data Platform · PagerDuty #{number} · not acknowledged yet" in text

    # PagerDuty's webhooks about the page move the page; they never open an incident.
    await _webhook(h, pd_id, "incident.triggered", seq=1)
    await _webhook(h, pd_id, "incident.acknowledged", seq=2, agent=("PJ9HT4E", "Ana Costa"))
    assert len(await h.incidents()) == 1
    text = card_text(h.cards_in("checkout")[0])
    assert f"📟 Paged Data Platform · PagerDuty #{number} · acknowledged by Ana Costa" in text
    timeline = [e["text"] for e in await h.timeline(1)]
    assert "paged Data Platform in PagerDuty: order-db replication is lagging" in timeline
    assert f"page to Data Platform (PagerDuty #{number}) acknowledged by Ana Costa" in timeline
    note = json.dumps({"event": {
        "id": "01PAGENOTE", "event_type": "incident.annotated", "resource_type": "incident",
        "occurred_at": "2025-03-14T09:03:00Z", "agent": {"type": "user_reference",
                                                          "id": "PJ9HT4E", "summary": "Ana Costa"},
        "data": {"incident": {"id": pd_id, "type": "incident_reference"},
                 "content": "replica rebuilt, lag falling"}}}).encode()
    resp = await h.pagerduty("note", body=note, headers={
        "X-PagerDuty-Signature": sign(SECRET, note), "Content-Type": "application/json"})
    assert resp.status == 200
    assert "PagerDuty note on the page to Data Platform: replica rebuilt, lag falling" in \
        [e["text"] for e in await h.timeline(1)]
    await _webhook(h, pd_id, "incident.resolved", seq=3, agent=("PJ9HT4E", "Ana Costa"))
    assert f"PagerDuty #{number} · resolved in PagerDuty" in card_text(h.cards_in("checkout")[0])
    assert (await h.incident(1)).status == "open"   # the page resolved, not the incident


async def test_a_lost_answer_or_a_redelivered_command_never_pages_twice(paging):
    h = paging
    h.pd.lose_answer_next(kind="create_incident")    # PagerDuty made it; Firebell never heard
    activity = h.channel_message("incident page payments INC-1", who="priya")
    assert (await h.send(activity))[0] in (200, 201)
    assert (await h.send(activity))[0] in (200, 201)  # Teams redelivers the same activity
    await h.settle(timeout=20)
    assert len(h.pd.incidents) == 1
    assert len(h.pd.requests_of("list_incidents")) == 1  # the retry found it by its key
    assert await _count(h, pagerduty_pages) == 1
    async with h.ctx.db.read() as conn:
        (page,) = (await conn.execute(select(pagerduty_pages))).mappings()
    assert page["pd_incident_id"] == next(iter(h.pd.incidents))
    assert "Payments" in card_text(h.cards_in("checkout")[0])


async def test_a_person_is_assigned_and_a_service_pages_its_own_policy(paging):
    h = paging
    await h.say("incident page @Ana Costa INC-1 can you look at order-db?", who="priya")
    await h.say("incident page order-db #1", who="priya")
    await h.settle()
    sent = [r.body["incident"] for r in h.pd.requests_of("create_incident")]
    (person,) = [i for i in sent if "assignments" in i]   # the worker runs them in any order
    (service,) = [i for i in sent if "assignments" not in i]
    assert person["assignments"] == [{"assignee": {"id": "PJ9HT4E", "type": "user_reference"}}]
    assert "escalation_policy" not in person and person["title"] == \
        "INC-1: can you look at order-db?"
    assert service["service"]["id"] == "PORD3DB" and "escalation_policy" not in service
    assert service["title"] == "INC-1: checkout is down"
    text = card_text(h.cards_in("checkout")[0])
    assert "Ana Costa" in text and "order-db" in text


async def test_refusals_say_why_and_change_nothing(paging):
    h = paging
    await h.say("incident declare checkout canary flaky level=minor", who="priya")
    await h.say("incident resolve INC-2", who="priya")
    assert "closed by" in (await h.say("incident close INC-2", who="priya"))["text"]
    cases = [
        ("incident page payments INC-2", "priya", "INC-2 is closed: nobody needs paging"),
        ("incident page payments INC-1", "guest",
         "only the Checkout team, INC-1's on-call and commander, the incident commanders (Sarah "
         "Kim) and admins may page someone for INC-1: a page wakes someone up."),
        ("incident page nobody-team INC-1", "priya", "`nobody-team` is neither a team nor a "
                                                     "service"),
        ("incident page sre INC-1", "priya", "SRE has no `escalation_policy_id` and no service"),
        ("incident page @Nobody Known INC-1", "priya", "can't find `Nobody Known`"),
        ("incident page payments INC-99", "priya", "INC-99 does not exist"),
        ("incident page", "priya", "Usage: `incident page <team|service|@person> [INC-n]"),
        ("incident page payments " + "x" * 600, "priya", "keep it under 500"),
        ("incident page payments the gateway is slow", "guest", "only those who respond for "
                                                                 "Payments"),
    ]
    for text, who, expected in cases:
        reply = await h.say(text, who=who)
        assert expected in reply["text"], (text, reply["text"])
    await h.settle()
    assert await _count(h, pagerduty_pages) == 0
    assert await _count(h, outbox, outbox.c.kind == "pagerduty_page") == 0
    assert h.pd.requests_of("create_incident") == []


async def test_without_pagerduty_the_command_says_what_to_set(harness):
    reply = await harness.say("incident page payments INC-1", who="priya")
    assert "set PAGERDUTY_API_TOKEN and PAGERDUTY_FROM_EMAIL" in reply["text"]


async def test_a_page_without_an_incident_comes_back_as_an_incident_of_its_own(paging):
    h = paging
    reply = await h.say("incident page payments the gateway times out for 3% of calls",
                        who="mei")
    assert reply["text"].startswith("📟 Paging Payments in PagerDuty. No incident was named")
    await h.settle()
    (post,) = h.pd.requests_of("create_incident")
    assert post.body["incident"]["title"] == "the gateway times out for 3% of calls"
    assert post.body["incident"]["service"]["id"] == "PPAY7GW"   # the team's own service
    (pd_id,) = h.pd.incidents
    await _webhook(h, pd_id, "incident.triggered", seq=1)
    new = [i for i in await h.incidents() if i.source == "pagerduty"]
    assert [(i.external_id, i.title) for i in new] == [
        (pd_id, "the gateway times out for 3% of calls")]


async def test_a_failing_page_shows_on_the_card_and_is_retried(paging):
    h = paging
    h.pd.add_read_only_token(h.pd.token)   # the API token cannot write: parked at once
    await h.say("incident page payments INC-1", who="priya")
    await h.settle()
    text = card_text(h.cards_in("checkout")[0])
    assert "PagerDuty page: failed (PagerDuty API token is read-only" in text
    assert "requested by Priya Raman, not in PagerDuty yet" in text
    h.pd.read_only_tokens.clear()
    reply = await h.say("incident retry INC-1", who="priya")
    assert "Retrying 1 failed follow-up" in reply["text"]
    await h.settle()
    assert len(h.pd.incidents) == 1
    text = card_text(h.cards_in("checkout")[0])
    assert "PagerDuty page: failed" not in text and "not acknowledged yet" in text
