"""Inputs that used to answer 500 (or were accepted and then broke a job): numbers beyond the
column, dates outside any sane range, NUL characters, absurdly deep JSON, wrong types, and the
V2 token door. Each gets a 400 naming the field, or is stored normalised with the original kept
in the incident's details; never a traceback in the log, never a job left retrying.

Runs on SQLite, and on PostgreSQL with DATABASE_URL set (where the int32 column and the NUL
character are what used to fail)."""
from __future__ import annotations

import json
import logging
from datetime import datetime, timezone

import pytest
from sqlalchemy import func, select

from handlers.ingest.signature import sign
from storage.schema import inbound_events, incidents, outbox, timeline
from tests.conftest import fixture_bytes
from tests.harness import SECRET, card_text

TRIGGER = "02-checkout-api-triggered.json"
V2 = "10-order-db-legacy-v2-trigger.json"
AM = "11-alertmanager-search-service-firing.json"
OCCURRED = datetime(2025, 3, 14, 14, 2, 11, 906000, tzinfo=timezone.utc)
OUT_OF_RANGE = ["0001-01-01T00:00:00Z", "0001-01-01T00:00:00+05:00",
                "9999-12-31T23:59:59-05:00", "9999-12-31T23:59:59+05:00", "1970-01-01T00:00:00Z"]


@pytest.fixture(autouse=True)
def no_traceback(caplog):
    """Every test here: whatever was refused or normalised, the log shows no traceback."""
    caplog.set_level(logging.INFO)
    yield
    assert not [r for r in caplog.records if r.exc_info], caplog.text
    assert "Traceback" not in caplog.text


def _pd(n: int, **data) -> dict:
    doc = json.loads(fixture_bytes(TRIGGER))
    doc["event"]["id"] = f"01BADINPUT{n:04d}"
    doc["event"]["data"].update(id=f"PBAD{n:03d}", title=f"checkout-api {_WORDS[n]} failing")
    doc["event"]["data"].update(data)
    return doc


_WORDS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india"]


async def _post_pd(h, doc: dict, query: str = "", signed: bool = True):
    body = json.dumps(doc).encode()
    headers = {"Content-Type": "application/json",
               "X-PagerDuty-Signature": sign(SECRET, body) if signed else None}
    async with h.http.post(f"{h.url}/webhooks/pagerduty{query}", data=body,
                           headers={k: v for k, v in headers.items() if v}) as resp:
        return resp.status, await resp.json()


async def _post_am(h, doc: dict):
    async with h.http.post(f"{h.url}/webhooks/alertmanager", data=json.dumps(doc).encode(),
                           headers={"Content-Type": "application/json",
                                    "Authorization": "Bearer am-token"}) as resp:
        return resp.status, await resp.json()


async def _counts(h) -> list[int]:
    async with h.ctx.db.read() as conn:
        return [(await conn.execute(select(func.count()).select_from(t))).scalar_one()
                for t in (incidents, timeline, inbound_events)]


async def _nothing_failing(h) -> None:
    """Every follow-up ran: none parked as failed, none waiting for another try."""
    async with h.ctx.db.read() as conn:
        rows = (await conn.execute(select(outbox.c.kind, outbox.c.status, outbox.c.attempts,
                                          outbox.c.last_error))).all()
    assert rows and all(r.status == "done" and not r.last_error for r in rows), rows


async def _announced(h, incident_ids: list[int], channel: str = "checkout") -> None:
    await h.settle()
    for incident_id in incident_ids:
        incident = await h.incident(incident_id)
        assert incident.correlated and incident.parent_id is None
        assert any(incident.ref in card_text(c) for c in h.cards_in(channel)), incident.ref
    await _nothing_failing(h)


# -- numbers ------------------------------------------------------------------------------------

async def test_a_pagerduty_number_beyond_the_column_is_kept_in_details(harness):
    h = harness
    await h.subscribe("checkout")
    numbers = [2**31, 2**63, 2**64 - 1, -(2**31) - 1]
    for n, number in enumerate(numbers):
        status, answer = await _post_pd(h, _pd(n, number=number))
        assert status == 200, answer
    await _announced(h, [1, 2, 3, 4])
    for incident_id, number in zip([1, 2, 3, 4], numbers):
        incident = await h.incident(incident_id)
        assert incident.pd_number is None
        assert incident.details["original"]["number"] == str(number)
    # An update with such a number changes nothing it cannot store.
    update = _pd(0, number=2**63)
    update["event"].update(id="01BADINPUTUPD", event_type="incident.priority_updated")
    update["event"]["data"]["priority"] = {"summary": "P1"}
    assert (await _post_pd(h, update))[0] == 200
    assert (await h.incident(1)).priority == "P1"


# -- dates --------------------------------------------------------------------------------------

async def test_created_at_out_of_range_starts_the_incident_when_it_occurred(harness):
    """A created_at in year 1 used to be stored as the start; its correlation job then failed
    on every try (start minus the cascade window is before year 1) and no card ever came."""
    h = harness
    await h.subscribe("checkout")
    for n, created in enumerate(OUT_OF_RANGE):
        status, answer = await _post_pd(h, _pd(n, created_at=created))
        assert status == 200, answer
    ids = list(range(1, len(OUT_OF_RANGE) + 1))
    await _announced(h, ids)
    for incident_id, created in zip(ids, OUT_OF_RANGE):
        incident = await h.incident(incident_id)
        assert incident.triggered_at == OCCURRED
        assert incident.details["original"]["created_at"] == created
        assert (await h.timeline(incident_id))[0]["at"] == OCCURRED


@pytest.mark.parametrize("occurred", OUT_OF_RANGE)
async def test_occurred_at_out_of_range_is_400_naming_the_field(harness, occurred):
    doc = _pd(0)
    doc["event"]["occurred_at"] = occurred
    status, answer = await _post_pd(harness, doc)
    assert status == 400
    assert "event.occurred_at" in answer["error"] and "2000-01-01" in answer["error"]
    assert await _counts(harness) == [0, 0, 0]


async def test_v2_times_out_of_range(harness):
    h = harness
    await h.subscribe("data-platform", channel="general", who="ana")
    before = await _counts(h)
    doc = json.loads(fixture_bytes(V2))
    doc["messages"][0]["log_entries"][0]["created_at"] = "9999-12-31T23:59:59-05:00"
    status, answer = await _post_pd(h, doc, query="?token=v2-token", signed=False)
    assert status == 400 and "messages[0].log_entries[0].created_at" in answer["error"]
    assert await _counts(h) == before
    doc = json.loads(fixture_bytes(V2))
    doc["messages"][0]["incident"]["created_at"] = "0001-01-01T00:00:00Z"
    status, answer = await _post_pd(h, doc, query="?token=v2-token", signed=False)
    assert status == 200, answer
    incident = await h.incident(1)
    assert incident.triggered_at == datetime(2025, 3, 14, 14, 52, 30, tzinfo=timezone.utc)
    assert incident.details["original"]["created_at"] == "0001-01-01T00:00:00Z"
    await _announced(h, [1], channel="general")


async def test_alertmanager_times(harness):
    """endsAt 0001-01-01T00:00:00Z means "not ended" (it always did); any other endsAt outside
    the accepted range is treated the same and kept as sent; a startsAt outside it is a 400."""
    h = harness
    await h.subscribe("search")
    before = await _counts(h)
    doc = json.loads(fixture_bytes(AM))
    doc["alerts"][0]["startsAt"] = "0001-01-01T00:00:00+05:00"
    status, answer = await _post_am(h, doc)
    assert status == 400 and "alerts[0].startsAt" in answer["error"]
    assert await _counts(h) == before
    doc = json.loads(fixture_bytes(AM))
    doc["alerts"][0]["endsAt"] = "9999-12-31T23:59:59-05:00"
    doc["alerts"][1]["endsAt"] = "0001-01-01T00:00:00+05:00"
    status, answer = await _post_am(h, doc)
    assert status == 200, answer
    incident = await h.incident(1)
    first, second = incident.details["alerts"]
    assert first["ends_at"] is None and first["ends_at_original"] == "9999-12-31T23:59:59-05:00"
    assert second["ends_at"] is None
    await _announced(h, [1], channel="search")
    resolved = json.loads(fixture_bytes("12-alertmanager-search-service-resolved.json"))
    assert (await _post_am(h, resolved))[0] == 200
    assert (await h.incident(1)).status == "resolved"


# -- NUL characters -----------------------------------------------------------------------------

async def test_nul_in_a_pagerduty_trigger_is_stored_as_a_replacement_character(harness):
    h = harness
    await h.subscribe("checkout")
    doc = _pd(0)
    doc["event"]["id"] = "01NUL\u0000EVENT"
    doc["event"]["data"].update(id="PNUL\u0000ID", title="checkout\u0000api down\u0000")
    doc["event"]["data"]["assignees"][0]["summary"] = "Priya\u0000 Raman"
    status, answer = await _post_pd(h, doc)
    assert status == 200, answer
    incident = await h.incident(1)
    assert incident.external_id == "PNUL\ufffdID"
    assert incident.title == "checkout\ufffdapi down\ufffd"
    await _announced(h, [1])
    agent = {"type": "user_reference", "id": "P\u0000X", "summary": "Pri\u0000ya"}
    note = {"event": {"id": "01NUL\u0000NOTE", "event_type": "incident.annotated",
                      "occurred_at": "2025-03-14T14:08:45Z", "agent": agent,
                      "data": {"incident": {"id": "PNUL\u0000ID"},
                               "content": "db\u0000 restarted"}}}
    assert (await _post_pd(h, note))[0] == 200
    assert any(e["text"] == "db\ufffd restarted" for e in await h.timeline(1))


async def test_nul_in_alertmanager_labels_keys_and_group_key(harness):
    h = harness
    await h.subscribe("search")
    doc = json.loads(fixture_bytes(AM))
    doc["groupKey"] = "{}/{team=\"search\u0000\"}"
    doc["commonLabels"]["odd\u0000key"] = "odd\u0000value"
    doc["alerts"][0]["labels"]["pod"] = "search\u0000pod"
    doc["commonAnnotations"]["summary"] = "search latency\u0000 high"
    status, answer = await _post_am(h, doc)
    assert status == 200, answer
    incident = await h.incident(1)
    assert incident.external_id == "{}/{team=\"search\ufffd\"}"
    assert incident.details["labels"]["odd\ufffdkey"] == "odd\ufffdvalue"
    assert incident.details["alerts"][0]["labels"]["pod"] == "search\ufffdpod"
    await _announced(h, [1], channel="search")


async def test_nul_in_teams_text_names_and_card_data(harness):
    h = harness
    await h.subscribe("checkout")
    message = h.channel_message("incident declare checkout\u0000 is down")
    message["from"]["name"] = "Priya\u0000 Raman"
    message["channelData"]["team"]["name"] = "Shop\u0000front"
    status, _ = await h.send(message)
    assert status in (200, 201)
    await h.settle()
    incident = await h.incident(1)
    assert incident.title == "checkout\ufffd is down"
    reply = await h.say("incident note INC-1 restarted\u0000 the pods")
    assert "INC-1" in reply["text"]
    assert any(e["text"] == "restarted\ufffd the pods" for e in await h.timeline(1))
    status, answer = await h.send(h.card_click("declare", {"title": "payments\u0000 slow",
                                                           "service": "checkout-api",
                                                           "level\u0000": "x\u0000"}))
    assert status == 200
    # The declare form's card becomes the incident's live card (the invoke's answer).
    assert "INC-2" in card_text(answer["value"])
    assert (await h.incident(2)).title == "payments\ufffd slow"
    await _announced(h, [1])
    assert (await h.incident(2)).correlated


# -- /api/messages ------------------------------------------------------------------------------

async def _post_activity(h, body: bytes):
    async with h.http.post(f"{h.url}/api/messages", data=body,
                           headers={"Content-Type": "application/json"}) as resp:
        return resp.status, await resp.text()


async def test_deep_json_on_api_messages_is_400(harness):
    h = harness
    deep = b'{"type": "message", "value": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    status, text = await _post_activity(h, deep)
    assert status == 400 and "deep" in text
    # Deep enough to break the code after the parser (Python's own limit is 1,000), shallower
    # than the parser's limit (1,024): refused too.
    deep = b'{"type": "message", "channelData": ' + b"[" * 1000 + b"]" * 1000 + b"}"
    status, text = await _post_activity(h, deep)
    assert status == 400 and "deep" in text
    assert await h.incidents() == []


@pytest.mark.parametrize("change,field", [
    ({"from": 5}, "from"),
    ({"from": {"id": 5, "name": "x"}}, "from.id"),
    ({"recipient": []}, "recipient"),
    ({"conversation": "19:abc"}, "conversation"),
    ({"conversation": {"id": None, "tenantId": 7}}, "conversation.tenantId"),
    ({"text": 5}, "text"),
    ({"type": 5}, "type"),
    ({"value": 5}, "value"),
    ({"channelData": [1]}, "channelData"),
    ({"entities": "x"}, "entities"),
    ({"entities": [5]}, "entities[0]"),
    ({"membersAdded": [{"id": 1}]}, "membersAdded[0].id"),
    ({"attachments": {"a": 1}}, "attachments"),
    ({"timestamp": "yesterday"}, "timestamp"),
    ({"serviceUrl": ["http://x"]}, "serviceUrl"),
    ({"serviceUrl": "http://127.0.0.1/" + "x" * 600}, "serviceUrl"),   # its column holds 500
    ({"conversation": {"tenantId": "t"}}, "conversation"),
    # botbuilder reads these inside the turn, where a wrong type was a traceback.
    ({"entities": [{}]}, "entities[0].type"),
    ({"entities": [None]}, "entities[0]"),
    ({"entities": [{"type": "mention", "mentioned": 5, "text": "<at>Firebell</at>"}]},
     "entities[0].mentioned"),
    ({"channelData": {"tenant": "x"}}, "channelData.tenant"),
    ({"value": {"verb": "declare", "service": {"name": "checkout-api"}}}, "value.service"),
    ({"type": "invoke", "name": "adaptiveCard/action",
      "value": {"action": {"verb": "rca_save", "data": {"incident": "INC-1", "summary": {}}}}},
     "value.action.data.summary"),
    ({"type": "invoke", "name": "adaptiveCard/action", "value": {"action": "ack"}},
     "value.action"),
])
async def test_wrong_types_on_api_messages_are_400_naming_the_field(harness, change, field):
    h = harness
    activity = h.channel_message("incident declare checkout is down")
    activity.update(change)
    status, text = await _post_activity(h, json.dumps(activity).encode())
    assert status == 400, text
    assert field in json.loads(text)["error"]
    assert await h.incidents() == []


async def test_numbers_where_a_card_sends_text_are_read_as_text(harness):
    """Teams sends every card input as text; a number or true/false in its place used to crash
    the turn (`.strip()` on an int)."""
    h = harness
    await h.subscribe("checkout")
    status, answer = await h.send(h.card_click("declare", {"title": 5005, "service": True,
                                                           "level": 7}))
    assert status == 200
    assert "not a level" in card_text(answer["value"])
    status, answer = await h.send(h.card_click("declare", {"title": 5005,
                                                           "service": "checkout-api"}))
    assert status == 200 and "INC-1" in card_text(answer["value"])
    assert (await h.incident(1)).title == "5005"
    status, answer = await h.send(h.card_click("rca_save", {"incident": "INC-1", "summary": 5,
                                                            "impact_minutes": 30,
                                                            "items": [None, 1],
                                                            "item_0_title": 7}))
    assert status == 200


async def test_long_ids_are_400_and_long_names_are_clipped(harness):
    """PostgreSQL enforces the columns' sizes: an id longer than its column was a traceback
    inside the turn. Ids are refused; display names are clipped."""
    h = harness
    await h.subscribe("checkout")
    long_ids = [(("conversation", "id"), "19:" + "c" * 600),
                (("conversation", "tenantId"), "t" * 300),
                (("channelData", "team", "id"), "19:" + "t" * 600)]
    for path, value in long_ids:
        activity = h.channel_message("incident declare db down")
        parent = activity
        for key in path[:-1]:
            parent = parent[key]
        parent[path[-1]] = value
        status, text = await _post_activity(h, json.dumps(activity).encode())
        assert status == 400 and ".".join(path) in text, text
    message = h.channel_message("incident declare db down")
    message["from"] = {"id": "29:long", "name": "N" * 400, "aadObjectId": "aad-long"}
    message["channelData"]["channel"]["name"] = "C" * 400
    status, _ = await h.send(message)
    assert status in (200, 201)
    await h.settle()
    assert (await h.incident(1)).declared_by == "N" * 200


async def test_a_lone_surrogate_on_api_messages_is_400(harness):
    h = harness
    body = json.dumps(h.channel_message("incident declare x")).encode()
    body = body.replace(b"declare x", b"declare \\ud800 x")
    status, text = await _post_activity(h, body)
    assert status == 400, text
    assert await h.incidents() == []


# -- /api/incidents -----------------------------------------------------------------------------

@pytest.mark.parametrize("query,word", [
    ("offset=9223372036854775808", "offset"),
    ("offset=99999999999999999999999", "offset"),
    ("limit=9223372036854775808&offset=1", None),   # limit is capped at 1,000 as before
    ("since=0001-01-01T00:00:00%2B05:00", "since"),
    ("until=9999-12-31T23:59:59-05:00", "until"),
])
async def test_incident_api_numbers_and_times_beyond_the_database(database_url, connector,
                                                                 query, word):
    from tests.harness import Harness, make_settings
    h = await Harness(make_settings(database_url, api_token="api-token"), connector).start()
    try:
        async with h.http.get(f"{h.url}/api/incidents?{query}",
                              headers={"Authorization": "Bearer api-token"}) as resp:
            text = await resp.text()
            if word is None:
                assert resp.status == 200, text
            else:
                assert resp.status == 400 and word in text, text
    finally:
        await h.stop()


# -- the V2 token door --------------------------------------------------------------------------

@pytest.mark.parametrize("body", [
    json.loads(fixture_bytes(TRIGGER)),                                  # a V3 event
    {"messages": [], **json.loads(fixture_bytes(TRIGGER))},              # V3 behind a V2 key
    {"messages": json.loads(fixture_bytes(V2))["messages"], "event": {"id": "x"}},
    {"messages": "not a list"},
])
async def test_the_v2_token_lets_in_v2_bodies_only(harness, body):
    status, answer = await _post_pd(harness, body, query="?token=v2-token", signed=False)
    assert status == 401 and "V2" in answer["error"]
    assert await _counts(harness) == [0, 0, 0]
    # The same V2 body through the same door, signed or not, still works.
    status, _ = await _post_pd(harness, json.loads(fixture_bytes(V2)), query="?token=v2-token",
                               signed=False)
    assert status == 200
