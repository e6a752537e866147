"""A card click on the live incident card that answers with another card (the RCA form) must not replace the
live card: found in the Microsoft 365 Agents Playground (tests/e2e/test_firebell_playground.py), where the
postmortem summary saved from such a form was overwritten by the live card's next outbox update at once."""
from tests.harness import card_text

CARD = "application/vnd.microsoft.card.adaptive"
MESSAGE = "application/vnd.microsoft.activity.message"


async def test_rca_from_the_live_card_is_posted_as_a_new_message(harness):
    h = harness
    await h.subscribe("checkout")
    await h.say("incident declare checkout is down")
    await h.settle()
    live_id = h.connector.posts[-1]["id"]  # the reply carrying the live card
    await h.send(h.card_click("resolve", {"incident": "INC-1", "version": 2}, reply_to=live_id))
    await h.settle()
    posts = len(h.connector.posts)

    status, body = await h.send(h.card_click("rca", {"incident": "INC-1"}, reply_to=live_id))
    assert status == 200 and body["type"] == MESSAGE and body["value"] == "Posted below."
    assert len(h.connector.posts) == posts + 1
    form_post = h.connector.posts[-1]
    (att,) = form_post["activity"]["attachments"]
    assert att["contentType"] == CARD and "RCA for INC-1" in card_text(att["content"])
    # the live card is still the incident card
    assert any("**INC-1** · RESOLVED" in card_text(c) for c in h.cards_in("checkout"))

    # a click on the form itself (not a live card) still answers in place
    status, body = await h.send(h.card_click("rca_save", {"incident": "INC-1", "items": [None, None],
                                                          "summary": "pods crashed"},
                                             reply_to=form_post["id"]))
    assert body["type"] == CARD and "Postmortem INC-1" in card_text(body["value"])
    # and so does a card action that answers with the incident card
    status, body = await h.send(h.card_click("set_level", {"incident": "INC-1", "version": 99,
                                                           "level": "high-latency",
                                                           "reason": "only slow"}, reply_to=live_id))
    assert body["type"] == CARD and "high-latency" in card_text(body["value"])
