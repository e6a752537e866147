"""Roles and stakeholder updates through the running app, typed and from the card, against the
Bot Connector stand-in and a real SMTP server: who may, what the card, the timeline, the channel,
the stakeholders' inboxes and the stakeholder channels get, and what a mistake is told."""
import json

import pytest

from app import Integrations
from tests.fakes.smtp import FakeSmtpServer
from tests.harness import Harness, card_text, make_settings

DANIEL = "daniel.okafor@shopfront.example"
TOM = "tom.brennan@shopfront.example"


@pytest.fixture
async def running(database_url, connector):
    async with FakeSmtpServer() as smtp:
        integrations = Integrations(smtp_host=smtp.host, smtp_port=smtp.port,
                                    smtp_starttls=False, smtp_from="firebell@shopfront.example")
        h = await Harness(make_settings(database_url, integrations=integrations),
                          connector).start()
        h.smtp = smtp
        await h.subscribe("checkout")
        await h.say("incident declare checkout is down service=checkout-api", channel="checkout")
        await h.settle()
        yield h
        await h.stop()


def live_card(h) -> dict:
    """The incident card of INC-1 in the checkout channel (not the messages about it)."""
    (card,) = [c for c in h.cards_in("checkout") if "Triggered" in card_text(c)
               and "INC-1" in card_text(c)]
    return card


def update_mails(h) -> list:
    """E-mails about stakeholder updates (not the service-down trigger e-mail)."""
    return [m for m in h.smtp.messages if " update " in m.message["Subject"]]


def messages(h, heading: str) -> list[dict]:
    return [c for c in h.cards_in("checkout") if heading in card_text(c)
            and "Triggered" not in card_text(c)]


async def version(h) -> int:
    return (await h.incident(1)).version


# -- roles ------------------------------------------------------------------------------------

async def test_a_responder_names_a_scribe_shown_on_card_timeline_and_mentioned(running):
    h = running
    reply = await h.say("incident role INC-1 scribe @Daniel Okafor", channel="checkout")
    assert reply["text"] == "✅ Daniel Okafor now has the scribe role on INC-1."
    await h.settle()
    assert "Scribe: Daniel Okafor" in card_text(live_card(h))
    entry = (await h.timeline(1))[-1]
    assert (entry["kind"], entry["text"], entry["actor"]) == ("role", "scribe: Daniel Okafor",
                                                             "Priya Raman")
    (mention,) = messages(h, "has the **scribe** role")
    assert "<at>Daniel Okafor</at>" in card_text(mention)
    assert mention["msteams"]["entities"][0]["mentioned"] == {"id": DANIEL,
                                                             "name": "Daniel Okafor"}
    # The same again changes nothing and mentions nobody again.
    again = await h.say("incident role INC-1 scribe daniel.okafor@shopfront.example",
                        channel="checkout")
    assert again["text"] == "Nothing to change: Daniel Okafor has the scribe role on INC-1."
    await h.settle()
    assert len(messages(h, "has the **scribe** role")) == 1


async def test_catalog_roles_and_commander_as_a_role(running):
    h = running
    reply = await h.say("incident role INC-1 customer liaison @Tom Brennan", channel="checkout")
    assert "Tom Brennan now has the customer liaison role on INC-1" in reply["text"]
    reply = await h.say("incident role INC-1 commander @Daniel Okafor", channel="checkout")
    assert "Daniel Okafor is now the incident commander of INC-1" in reply["text"]
    await h.settle()
    incident = await h.incident(1)
    assert incident.commander == DANIEL
    text = card_text(live_card(h))
    assert "Customer liaison: Tom Brennan" in text and "Incident commander: Daniel Okafor" in text
    assert any(e["kind"] == "assigned" for e in await h.timeline(1))
    assert messages(h, "is now the **incident commander**")


async def test_assign_role_from_the_card(running):
    h = running
    card = live_card(h)
    assert "Assign role" in json.dumps(card)
    status, body = await h.send(h.card_click("assign_role", {
        "incident": "INC-1", "version": await version(h), "role_name": "communications",
        "role_person": TOM}, who="priya"))
    assert status == 200 and "Communications: Tom Brennan" in card_text(body["value"])
    await h.settle()
    assert "Communications: Tom Brennan" in card_text(live_card(h))


@pytest.mark.parametrize("typed", [True, False])
async def test_only_responders_assign_roles_and_refusals_say_who_may(running, typed):
    h = running
    if typed:
        answer = (await h.say("incident role INC-1 scribe @Tom Brennan", channel="checkout",
                              who="guest"))["text"]
    else:
        _, body = await h.send(h.card_click("assign_role", {
            "incident": "INC-1", "version": await version(h), "role_name": "scribe",
            "role_person": TOM}, who="guest"))
        answer = body["value"]
    assert "only the Checkout team" in answer and "may assign roles on INC-1" in answer
    await h.settle()
    assert "Scribe:" not in card_text(live_card(h))
    assert not [e for e in await h.timeline(1) if e["kind"] == "role"]


@pytest.mark.parametrize("text, expected", [
    ("incident role INC-1 janitor @Tom Brennan", "`janitor` is not a role. Roles: commander, "
                                                 "communications, scribe, customer-liaison."),
    ("incident role INC-1 scribe @Nobody Here", "I can't find `Nobody Here` in the catalog"),
    ("incident role INC-1 scribe", "Usage: `incident role INC-7 scribe @Daniel Okafor`"),
    ("incident role seven scribe @Tom", "`seven` is not an incident id"),
    ("incident role INC-99 scribe @Tom Brennan", "INC-99 does not exist"),
])
async def test_role_mistakes_get_a_clear_answer_and_change_nothing(running, text, expected):
    h = running
    before = len(await h.timeline(1))
    reply = await h.say(text, channel="checkout")
    assert expected in reply["text"], reply["text"]
    assert len(await h.timeline(1)) == before


# -- stakeholder updates ------------------------------------------------------------------------

async def test_an_update_reaches_card_timeline_stakeholders_and_their_channel(running):
    h = running
    sub = await h.say("incident subscribe stakeholders checkout", channel="general",
                      who="sarah")
    assert sub["text"] == ("✅ This channel now gets the stakeholder updates of Checkout "
                           "incidents.")
    reply = await h.say("incident update INC-1 identified Bad config push; rolling back now",
                        channel="checkout")
    assert reply["text"] == "📣 Update 1 on INC-1 sent to its stakeholders."
    await h.settle()
    text = card_text(live_card(h))
    assert "Stakeholder update 1" in text and "identified" in text
    assert "Bad config push; rolling back now — Priya Raman" in text
    entry = (await h.timeline(1))[-1]
    assert (entry["kind"], entry["text"]) == (
        "update", "stakeholder update 1 (identified): Bad config push; rolling back now")
    # E-mail to checkout-api's stakeholders (catalog).
    await h.smtp.wait_for_messages(2)
    (mail,) = update_mails(h)
    assert set(mail.rcpt_tos) == {TOM, "sarah.kim@shopfront.example"}
    assert mail.message["Subject"] == "[Firebell] INC-1 update 1 (identified): checkout is down"
    assert "Bad config push" in mail.message.get_body(("plain",)).get_content()
    # The stakeholder channel gets the update as a message of its own.
    (posted,) = [c for c in h.cards_in("general") if "update 1" in card_text(c)]
    assert "INC-1 · update 1" in card_text(posted) and "Bad config push" in card_text(posted)
    # A second one counts up; the stakeholder channel gets it too, exactly once.
    await h.say("incident update INC-1 monitoring Rolled back, error rate falling",
                channel="checkout")
    await h.settle()
    assert "Stakeholder update 2" in card_text(live_card(h))
    assert len([c for c in h.cards_in("general") if "INC-1 · update" in card_text(c)]) == 2
    await h.smtp.wait_for_messages(3)
    assert len(update_mails(h)) == 2


async def test_two_updates_from_the_same_card_version_both_count(running):
    h = running
    v = await version(h)
    for text in ("Looking at the payment gateway", "It is the gateway timeout"):
        status, body = await h.send(h.card_click("post_update", {
            "incident": "INC-1", "version": v, "update_phase": "investigating",
            "update_text": text}))
        assert status == 200 and body["type"] == "application/vnd.microsoft.card.adaptive"
    # Teams retrying the second click changes nothing.
    await h.send(h.card_click("post_update", {"incident": "INC-1", "version": v,
                                              "update_phase": "investigating",
                                              "update_text": "It is the gateway timeout"}))
    await h.settle()
    text = card_text(live_card(h))
    assert "Stakeholder update 2" in text and "It is the gateway timeout" in text
    assert len([e for e in await h.timeline(1) if e["kind"] == "update"]) == 2


@pytest.mark.parametrize("text, expected", [
    ("incident update INC-1 fixed it works", "`fixed` is not a phase. Usage: `incident update"),
    ("incident update INC-1 identified", "Usage: `incident update INC-7 identified"),
    ("incident update INC-1", "Usage: `incident update INC-7 identified"),
    ("incident update INC-1 resolved " + "x" * 1600, "keep it under 1500"),
])
async def test_update_mistakes_get_a_clear_answer_and_change_nothing(running, text, expected):
    h = running
    reply = await h.say(text, channel="checkout")
    assert expected in reply["text"], reply["text"]
    await h.settle()
    assert not [e for e in await h.timeline(1) if e["kind"] == "update"]
    assert update_mails(h) == []


async def test_an_empty_update_from_the_card_is_refused_with_what_to_do(running):
    h = running
    _, body = await h.send(h.card_click("post_update", {
        "incident": "INC-1", "version": await version(h), "update_phase": "identified",
        "update_text": "   "}))
    assert "An update needs its text" in body["value"]
    assert not [e for e in await h.timeline(1) if e["kind"] == "update"]


async def test_only_responders_post_updates(running):
    h = running
    reply = await h.say("incident update INC-1 resolved all good", channel="checkout",
                        who="guest")
    assert "only the Checkout team" in reply["text"]
    assert "may post stakeholder updates for INC-1" in reply["text"]
    await h.settle()
    assert update_mails(h) == []


async def test_resolved_phase_does_not_resolve_but_says_how(running):
    h = running
    reply = await h.say("incident update INC-1 resolved Fixed by the rollback",
                        channel="checkout")
    assert "`incident resolve INC-1` resolves it" in reply["text"]
    assert (await h.incident(1)).status == "open"


async def test_stakeholder_channels_who_may_and_unsubscribing(running):
    h = running
    refused = await h.say("incident subscribe stakeholders all", channel="general", who="priya")
    assert "only the incident commanders (Sarah Kim) and admins may send every team's" \
        in refused["text"]
    refused = await h.say("incident subscribe stakeholders payments", channel="general",
                          who="guest")
    assert "only members of Payments" in refused["text"]
    mine = await h.say("incident subscribe stakeholders checkout", channel="general",
                       who="priya")
    assert "now gets the stakeholder updates of Checkout" in mine["text"]
    bad = await h.say("incident subscribe stakeholders nosuchteam", channel="general",
                      who="sarah")
    assert "`nosuchteam` is not a team" in bad["text"] and "or `all`" in bad["text"]
    usage = await h.say("incident subscribe stakeholders", channel="general", who="sarah")
    assert "Usage: `incident subscribe stakeholders <team>`" in usage["text"]
    dm = await h.send(h.personal_message("incident subscribe stakeholders all", who="sarah"))
    assert dm[0] in (200, 201)
    gone = await h.say("incident unsubscribe stakeholders checkout", channel="general",
                       who="priya")
    assert "no longer gets the stakeholder updates of Checkout" in gone["text"]
    await h.say("incident update INC-1 identified Config push", channel="checkout")
    await h.settle()
    assert not [c for c in h.cards_in("general") if "INC-1 · update" in card_text(c)]
    # The team's routing is untouched by all this.
    assert live_card(h)


def mentioning(h, text: str, display: str, teams_id: str) -> dict:
    """A channel message that @mentions a person as Teams sends it: the text carries the
    display name Teams shows, the entity carries the person's Teams id."""
    activity = h.channel_message(f"{text} <at>{display}</at>", channel="checkout")
    activity["entities"].append({"type": "mention", "text": f"<at>{display}</at>",
                                 "mentioned": {"id": teams_id, "name": display}})
    return activity


async def test_a_mention_names_its_person_by_teams_id_whatever_the_display_name(running):
    """Teams shows directory display names ("Brennan, Tom (Contractor)"); the mention's id,
    looked up in this tenant's roster, says who is meant."""
    h = running
    await h.send(mentioning(h, "incident role INC-1 scribe", "Brennan, Tom (Contractor)",
                            "29:tom"))
    await h.send(mentioning(h, "incident assign INC-1", "Brennan, Tom (Contractor)", "29:tom"))
    await h.settle()
    kinds = [(e["kind"], e["text"]) for e in await h.timeline(1)]
    assert ("role", "scribe: Tom Brennan") in kinds
    assert ("assigned", "incident commander: Tom Brennan") in kinds
    # An id this tenant's roster does not know falls back to the text, and is refused plainly.
    status, _ = await h.send(mentioning(h, "incident role INC-1 scribe", "Stranger", "29:nobody"))
    await h.settle()
    assert status in (200, 201)
    assert "I can't find `Stranger`" in h.connector.requests_of("reply")[-1].body["text"]
