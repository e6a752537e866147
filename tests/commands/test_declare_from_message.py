""""Declare incident" on a message's "…" menu, at the protocol level: the composeExtension
invokes Teams sends to /api/messages, answered through the real app, with the Bot Connector
stand-in receiving the card. The form is prefilled from the message (text, author, the service
guessed from the catalog's names and aliases); submitting declares through `incident declare`'s
use case and the timeline links the source message; mistakes get the form back and change
nothing."""
import pytest

from tests.harness import Harness, card_text

LINK = "https://teams.microsoft.com/l/message/19:checkout-incidents@thread.tacv2/1700000000001"
TEXT = ("<p>Customers say the <b>cart</b> spins forever since 10:02. Orders are failing.</p>"
        "<p>Can someone look?</p>")


def payload(text: str = TEXT, link: str | None = LINK) -> dict:
    return {"id": "1700000000001", "messageType": "message", "createdDateTime":
            "2026-12-03T10:05:00.000Z", "importance": "normal", "locale": "en-us",
            "linkToMessage": link,
            "from": {"user": {"id": "aad-mei", "displayName": "Mei Tanaka",
                              "userIdentityType": "aadUser"}},
            "body": {"contentType": "html", "content": text}, "attachments": [],
            "mentions": [], "reactions": []}


def action(h: Harness, name: str, *, data: dict | None = None, who: str = "priya",
           command: str = "declareIncident", message: dict | None = None) -> dict:
    activity = h.channel_message("", who=who, mention=False)
    value = {"commandId": command, "commandContext": "message",
             "context": {"theme": "default"}, "messagePayload": message or payload()}
    if data is not None:
        value["data"] = data
    activity.update(type="invoke", name=name, text=None, value=value)
    return activity


def form_of(body: dict) -> dict:
    task = body["task"]
    assert task["type"] == "continue", body
    assert task["value"]["title"] == "Declare incident"
    attachment = task["value"]["card"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    return attachment["content"]


def inputs(card: dict) -> dict:
    return {i["id"]: i for i in card["body"] if i.get("id")}


@pytest.fixture
async def h(harness):
    await harness.subscribe("checkout")
    return harness


async def test_the_form_is_prefilled_from_the_message(h):
    status, body = await h.send(action(h, "composeExtension/fetchTask"))
    assert status == 200
    card = form_of(body)
    fields = inputs(card)
    assert fields["title"]["value"] == "Customers say the cart spins forever since 10:02."
    assert fields["service"]["value"] == "checkout-api"  # the catalog alias "cart"
    assert fields["private"]["value"] == "false"
    text = card_text(card)
    assert "Message from Mei Tanaka:" in text and "Orders are failing. Can someone look?" in text
    assert card["actions"][0]["type"] == "Action.Submit"
    assert not await h.incidents()  # opening the form declares nothing


async def test_a_service_named_in_the_text_and_no_guess_at_all(h):
    _, body = await h.send(action(h, "composeExtension/fetchTask",
                                  message=payload("payment-gateway 502s from the PSP")))
    assert inputs(form_of(body))["service"]["value"] == "payment-gateway"
    _, body = await h.send(action(h, "composeExtension/fetchTask",
                                  message=payload("lunch is here")))
    assert "value" not in inputs(form_of(body))["service"]


async def test_submitting_declares_and_the_timeline_links_the_source_message(h):
    data = {"verb": "declare", "title": "Cart spins forever", "service": "checkout-api",
            "level": "service-down", "private": "false"}
    status, body = await h.send(action(h, "composeExtension/submitAction", data=data))
    assert status == 200
    assert body == {"task": {"type": "message", "value": "🔥 INC-1 declared: Cart spins forever"}}
    await h.settle()
    incident = await h.incident(1)
    assert (incident.title, incident.service, incident.level, incident.private) == \
        ("Cart spins forever", "checkout-api", "service-down", False)
    (declared,) = [e for e in await h.timeline(1) if e["kind"] == "declared"]
    assert declared["actor"] == "Priya Raman"
    assert declared["text"].endswith(f"from a message by Mei Tanaka: {LINK}")
    assert declared["data"] == {"source_message": LINK}
    cards = [c for c in h.cards_in("checkout") if "INC-1" in card_text(c)]
    assert len(cards) == 1 and "Cart spins forever" in card_text(cards[0])


async def test_teams_retrying_the_submit_declares_once(h):
    activity = action(h, "composeExtension/submitAction",
                      data={"title": "Cart spins forever", "service": "checkout-api"})
    await h.send(activity)
    status, body = await h.send(activity)
    assert status == 200 and body["task"]["type"] == "message"
    await h.settle()
    assert len(await h.incidents()) == 1


@pytest.mark.parametrize("data, problem", [
    ({"title": "  ", "service": "checkout-api"}, "A short title is required"),
    ({"title": "Cart down", "service": "checkout"}, "`checkout` is not a service in the catalog"),
    ({"title": "Cart down", "level": "sev0"}, "`sev0` is not a level"),
    ({"title": "Cart down", "private": "true"}, "A private incident needs Microsoft Graph"),
])
async def test_a_mistake_gets_the_form_back_with_the_problem_and_changes_nothing(h, data,
                                                                                problem):
    status, body = await h.send(action(h, "composeExtension/submitAction", data=data))
    assert status == 200
    card = form_of(body)
    assert problem in card_text(card)
    assert "Mei Tanaka" in card_text(card)  # still the message's form
    await h.settle()
    assert not await h.incidents()


async def test_an_unknown_command_or_odd_payload_gets_a_clear_answer(h):
    _, body = await h.send(action(h, "composeExtension/fetchTask", command="somethingElse"))
    assert body["task"]["type"] == "message" and "no action `somethingElse`" in \
        body["task"]["value"]
    odd = action(h, "composeExtension/fetchTask")
    odd["value"]["messagePayload"] = {"body": 5, "from": "x", "linkToMessage": 7}
    status, body = await h.send(odd)
    assert status == 200 and inputs(form_of(body))["title"]["value"] == ""
    # A link that is not Teams' https link is not put on the timeline.
    await h.send(action(h, "composeExtension/submitAction", data={"title": "Cart down"},
                        message=payload(link="javascript:alert(1)")))
    (declared,) = [e for e in await h.timeline(1) if e["kind"] == "declared"]
    assert "javascript" not in declared["text"] and not declared["data"]
