"""Commands and card clicks through POST /api/messages, with the fake Bot Connector recording
what Firebell sends back."""
from storage import conversations
from tests.harness import CHANNELS, card_text

CARD = "application/vnd.microsoft.card.adaptive"


def _card_of(activity):
    (att,) = [a for a in activity.get("attachments") or [] if a["contentType"] == CARD]
    return att["content"]


async def _declared(h, text="incident declare checkout is down"):
    await h.subscribe("checkout")
    reply = await h.say(text)
    await h.settle()
    return reply


async def test_declare_in_a_channel_answers_with_the_live_card(harness):
    h = harness
    reply = await _declared(h)
    card = _card_of(reply)
    assert "INC-1" in card_text(card) and "checkout is down" in card_text(card)
    incident = await h.incident(1)
    assert (incident.source, incident.service, incident.team, incident.declared_by) == \
        ("teams", "checkout-api", "checkout", "Priya Raman")
    assert incident.level == "service-down"
    # The channel already has the card (the reply): correlation does not post a second one.
    assert len(h.cards_in("checkout")) == 1
    verbs = [a.get("verb") for a in card["actions"]]
    assert verbs[:2] == ["ack", "resolve"]
    assert all(a["data"]["incident"] == "INC-1" for a in card["actions"] if a.get("verb"))


async def test_card_clicks_update_the_same_card_and_repeats_change_nothing(harness):
    h = harness
    reply = await _declared(h)
    message_id = h.connector.posts[-1]["id"]
    version = _card_of(reply)["actions"][0]["data"]["version"]

    status, body = await h.send(h.card_click("ack", {"incident": "INC-1", "version": version},
                                             reply_to=message_id))
    assert status == 200 and body["statusCode"] == 200 and body["type"] == CARD
    assert "Acknowledged by: Priya Raman" in card_text(body["value"])
    entries = len(await h.timeline(1))
    # Teams retries the invoke: same verb, same card version -> nothing new.
    status, again = await h.send(h.card_click("ack", {"incident": "INC-1", "version": version},
                                              reply_to=message_id))
    assert status == 200 and again["type"] == CARD
    assert len(await h.timeline(1)) == entries

    new_version = body["value"]["actions"][0]["data"]["version"]
    status, body = await h.send(h.card_click("set_level", {"incident": "INC-1",
                                                           "version": new_version,
                                                           "level": "high-latency",
                                                           "reason": "orders go through"}))
    assert "high-latency" in card_text(body["value"])
    status, body = await h.send(h.card_click("resolve", {"incident": "INC-1",
                                                         "version": new_version + 1}))
    assert "RESOLVED" in card_text(body["value"])
    await h.settle()
    # Everyone sees it: the channel message itself was updated in place, not re-posted.
    (card,) = h.cards_in("checkout")
    assert "RESOLVED" in card_text(card) and "high-latency" in card_text(card)
    assert {u["conversation_id"] for u in h.connector.updates} <= {
        p["conversation_id"] for p in h.connector.posts}
    kinds = [e["kind"] for e in await h.timeline(1)]
    assert kinds[:1] == ["declared"] and {"acknowledged", "level", "resolved"} <= set(kinds)


async def test_illegal_transition_is_explained_and_changes_nothing(harness):
    h = harness
    await _declared(h)
    status, body = await h.send(h.card_click("close", {"incident": "INC-1", "version": 1}))
    assert body["type"] == "application/vnd.microsoft.activity.message"
    assert "still open: resolve it first" in body["value"]
    assert (await h.incident(1)).status == "open"
    reply = await h.say("incident close INC-1")
    assert "still open: resolve it first" in reply["text"]


async def test_typed_lifecycle_commands(harness):
    h = harness
    await _declared(h)
    reply = await h.say("incident ack 1", who="tom")
    assert reply["text"] == "✅ INC-1 acknowledged by Tom Brennan."
    reply = await h.say("incident assign INC-1 <at>Sarah Kim</at>")
    assert "Sarah Kim is now the incident commander" in reply["text"]
    reply = await h.say("incident note inc-1 rolled back **build 42**")
    assert reply["text"] == "📝 Noted on INC-1."
    reply = await h.say("incident level 1 minor because only one pod restarted")
    assert reply["text"].startswith("✅ INC-1 is now minor. Its postmortem is still required")
    reply = await h.say("incident resolve INC-1")
    assert "resolved by Priya Raman" in reply["text"]
    incident = await h.incident(1)
    assert (incident.status, incident.commander, incident.level) == \
        ("resolved", "sarah.kim@shopfront.example", "minor")
    notes = [e for e in await h.timeline(1) if e["kind"] == "note"]
    assert notes[0]["text"] == "rolled back **build 42**" and notes[0]["actor"] == "Priya Raman"
    # It was service-down: lowering it did not drop the postmortem.
    assert "postmortem is incomplete" in (await h.say("incident close 1"))["text"]
    reply = await h.say("incident waive 1 one pod, no customer saw it", who="sarah")
    assert "postmortem is waived by Sarah Kim" in reply["text"]
    reply = await h.say("incident close 1")
    assert "closed by" in reply["text"]


async def test_list_show_help_and_mistakes(harness):
    h = harness
    await _declared(h)
    await h.say("incident declare payment-gateway 503s")
    await h.settle()  # correlation decides in the background
    listing = card_text(_card_of(await h.say("incident list")))
    # checkout follows from payment-gateway (a cascade): folded into its root's row (issue 14)
    assert "INC-2 payment-gateway, +1 cascade" in listing and "Open incidents (1)" in listing
    shown = card_text(_card_of(await h.say("incident show INC-1")))
    assert "Timeline" in shown and "declared in Teams" in shown
    assert "incident declare" in card_text(_card_of(await h.say("incident help")))
    assert "I don't know the command `dance`" in (await h.say("incident dance"))["text"]
    assert "INC-99 does not exist" in (await h.say("incident ack INC-99"))["text"]
    assert "`sometime` is not a level" in (await h.say("incident level 1 sometime"))["text"]
    assert "not a team" in (await h.say("incident list open nobody"))["text"]


async def test_declare_form_and_its_validation(harness):
    h = harness
    await h.subscribe("checkout")
    form = _card_of(await h.say("incident declare"))
    assert [i["id"] for i in form["body"] if i["type"].startswith("Input.")] == \
        ["title", "service", "level", "private"]
    status, body = await h.send(h.card_click("declare", {"title": "  ", "service": "",
                                                         "level": ""}))
    assert body["type"] == CARD and "Declare an incident" in card_text(body["value"])
    status, body = await h.send(h.card_click("declare", {"title": "ledger slow",
                                                         "service": "ledgr-db", "level": ""}))
    assert "Did you mean ledger-db" in card_text(body["value"])
    # The private toggle needs Graph for its private chat: refused, the toggle kept on.
    status, body = await h.send(h.card_click("declare", {"title": "ledger slow",
                                                         "service": "ledger-db", "level": "",
                                                         "private": "true"}))
    assert "A private incident needs Microsoft Graph" in card_text(body["value"])
    (toggle,) = [i for i in body["value"]["body"] if i.get("id") == "private"]
    assert toggle["value"] == "true"
    assert await h.incidents() == []
    status, body = await h.send(h.card_click("declare", {"title": "ledger slow",
                                                         "service": "ledger-db",
                                                         "level": "high-latency"}))
    assert "INC-1" in card_text(body["value"])
    assert (await h.incident(1)).level == "high-latency"


async def test_personal_chat_and_action_submit_fallback(harness):
    h = harness
    await _declared(h)
    status, _ = await h.send(h.personal_message("ack INC-1", who="ana"))
    assert status in (200, 201)
    await h.connector.wait_for(lambda: h.connector.messages("a:personal-ana"))
    assert "acknowledged by Ana Costa" in h.connector.messages("a:personal-ana")[-1]["text"]
    # An older client sends Action.Submit: a message whose value carries the verb.
    submit = h.channel_message("", mention=False)
    submit.update(text=None, replyToId=h.connector.posts[0]["id"],
                  value={"verb": "resolve", "incident": "INC-1", "version": 3})
    status, _ = await h.send(submit)
    assert status in (200, 201)
    await h.settle()
    assert (await h.incident(1)).status == "resolved"


async def test_subscribe_rules(harness):
    h = harness
    reply = await h.say("incident subscribe nobody")
    assert "`nobody` is not a team" in reply["text"]
    status, _ = await h.send(h.personal_message("incident subscribe checkout"))
    await h.connector.wait_for(lambda: h.connector.messages("a:personal-priya"))
    assert "`incident subscribe` works in a team channel" in \
        h.connector.messages("a:personal-priya")[-1]["text"]
    await h.subscribe("checkout")
    reply = await h.say("incident subscribe Checkout", channel="general")
    assert "moved from another channel" in reply["text"]


async def test_unsubscribe_stops_routing_to_this_channel_only(harness):
    """`incident unsubscribe <team>` takes the team's incidents out of this channel (they go
    to the default channel, if there is one); refused for someone who may not route them, and
    a no-op said as such where the team was not routed."""
    h = harness
    await h.subscribe("checkout")
    await h.subscribe("default", channel="general")
    refused = await h.say("incident unsubscribe checkout", who="guest")
    assert "only members of Checkout" in refused["text"]
    reply = await h.say("incident unsubscribe checkout", who="priya")
    assert reply["text"].startswith("✅ This channel no longer gets Checkout incidents; they go "
                                    "to the default channel.")
    again = await h.say("incident unsubscribe checkout")
    assert "does not get Checkout incidents: nothing to stop" in again["text"]
    async with h.ctx.db.read() as conn:
        assert await conversations.channel_for(conn, "checkout") == CHANNELS["general"]
        assert await conversations.subscriptions_of(conn, CHANNELS["general"]) == ["default"]


async def test_redelivered_activity_runs_once(harness):
    h = harness
    await h.subscribe("checkout")
    activity = h.channel_message("incident declare orders failing")
    await h.send(activity)
    await h.send(activity)
    await h.settle()
    assert len(await h.incidents()) == 1


async def test_malformed_bot_requests_get_4xx(harness):
    h = harness
    async with h.http.post(f"{h.url}/api/messages", data=b"{nope",
                           headers={"Content-Type": "application/json"}) as resp:
        assert resp.status == 400
    async with h.http.post(f"{h.url}/api/messages", data=b"hello",
                           headers={"Content-Type": "text/plain"}) as resp:
        assert resp.status == 415
    async with h.http.post(f"{h.url}/api/messages", json={"text": "no type"}) as resp:
        assert resp.status == 400
    async with h.http.post(f"{h.url}/api/messages", data=b"[" * (1024 * 1024 + 10),
                           headers={"Content-Type": "application/json"}) as resp:
        assert resp.status == 413
    assert CHANNELS  # the harness' channels stay untouched
    assert await h.incidents() == []


async def test_saving_the_rca_form_again_keeps_long_answers_whole(harness):
    h = harness
    await _declared(h)  # checkout is down: a service-down incident with a postmortem
    long_summary = "The primary failed over. " * 150  # ~3,700 characters
    status, body = await h.send(h.card_click("rca_save", {"incident": "INC-1", "items": [None],
                                                          "summary": long_summary}))
    assert status == 200
    status, body = await h.send(h.card_click("rca", {"incident": "INC-1"}))
    form = body["value"]
    shown = next(i["value"] for i in form["body"] if i.get("id") == "summary")
    assert shown.endswith("…") and len(shown) < len(long_summary.strip())
    # Saving the form as shown (with the shortened text) must not cut the stored answer.
    fields = {i["id"]: i.get("value", "") for i in form["body"] if i.get("id")}
    save = next(a for a in form["actions"] if a.get("verb") == "rca_save")
    status, body = await h.send(h.card_click("rca_save", {**save["data"], **fields}))
    async with h.ctx.db.read() as conn:
        from storage import postmortems
        stored = await postmortems.get(conn, 1)
    assert stored["summary"] == long_summary.strip()
