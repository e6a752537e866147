"""Private incidents through the running app, against the Graph, Bot Connector and SMTP
stand-ins: `incident declare … private` opens one private group chat (exactly once) with the
declarer and the service's responders, and its card goes there only. Every way an incident
could leak is tried: the channel, list, search, show, acting on it, digests and reports, the
API and its CSV, stakeholder e-mails and channels, role mentions, similar incidents,
correlation, and the postmortem page. Admins see it; figures count it as "1 private incident"."""
import json
from dataclasses import replace
from datetime import timedelta
from urllib.parse import urlsplit

import aiohttp
import pytest

from app import Integrations
from handlers.reports.compile import compile_report
from incidents.catalog import load_catalog
from mail.reports import monthly_email, weekly_email
from tests.conftest import CATALOG
from tests.fakes.graph import FakeGraph
from tests.fakes.smtp import FakeSmtpServer
from tests.harness import Harness, card_text, make_settings

CATALOG_DATA = load_catalog(CATALOG)
PRIYA, DANIEL, SARAH = ("priya.raman@shopfront.example", "daniel.okafor@shopfront.example",
                        "sarah.kim@shopfront.example")
ADMIN = "ana.costa@shopfront.example"        # an admin, not a responder of checkout-api
TITLE = "payroll export leaks card numbers"
API = "api-token-for-tests"


@pytest.fixture
async def h(database_url, connector):
    graph = FakeGraph()
    await graph.start()
    for person in CATALOG_DATA.people.values():
        graph.add_user(person.name, upn=person.email)
    smtp = FakeSmtpServer()
    await smtp.start()
    integrations = Integrations(
        graph_client_id=graph.client_id, graph_client_secret=graph.client_secret,
        graph_tenant_id=graph.tenant_id, graph_base_url=graph.graph_url,
        azure_authority_host=graph.base_url, smtp_host=smtp.host, smtp_port=smtp.port,
        smtp_starttls=False, smtp_from="firebell@shopfront.example")
    settings = make_settings(database_url, integrations=integrations, api_token=API)
    settings = replace(settings, policy=replace(settings.policy, admins=frozenset({ADMIN})))
    harness = await Harness(settings, connector).start()
    harness.graph, harness.smtp = graph, smtp
    await harness.subscribe("checkout")
    # Tom's channel gets Checkout's stakeholder updates.
    reply = await harness.say("incident subscribe stakeholders checkout", channel="payments",
                              who="sarah")
    assert "stakeholder" in reply["text"], reply
    yield harness
    await harness.stop()
    await graph.stop()
    await smtp.stop()


async def ask(h: Harness, text: str, who: str = "priya") -> dict:
    """A personal chat with Firebell: the bot's answer (there, whatever else it posts meanwhile)."""
    chat = f"a:personal-{who}"
    before = len(h.connector.messages(chat))
    status, _ = await h.send(h.personal_message(text, who=who))
    assert status in (200, 201)
    await h.connector.wait_for(lambda: len(h.connector.messages(chat)) > before)
    return h.connector.messages(chat)[-1]


def texts_in(h: Harness, conversation_id: str) -> str:
    out = []
    for activity in h.connector.messages(conversation_id):
        out.append(activity.get("text") or "")
        out += [card_text(a["content"]) for a in activity.get("attachments") or []]
    return "\n".join(out)


def everything_outside(h: Harness, chat_id: str) -> str:
    """All Teams messages anywhere but the private chat and personal chats, and every e-mail
    to anyone but its members."""
    conversations = {p["conversation_id"] for p in h.connector.posts}
    teams = "\n".join(texts_in(h, c) for c in conversations
                      if c != chat_id and not c.startswith("a:personal-"))
    mail = "\n".join(m.message.as_string() for m in h.smtp.messages
                     if set(m.rcpt_tos) - {PRIYA, DANIEL, SARAH})
    return teams + "\n" + mail


async def declared(h: Harness) -> str:
    reply = await h.say(f"incident declare {TITLE} service=checkout-api level=service-down "
                        "private", channel="checkout")
    assert reply["text"].startswith("🔒 INC-1 declared as a private incident"), reply
    assert TITLE not in json.dumps(reply)
    await h.settle()
    (chat,) = h.graph.chats_with_topic(f"🔒 INC-1 (private): {TITLE}")
    return chat["id"]


async def test_the_card_goes_to_one_new_private_chat_with_the_declarer_and_responders(h):
    chat_id = await declared(h)
    incident = await h.incident(1)
    assert incident.private and incident.no_auto_link
    members = {h.graph.users[u]["userPrincipalName"] for u in h.graph.member_ids(chat_id)}
    assert members == {PRIYA, DANIEL, SARAH}
    card = texts_in(h, chat_id)
    assert TITLE in card and "🔒 Private" in card
    assert not [c for c in h.cards_in("checkout") if "INC-1" in card_text(c)]
    assert TITLE not in everything_outside(h, chat_id)
    # Exactly once: a redelivered job, a level change and time passing make no second chat.
    await ask(h, "incident level INC-1 high-error-rate")
    await ask(h, "incident level INC-1 service-down")
    await h.settle()
    assert len(h.graph.chats) == 1
    assert sum(TITLE in card_text(a["content"]) for a in
               [x for m in h.connector.messages(chat_id) for x in m.get("attachments") or []]) \
        == 1
    kinds = [e["kind"] for e in await h.timeline(1)]
    assert kinds.count("private_chat") == 1 and "private" in kinds


async def test_without_graph_a_private_declaration_is_refused_and_changes_nothing(harness):
    await harness.subscribe("checkout")
    reply = await harness.say(f"incident declare {TITLE} private", channel="checkout")
    assert "A private incident needs Microsoft Graph" in json.dumps(reply)  # the form, again
    await harness.settle()
    assert not await harness.incidents()


async def test_list_show_and_search_name_it_to_members_and_admins_in_personal_chats_only(h):
    await declared(h)
    await h.say("incident declare checkout is slow service=checkout-api", channel="checkout")
    await h.settle()
    # In the channel, even a member's list leaves it out: the channel reads along.
    listing = await h.say("incident list all", channel="checkout")
    assert "INC-2" in json.dumps(listing) and TITLE not in json.dumps(listing)
    for who, sees in (("priya", True), ("sarah", True), ("ana", True), ("tom", False),
                      ("guest", False)):
        listing = json.dumps(await ask(h, "incident list all", who=who), ensure_ascii=False)
        assert (TITLE in listing) is sees, who
        found = json.dumps(await ask(h, "incident search payroll", who=who), ensure_ascii=False)
        assert (TITLE in found) is sees, who
        shown = await ask(h, "incident show INC-1", who=who)
        assert (TITLE in json.dumps(shown, ensure_ascii=False)) is sees, who
        if not sees:
            assert "INC-1 is a private incident: only its members" in shown["text"]
    found = await h.say("incident search payroll", channel="checkout")
    assert TITLE not in json.dumps(found, ensure_ascii=False)
    shown = await h.say("incident show INC-1", channel="checkout")
    assert "Use it in its private chat or in a personal chat" in shown["text"]


async def test_a_non_member_cannot_act_on_it_and_nothing_changes(h):
    await declared(h)
    before = await h.incident(1)
    for text in ("incident ack INC-1", "incident note INC-1 what is this?",
                 "incident resolve INC-1", "incident update INC-1 investigating looking"):
        reply = await ask(h, text, who="tom")
        assert "INC-1 is a private incident" in reply["text"], text
    reply = await h.say("incident ack INC-1", channel="checkout", who="priya")
    assert "INC-1 is a private incident" in reply["text"]
    after = await h.incident(1)
    assert after.version == before.version and not after.acknowledged_by


async def test_members_act_in_its_private_chat_and_updates_roles_stay_there(h):
    chat_id = await declared(h)
    reply = await ask(h, "incident update INC-1 identified export job writes full PANs")
    assert "update" in reply["text"].lower(), reply
    reply = await ask(h, "incident role INC-1 scribe @Daniel Okafor")
    assert "Daniel Okafor now has the scribe role on INC-1" in reply["text"]
    await h.settle()
    in_chat = texts_in(h, chat_id)
    assert "export job writes full PANs" in in_chat and "<at>Daniel Okafor</at>" in in_chat
    outside = everything_outside(h, chat_id)
    # Outside, only the declaration's own answer in the channel names INC-1 (not its title).
    assert "PANs" not in outside and TITLE not in outside and "scribe" not in outside
    assert outside.count("INC-1") == 1
    assert not h.smtp.messages  # no stakeholder e-mail, no trigger e-mail


async def test_digests_and_reports_count_it_anonymised(h):
    await declared(h)
    await h.say("incident declare checkout is slow service=checkout-api level=service-down",
                channel="checkout")
    await h.settle()
    for ref_ in ("INC-1", "INC-2"):
        await ask(h, f"incident resolve {ref_}")
    await h.settle()
    later = h.ctx.now() + timedelta(days=7)
    weekly = await compile_report(h.ctx, "weekly", now=later)
    company = weekly.view("company")
    assert company.figures.new == 2 and company.figures.resolved == 2
    assert company.figures.mttr.median is not None and company.private == 1
    assert weekly.view("checkout").private == 1
    for scope in ("company", "checkout"):
        text = card_text(weekly.card(scope))
        assert "🔒 1 private incident (counted above, not named)" in text
        assert TITLE not in text and "INC-1" not in text
    assert [u.incident_id for u in company.updates] == [2]
    subject, text, html = weekly_email(company)
    assert "Private incidents (counted above, not named) | 1" in text
    assert TITLE not in text + html
    monthly = await compile_report(h.ctx, "monthly", now=h.ctx.now() + timedelta(days=40))
    text = card_text(monthly.card("company"))
    assert monthly.view("company").private == 1 and TITLE not in text
    _, text, html = monthly_email(monthly.view("company"))
    assert "Private incidents (counted above, not named) | 1" in text and TITLE not in html


async def test_the_api_and_csv_leave_it_out_and_count_it(h):
    await declared(h)
    await h.say("incident declare checkout is slow service=checkout-api", channel="checkout")
    await h.settle()
    auth = {"Authorization": f"Bearer {API}"}
    async with h.http.get(f"{h.url}/api/incidents", headers=auth) as resp:
        body = await resp.json()
    assert [i["ref"] for i in body["items"]] == ["INC-2"]
    assert body["total"] == 1 and body["private_incidents"] == 1
    async with h.http.get(f"{h.url}/api/incidents.csv", headers=auth) as resp:
        csv_text = await resp.text()
        assert resp.headers["X-Private-Count"] == "1" and resp.headers["X-Total-Count"] == "1"
    assert TITLE not in csv_text and "INC-1," not in csv_text
    async with h.http.get(f"{h.url}/api/incidents/INC-1/postmortem", headers=auth) as resp:
        assert resp.status == 404


async def test_its_postmortem_page_opens_for_members_only(h):
    chat_id = await declared(h)
    reply = await ask(h, "incident postmortem INC-1 link")
    url = reply["text"].split("](", 1)[1].split(")", 1)[0]
    assert "member=priya.raman" in url
    path = urlsplit(url)
    page = f"{h.url}{path.path}"
    async with h.http.get(f"{page}?{path.query}") as resp:
        assert resp.status == 200 and TITLE in await resp.text()
    async with h.http.get(page) as resp:  # the bare link: nobody's
        assert resp.status == 403 and "private incident" in await resp.text()
    forged = path.query.replace("priya.raman", "tom.brennan")
    async with h.http.get(f"{page}?{forged}") as resp:
        assert resp.status == 403
    # A non-member cannot get a link; the admin gets their own.
    assert "INC-1 is a private incident" in (await ask(h, "incident postmortem INC-1 link",
                                                       who="tom"))["text"]
    admin = await ask(h, "incident postmortem INC-1 link", who="ana")
    admin_url = urlsplit(admin["text"].split("](", 1)[1].split(")", 1)[0])
    async with h.http.get(f"{h.url}{admin_url.path}?{admin_url.query}") as resp:
        assert resp.status == 200
    # The card in the private chat carries no bare link, and rotating voids members' links.
    cards = [a["content"] for m in h.connector.messages(chat_id)
             for a in m.get("attachments") or []]
    assert cards and "/postmortems/" not in json.dumps(cards)
    assert "incident postmortem INC-1 link" in card_text(cards[0])
    await ask(h, "incident postmortem INC-1 new-link")
    async with h.http.get(f"{page}?{path.query}") as resp:
        assert resp.status in (403, 404)


async def test_public_incidents_never_link_to_it_nor_show_it_as_similar(h):
    await declared(h)
    await ask(h, "incident resolve INC-1")
    await h.say(f"incident declare {TITLE} service=checkout-api", channel="checkout")
    await h.settle()
    public = await h.incident(2)
    assert public.parent_id is None and public.recurrence_of is None
    (card,) = [c for c in h.cards_in("checkout") if "INC-2" in card_text(c)]
    assert "INC-1" not in card_text(card)
    reply = await h.say("incident link INC-2 INC-1", channel="checkout")
    assert "INC-1 is a private incident" in reply["text"]
    assert (await h.incident(2)).parent_id is None


async def test_reminders_and_nudges_go_to_its_private_chat_never_the_channel(h):
    from handlers.reports.reminders import nudge_stale, remind_postmortems
    from handlers.reports.running import remind_running
    from handlers.reports.settings import ReportSettings
    from tests.reports.test_report_delivery import moving_clock
    from tests.reports.test_report_figures import at

    t0 = at("2025-03-31T08:00")   # a Monday
    h.ctx.clock = moving_clock(t0)
    chat_id = await declared(h)
    h.ctx.clock = moving_clock(t0 + timedelta(minutes=11))
    assert (await remind_running(h.ctx))["commander"] == 1      # no commander after 10 min
    h.ctx.clock = moving_clock(t0 + timedelta(minutes=45))
    assert (await remind_running(h.ctx))["updates"] == 1        # no stakeholder update in 30m
    h.ctx.clock = moving_clock(t0 + timedelta(hours=5))
    assert await nudge_stale(h.ctx, ReportSettings(), h.ctx.now()) == 1
    await h.settle()
    await ask(h, "incident resolve INC-1")
    later = t0 + timedelta(days=14, hours=3)
    h.ctx.clock = moving_clock(later)
    assert await remind_postmortems(h.ctx, ReportSettings(), later) == 1
    await h.settle()
    in_chat = texts_in(h, chat_id)
    assert "has no incident commander" in in_chat and "Postmortem" in in_chat
    assert in_chat.count("INC-1") >= 5
    outside = everything_outside(h, chat_id)
    assert TITLE not in outside and outside.count("INC-1") == 1  # the declaration's answer
    # The postmortem's owner (a member) is reminded by e-mail too, as for any incident.
    assert [m.rcpt_tos for m in h.smtp.messages] == [[PRIYA]]


async def test_a_private_upstream_incident_is_nobodys_root(h):
    reply = await h.say("incident declare order-db replica lag leaks data service=order-db "
                        "level=service-down private", channel="checkout")
    assert reply["text"].startswith("🔒 INC-1 declared as a private incident")
    await h.settle()
    # checkout-api calls order-db: a public incident there would be its cascade child.
    await h.say("incident declare checkout errors service=checkout-api", channel="checkout")
    await h.settle()
    await ask(h, "incident level INC-1 high-error-rate", who="sarah")  # correlation runs again
    await h.settle()
    assert (await h.incident(2)).parent_id is None
    assert not [e for e in await h.timeline(2) if "INC-1" in e["text"]]
