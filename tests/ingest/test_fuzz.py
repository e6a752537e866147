"""Hostile input, generated: the webhook parsers and the command parser never crash (they answer
with a rejection), the HTTP doors never answer 5xx for a sender's mistake, and nothing from a
rejected delivery is stored."""
import json

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from handlers.commands.parsing import ParseError, parse_command
from handlers.ingest.alertmanager import parse_alertmanager
from handlers.ingest.delivery import Rejected
from handlers.ingest.pagerduty import parse_pagerduty
from handlers.ingest.signature import sign
from storage.schema import incidents, inbound_events
from tests.conftest import fixture_bytes
from tests.harness import HEARTBEAT_TOKEN, SECRET

# Leaves include what used to get through the parsers and fail in the database or later:
# NUL, numbers beyond 32 and 64 bits, times in years 1 and 9999 with offsets.
AWKWARD = st.sampled_from(["0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00",
                           "0001-01-01T00:00:00Z", "a\u0000b", "\u0000"]) \
    | st.integers(min_value=2**31, max_value=2**64 - 1)
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
                    | st.text(max_size=30) | AWKWARD,
                    lambda children: st.lists(children, max_size=4)
                    | st.dictionaries(st.text(max_size=12), children, max_size=5), max_leaves=25)

FIELDS = ["event", "event_type", "id", "occurred_at", "data", "title", "service", "status",
          "messages", "incident", "alerts", "groupKey", "startsAt", "endsAt", "labels"]


def _mutations(base: dict) -> st.SearchStrategy:
    """A real body with one field replaced by something arbitrary, at any depth."""
    paths = []

    def walk(node, path):
        if isinstance(node, dict):
            for k, v in node.items():
                paths.append(path + (k,))
                walk(v, path + (k,))
        elif isinstance(node, list):
            for i, v in enumerate(node[:2]):
                paths.append(path + (i,))
                walk(v, path + (i,))
    walk(base, ())

    def mutate(args):
        path, value = args
        doc = json.loads(json.dumps(base))
        node = doc
        for step in path[:-1]:
            node = node[step]
        node[path[-1]] = value
        return doc
    return st.tuples(st.sampled_from(paths), JSON).map(mutate)


PD = json.loads(fixture_bytes("02-checkout-api-triggered.json"))
PD2 = json.loads(fixture_bytes("10-order-db-legacy-v2-trigger.json"))
AM = json.loads(fixture_bytes("11-alertmanager-search-service-firing.json"))
# Found by this test: a V2 incident whose `assignments` is not a list crashed the parser.
PD2_BAD_ASSIGNMENTS = json.dumps({"messages": [{**PD2["messages"][0], "incident": {
    **PD2["messages"][0]["incident"], "assignments": True}}]}).encode()


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=300), JSON.map(lambda d: json.dumps(d).encode()),
                 _mutations(PD).map(lambda d: json.dumps(d).encode()),
                 _mutations(PD2).map(lambda d: json.dumps(d).encode())))
@example(PD2_BAD_ASSIGNMENTS)
def test_pagerduty_parser_only_ever_rejects(body):
    try:
        delivery = parse_pagerduty(body, "w")
    except Rejected as exc:
        assert exc.status == 400 and exc.reason
        return
    for event in delivery.events:
        assert event.external_id and event.event_id and event.occurred_at.tzinfo


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=300), _mutations(AM).map(lambda d: json.dumps(d).encode())))
def test_alertmanager_parser_only_ever_rejects(body):
    try:
        delivery = parse_alertmanager(body)
    except Rejected as exc:
        assert exc.status == 400
        return
    (event,) = delivery.events
    assert event.external_id and event.kind in ("triggered", "resolved")


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.text(max_size=300),
                 st.lists(st.sampled_from(["incident", "/incident", "ack", "declare", "level",
                                           "INC-7", "7", "<at>Firebell</at>", "service=",
                                           "level=", "\"", "'", "&lt;", "@", "link", "note",
                                           "\u0000", "🔥", "list", "all"]) | st.text(max_size=8),
                          max_size=8).map(" ".join)))
def test_command_parser_only_ever_explains(text):
    try:
        command = parse_command(text)
    except ParseError as exc:
        assert str(exc)
        return
    assert command.verb


async def _counts(h):
    async with h.ctx.db.read() as conn:
        return [(await conn.execute(select(func.count()).select_from(t))).scalar_one()
                for t in (incidents, inbound_events)]


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(doc=st.one_of(_mutations(PD), _mutations(AM), JSON))
async def test_doors_never_5xx_and_store_nothing_when_refusing(harness, caplog, doc):
    h = harness
    body = json.dumps(doc).encode()
    before = await _counts(h)
    signed = {"X-PagerDuty-Signature": sign(SECRET, body), "Content-Type": "application/json"}
    pd = await h.pagerduty("x", body=body, headers=signed)
    am = await h.alertmanager("x", body=body)
    status, _ = await h.send(doc if isinstance(doc, dict) else {"type": doc})
    async with h.http.post(f"{h.url}/webhooks/heartbeat/alert-pipeline", data=body,
                           headers={"Authorization": f"Bearer {HEARTBEAT_TOKEN}"}) as beat:
        await beat.read()
    assert pd.status < 500 and am.status < 500 and status < 500 and beat.status < 500
    assert isinstance(doc, dict) or beat.status in (400, 413)   # a beat's body: an object
    assert not [r for r in caplog.records if r.exc_info], caplog.text
    if pd.status >= 400 and am.status >= 400:
        assert await _counts(h) == before
