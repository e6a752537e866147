"""Authority nobody can grant themselves (issue "Trust in a real tenant", items 1 and 3), through
the typed command and the card button alike: an acknowledgement stops the page without making a
guest a responder; once an incident needed a postmortem, lowering its level does not drop it and
only an incident commander or admin waives it, with a reason; lowering a resolved incident (or one
whose postmortem has started) needs a reason; the default channel is routed by incident
commanders and admins only. The guest (`who="guest"`) is on the Teams roster but not in the
catalog; Sarah Kim is the catalog's incident commander; Tom Brennan is an SRE member who is not."""
import itertools
from dataclasses import replace

import pytest
import yaml

from storage import postmortems as pm_store
from tests.conftest import CATALOG
from tests.harness import Harness, card_text, make_settings

CARD = "application/vnd.microsoft.card.adaptive"
MESSAGE = "application/vnd.microsoft.activity.message"
PATHS = ("typed", "button")
RCA = {"summary": "Pods crashed", "customer_impact": "All shoppers, 20 min",
       "detection": "The 5xx alert", "root_cause": "A bad release", "resolution": "Rolled back",
       "items": [None], "item_0_title": "Canary releases",
       "item_0_owner": "priya.raman@shopfront.example", "item_0_due": "2030-03-21"}


def _card_of(activity):
    (att,) = [a for a in activity.get("attachments") or [] if a["contentType"] == CARD]
    return att["content"]


async def _declared(h, text="incident declare checkout is down"):
    await h.subscribe("checkout")
    await h.say(text)
    await h.settle()


async def _do(h, path, typed, verb, extra=None, *, n=1, who="priya", channel="checkout"):
    """Act by typing `typed` or by clicking `verb` on INC-n's card; the text of the answer."""
    if path == "typed":
        reply = await h.say(typed, who=who, channel=channel)
        return reply.get("text") or card_text(_card_of(reply))
    data = {"incident": f"INC-{n}", "version": (await h.incident(n)).version, **(extra or {})}
    status, body = await h.send(h.card_click(verb, data, who=who, channel=channel))
    assert status == 200, body
    return body["value"] if body["type"] == MESSAGE else card_text(body["value"])


async def _postmortem(h, n):
    async with h.ctx.db.read() as conn:
        return await pm_store.get(conn, n)


def _entries(timeline, kind):
    return [e for e in timeline if e["kind"] == kind]


# -- 1. acknowledging stops the page; it does not make anyone a responder --------------------------

@pytest.mark.parametrize("path", PATHS)
async def test_the_guest_takeover_from_the_issue_is_refused(harness, path):
    """Acknowledge, Resolve, lower to minor, close: the issue's steps on another team's
    service-down incident. Only the acknowledgement goes through."""
    h = harness
    await h.subscribe("payments")
    await h.pagerduty("01-payment-gateway-triggered.json")
    await h.settle()
    answer = await _do(h, path, "incident ack 1", "ack", who="guest", channel="payments")
    assert "acknowledged by Guest User" in answer or "Acknowledged by: Guest User" in answer
    acked = await h.incident(1)
    assert (acked.acknowledged_by, acked.commander) == ("Guest User", None)

    for typed, verb, extra in (("incident resolve 1", "resolve", {}),
                               ("incident level 1 minor because nothing", "set_level",
                                {"level": "minor", "reason": "nothing"})):
        answer = await _do(h, path, typed, verb, extra, who="guest", channel="payments")
        assert "only the Payments team" in answer, answer
        assert "the incident commanders (Sarah Kim)" in answer
        assert "acknowledging does not make you a responder" in answer
    await h.say("incident resolve 1", who="mei", channel="payments")
    answer = await _do(h, path, "incident close 1", "close", who="guest", channel="payments")
    assert "only the Payments team" in answer, answer

    after = await h.incident(1)
    assert (after.status, after.level, after.commander) == ("resolved", "service-down", None)
    await h.settle()
    (card,) = h.cards_in("payments")
    assert "Incident commander" not in card_text(card)


@pytest.mark.parametrize("path", PATHS)
async def test_a_guests_ack_shows_on_the_card_and_keeps_the_commander(harness, path):
    h = harness
    await _declared(h)
    answer = await _do(h, path, "incident ack 1", "ack", who="guest")
    assert "Guest User" in answer
    await h.settle()
    (card,) = h.cards_in("checkout")
    assert "Acknowledged by: Guest User" in card_text(card)
    assert "Incident commander" not in card_text(card)
    assert (await h.incident(1)).commander is None
    # The on-call acknowledges too (typed: the button is gone): they take the free command.
    answer = (await h.say("incident ack 1"))["text"]
    assert answer == "INC-1 was already acknowledged by Guest User. Priya Raman is now its " \
                     "incident commander."
    incident = await h.incident(1)
    assert (incident.acknowledged_by, incident.commander) == \
        ("Guest User", "priya.raman@shopfront.example")
    answer = (await h.say("incident ack 1", who="sarah"))["text"]  # commanded already
    assert answer == "INC-1 was already acknowledged by Guest User."


@pytest.mark.parametrize("path", PATHS)
async def test_a_responders_ack_takes_command_when_nobody_has_it(harness, path):
    h = harness
    await _declared(h)
    await _do(h, path, "incident ack 1", "ack", who="priya")
    assert (await h.incident(1)).commander == "priya.raman@shopfront.example"
    await h.settle()
    assert "Incident commander: Priya Raman" in card_text(h.cards_in("checkout")[0])


async def test_a_guest_who_acknowledged_still_may_not_change_what_it_means_typed(harness):
    h = harness
    await _declared(h)                                          # INC-1
    for title in ("checkout latency high", "checkout errors on login"):   # INC-2, INC-3
        await h.say(f"incident declare {title}")
    await h.settle()
    await h.say("incident link 2 1")                            # Priya: INC-2 under INC-1
    for n in (1, 2, 3):
        await h.say(f"incident ack {n}", who="guest")
    for typed in ("incident resolve 1", "incident level 1 minor because no", "incident close 1",
                  "incident assign 1 Tom Brennan", "incident link 3 1", "incident unlink 2"):
        answer = (await h.say(typed, who="guest"))["text"]
        assert "only the Checkout team" in answer, (typed, answer)
        assert "Sorry Guest User" in answer and "Sarah Kim" in answer
    await _nothing_changed(h)


async def test_a_guest_who_acknowledged_still_may_not_change_what_it_means_button(harness):
    h = harness
    await _declared(h)
    await h.say("incident declare checkout latency high")
    await h.settle()
    await h.say("incident link 2 1")
    for n in (1, 2):
        await _do(h, "button", None, "ack", n=n, who="guest")
    await h.settle()
    updates = len(h.connector.updates)
    for verb, n, extra in (("resolve", 1, {}), ("set_level", 1, {"level": "minor", "reason": "no"}),
                           ("close", 1, {}), ("unlink", 2, {}), ("rca_save", 1, RCA)):
        answer = await _do(h, "button", None, verb, extra, n=n, who="guest")
        assert "only the Checkout team" in answer, (verb, answer)
    await h.settle()
    assert len(h.connector.updates) == updates  # refused clicks leave the cards as they were
    await _nothing_changed(h, third=False)


async def _nothing_changed(h, third=True):
    one, two = await h.incident(1), await h.incident(2)
    assert (one.status, one.level, one.commander) == ("open", "service-down", None)
    assert two.parent_id == 1
    if third:
        assert (await h.incident(3)).parent_id is None
    assert not (await _postmortem(h, 1) or {}).get("summary")


async def test_the_commander_must_be_someone_firebell_knows(harness):
    h = harness
    await _declared(h)
    for who in ("Nobody Known", "guest@elsewhere.example"):  # the guest is on the roster only
        answer = (await h.say(f"incident assign 1 {who}"))["text"]
        assert "can't find" in answer and "someone Firebell knows" in answer
    assert (await h.incident(1)).commander is None
    answer = (await h.say("incident assign 1 @Nobody Known", who="guest"))["text"]
    assert "only the Checkout team" in answer  # a non-responder hears who may, not who exists
    assert "now the incident commander" in (await h.say("incident assign 1 Tom Brennan"))["text"]
    assert (await h.incident(1)).commander == "tom.brennan@shopfront.example"


# -- 1. the postmortem stays required; only an incident commander or admin waives it ---------------

@pytest.mark.parametrize("path", PATHS)
async def test_lowering_the_level_keeps_the_postmortem_required(harness, path):
    h = harness
    await _declared(h)  # service-down: its postmortem starts when it is announced
    answer = await _do(h, path, "incident level 1 minor", "set_level", {"level": "minor"})
    assert "needs a reason, because its postmortem has started" in answer, answer
    assert (await h.incident(1)).level == "service-down"
    await _do(h, path, "incident level 1 minor because only one pod restarted", "set_level",
              {"level": "minor", "reason": "only one pod restarted"})
    await h.say("incident resolve 1")
    incident = await h.incident(1)
    assert (incident.level, incident.status, incident.postmortem_required) == \
        ("minor", "resolved", True)
    answer = await _do(h, path, "incident close 1", "close")
    assert "cannot be closed yet: its postmortem is incomplete" in answer, answer
    assert (await h.incident(1)).status == "resolved"
    await h.settle()
    card = card_text(h.cards_in("checkout")[0])
    assert "To close: summary" in card and "RCA" in card


async def test_the_requirement_holds_across_a_restart_and_a_pagerduty_resolve(database_url,
                                                                              connector):
    first = await Harness(make_settings(database_url), connector).start()
    try:
        await first.subscribe("payments")
        await first.pagerduty("01-payment-gateway-triggered.json")
        await first.settle()
        await _do(first, "button", None, "set_level", {"level": "minor", "reason": "blip"},
                  who="mei", channel="payments")
        assert (await first.incident(1)).level == "minor"
    finally:
        await first.stop()
    again = Harness(make_settings(database_url), connector)
    again._ids = itertools.count(1_800_000_000_000)  # new activities, not redeliveries
    await again.start()
    try:
        assert (await again.pagerduty("07-payment-gateway-resolved.json")).status == 200
        await again.settle()
        assert (await again.incident(1)).status == "resolved"
        answer = (await again.say("incident close 1", who="mei", channel="payments"))["text"]
        assert "its postmortem is incomplete" in answer
    finally:
        await again.stop()


async def test_only_an_incident_commander_waives_and_the_waiver_is_on_record(harness):
    h = harness
    await _declared(h)
    await h.say("incident level 1 minor because a probe, not customers")
    await h.say("incident resolve 1")
    for who in ("priya", "tom", "guest"):  # a team member, an SRE, a guest
        answer = (await h.say("incident waive 1 not needed", who=who))["text"]
        assert "only the incident commanders (Sarah Kim) and admins may waive INC-1's " \
               "postmortem" in answer, (who, answer)
    answer = (await h.say("incident waive INC-1", who="sarah"))["text"]
    assert answer.startswith("Usage: `incident waive INC-7 <reason>`")
    assert "postmortem is incomplete" in (await h.say("incident close 1"))["text"]

    answer = (await h.say("incident waive INC-1 synthetic probe, no customer impact",
                          who="sarah"))["text"]
    assert answer == "✅ INC-1's postmortem is waived by Sarah Kim: synthetic probe, no " \
                     "customer impact"
    (entry,) = _entries(await h.timeline(1), "postmortem_waived")
    assert (entry["actor"], entry["text"]) == \
        ("Sarah Kim", "postmortem waived: synthetic probe, no customer impact")
    stored = await _postmortem(h, 1)
    assert (stored["status"], stored["waived_by"], stored["waiver_reason"]) == \
        ("waived", "sarah.kim@shopfront.example", "synthetic probe, no customer impact")
    assert "already waived by Sarah Kim" in \
        (await h.say("incident waive 1 again", who="sarah"))["text"]
    await h.settle()
    card = card_text(h.cards_in("checkout")[0])
    assert "Postmortem waived by Sarah Kim" in card and "To close" not in card

    assert "closed by Priya Raman" in (await h.say("incident close 1"))["text"]
    await h.settle()
    summaries = [card_text(c) for c in h.cards_in("checkout") if "INC-1 closed" in card_text(c)]
    assert len(summaries) == 1
    assert "Postmortem: waived by Sarah Kim" in summaries[0]
    assert "synthetic probe, no customer impact" in summaries[0]


async def test_waive_says_when_there_is_nothing_to_waive(harness):
    h = harness
    await _declared(h, "incident declare disk usage at 71% service=checkout-api")  # minor
    answer = (await h.say("incident waive 1 nothing to learn", who="sarah"))["text"]
    assert "INC-1 needs no postmortem (minor): nothing to waive." == answer
    assert "INC-9 does not exist" in (await h.say("incident waive 9 x", who="sarah"))["text"]


# -- 1. lowering a resolved incident needs a reason ----------------------------------------------

@pytest.mark.parametrize("path", PATHS)
async def test_lowering_a_resolved_incident_needs_a_reason(harness, path):
    h = harness
    await _declared(h)
    await h.say("incident resolve 1")
    await h.settle()
    updates = len(h.connector.updates)
    answer = await _do(h, path, "incident level 1 minor", "set_level", {"level": "minor"})
    assert "Lowering INC-1 from service-down to minor needs a reason, because it is resolved" \
        in answer, answer
    assert "incident level INC-1 minor because" in answer
    await h.settle()
    assert len(h.connector.updates) == updates  # the card stays as it was
    assert (await h.incident(1)).level == "service-down"

    answer = await _do(h, path, "incident level 1 minor because false alarm, rolled back",
                       "set_level", {"level": "minor", "reason": "false alarm, rolled back"})
    assert "minor" in answer
    assert (await h.incident(1)).level == "minor"
    (entry,) = _entries(await h.timeline(1), "level")
    assert (entry["actor"], entry["text"]) == \
        ("Priya Raman", "level service-down → minor because false alarm, rolled back")
    # Raising needs no reason.
    await _do(h, path, "incident level 1 high-latency", "set_level", {"level": "high-latency"})
    assert (await h.incident(1)).level == "high-latency"


async def test_the_card_level_form_has_a_reason_field(harness):
    h = harness
    await _declared(h)
    (card,) = h.cards_in("checkout")
    picker = next(a for a in card["actions"] if a.get("title") == "Change level")
    assert [i["id"] for i in picker["card"]["body"]] == ["level", "reason"]


async def test_a_refused_click_does_not_use_up_the_button(harness):
    """Close refused (RCA incomplete), RCA completed, the same Close button clicked again:
    it closes (a refusal keeps nothing, not even the click's id)."""
    h = harness
    await _declared(h)
    await h.say("incident resolve 1")
    version = (await h.incident(1)).version
    close = {"incident": "INC-1", "version": version}
    status, body = await h.send(h.card_click("close", close))
    assert "postmortem is incomplete" in body["value"]
    status, body = await h.send(h.card_click("rca_save", {"incident": "INC-1", **RCA}))
    assert "complete" in card_text(body["value"])
    status, body = await h.send(h.card_click("close", close))
    assert body["type"] == CARD and "CLOSED" in card_text(body["value"])
    assert (await h.incident(1)).status == "closed"


# -- the RCA form: anyone reads it, responders start and save it ---------------------------------

@pytest.mark.parametrize("path", PATHS)
async def test_a_guest_opening_the_rca_form_starts_no_postmortem(harness, path):
    h = harness
    await _declared(h, "incident declare disk usage at 71% service=checkout-api")  # minor
    answer = await _do(h, path, "incident rca 1", "rca", who="guest")
    assert "RCA for INC-1" in answer
    assert await _postmortem(h, 1) is None
    assert not _entries(await h.timeline(1), "postmortem")
    await _do(h, path, "incident rca 1", "rca", who="priya")
    assert (await _postmortem(h, 1))["status"] == "draft"


# -- 3. the default channel ---------------------------------------------------------------------

async def _say_as_stranger(h, text, channel="general"):
    """A message from someone the roster cache has not seen yet: the reply's text."""
    activity = h.channel_message(text, channel=channel)
    activity["from"] = {"id": "29:new", "name": "New Hire", "aadObjectId": "aad-new"}
    before = len(h.connector.requests_of("reply"))
    await h.send(activity)
    await h.connector.wait_for(lambda: len(h.connector.requests_of("reply")) > before)
    return h.connector.requests_of("reply")[-1].body["text"]


async def test_the_default_channel_is_for_incident_commanders_and_admins(harness):
    h = harness
    for who in ("guest", "priya"):
        answer = (await h.say("incident subscribe default", channel="general", who=who))["text"]
        assert "only the incident commanders (Sarah Kim) and admins may route the default " \
               "incidents" in answer, (who, answer)
    for team in ("default", "search"):
        answer = await _say_as_stranger(h, f"incident subscribe {team}")
        assert "I don't know who you are yet" in answer and "try again in a minute" in answer
        assert "only members" not in answer
    async with h.ctx.db.read() as conn:
        from storage import conversations
        assert await conversations.channel_for(conn, None) is None
    await h.subscribe("default", channel="general", who="sarah")


async def test_the_default_channel_without_commanders_or_admins(database_url, connector, tmp_path):
    raw = yaml.safe_load(CATALOG.read_text(encoding="utf-8"))
    for team in raw["teams"].values():
        team.pop("incident_commanders", None)
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(yaml.safe_dump(raw, sort_keys=False, allow_unicode=True),
                       encoding="utf-8")
    h = await Harness(make_settings(database_url, catalog_path=str(catalog)), connector).start()
    try:
        answer = (await h.say("incident subscribe default", channel="general",
                              who="sarah"))["text"]
        assert "no incident commander or admin is configured" in answer
        assert "`incident_commanders:`" in answer and "FIREBELL_ADMINS" in answer
        # A team's own members still route their team.
        await h.subscribe("checkout", who="priya")
    finally:
        await h.stop()
    settings = make_settings(database_url, catalog_path=str(catalog))
    settings = replace(settings, policy=replace(settings.policy,
                                                admins=frozenset({"guest@elsewhere.example"})))
    h = await Harness(settings, connector).start()
    try:
        await h.subscribe("default", channel="general", who="guest")
    finally:
        await h.stop()
