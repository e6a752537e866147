"""Issue #14 parts 4 and 5 on the live card, through the real endpoints: who declared it (a
person or PagerDuty), who acknowledged and resolved it and when (kept once resolved), how long it
lasted, the postmortem's owner and due date, the standby next to the primary on-call; every time
in the reader's zone (DATE/TIME), none in UTC; no admin noise; no yellow text."""
import json
import re

from tests.harness import card_text

STAMP = re.compile(r"\{\{(DATE|TIME)\(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ(, SHORT)?\)\}\}")


def _times_are_the_readers(card):
    raw = json.dumps(card, ensure_ascii=False)
    assert "UTC" not in raw
    # Every time shown is a DATE/TIME function: no bare "14:05" left.
    assert not re.search(r"\b\d{1,2}:\d\d\b", STAMP.sub("", raw).replace("https://", ""))


async def test_a_declared_incident_shows_who_did_what_and_when(harness):
    h = harness
    await h.subscribe("checkout")
    await h.say("incident declare checkout-api is down", who="priya")
    await h.settle()
    (card,) = h.cards_in("checkout")
    text = card_text(card)
    assert "Declared by: Priya Raman" in text
    assert "On call: <at>Priya Raman</at>" in text and "Standby: Daniel Okafor" in text
    await h.say("incident ack INC-1", who="priya")
    await h.say("incident resolve INC-1", who="priya")
    await h.settle()
    await h.connector.wait_for(lambda: "Resolved by: Priya Raman" in
                               card_text(h.cards_in("checkout")[0]))
    card = h.cards_in("checkout")[0]
    text = card_text(card)
    assert "Acknowledged by: Priya Raman" in text  # kept after resolve
    facts = {f["title"]: f["value"] for b in card["body"] if b["type"] == "FactSet"
             for f in b["facts"]}
    for label in ("Triggered", "Acknowledged", "Resolved"):
        assert STAMP.sub("", facts[label]).strip() == "", facts[label]
    assert set(facts) >= {"Triggered", "Acknowledged", "Resolved", "Duration",
                          "Postmortem due"}
    assert re.fullmatch(r"\d+ s|\d+ min", facts["Duration"])
    assert "Postmortem owner: Priya Raman" in text
    assert "Warning" not in json.dumps(card)
    assert "To close:" in text
    _times_are_the_readers(card)


async def test_pagerduty_opened_incidents_name_pagerduty_or_the_person(harness):
    h = harness
    await h.subscribe("payments")
    await h.pagerduty("01-payment-gateway-triggered.json")
    await h.pagerduty("02-checkout-api-triggered.json")
    await h.pagerduty("04-checkout-api-duplicate-triggered.json")
    await h.settle()
    text = card_text(h.cards_in("payments")[0])
    assert "Declared by: PagerDuty" in text and "Standby: Sven Lindqvist" in text
    reply = await h.say("incident show INC-3", channel="payments")
    shown = reply["attachments"][0]["content"]
    assert "Declared by: Tom Brennan (in PagerDuty)" in card_text(shown)
    _times_are_the_readers(shown)  # the timeline too
    assert (await h.pagerduty("07-payment-gateway-resolved.json")).status == 200
    await h.settle()
    await h.connector.wait_for(lambda: "Resolved by: Mei Tanaka" in
                               card_text(h.cards_in("payments")[0]))
