"""Duplicates, cascades and recurrences through the real endpoints and the real correlation job,
on the run's database; people decide last."""
import asyncio
import json
from datetime import datetime, timedelta, timezone

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scheduler.worker import OutboxWorker
from tests.conftest import fixture_bytes
from tests.harness import card_text

T0 = datetime(2025, 3, 14, 14, 0, tzinfo=timezone.utc)
SERVICES = {  # name -> PagerDuty service id, from the catalog
    "storefront-web": "PSTF1WB", "checkout-api": "PCHK4PI", "payment-gateway": "PPAY7GW",
    "order-db": "PORD3DB", "search-service": "PSRC5VX", "catalog-db": "PCAT6DB",
    "ledger-db": "PLDG8DB", "shipping-api": "PSHP2AP",
}


def _event(n: int, service: str, title: str, minutes: float, kind: str = "triggered") -> bytes:
    doc = json.loads(fixture_bytes("01-payment-gateway-triggered.json"))
    when = T0 + timedelta(minutes=minutes)
    doc["event"].update(id=f"EV{n}-{kind}", event_type=f"incident.{kind}",
                        occurred_at=when.isoformat().replace("+00:00", "Z"))
    doc["event"]["data"].update(id=f"PINC{n}", number=5000 + n, title=title,
                                created_at=when.isoformat().replace("+00:00", "Z"),
                                status="resolved" if kind == "resolved" else "triggered",
                                service={"id": SERVICES[service], "summary": service,
                                         "type": "service_reference"})
    return json.dumps(doc).encode()


async def test_a_child_that_pages_before_its_root_is_adopted_late(harness):
    h = harness
    await h.subscribe("checkout")
    await h.subscribe("payments")
    await h.deliver(_event(1, "checkout-api", "checkout 5xx errors", 0))
    await h.settle()
    assert len(h.cards_in("checkout")) == 1  # announced: nothing upstream yet
    await h.deliver(_event(2, "payment-gateway", "payment-gateway is down", 2))
    await h.settle()
    child, root = await h.incident(1), await h.incident(2)
    assert (child.parent_id, child.link_kind) == (2, "cascade")
    assert "the cause paged later" in child.link_reason and root.parent_id is None
    # Another team's root: Checkout's early card turns into the compact one pointing there.
    await h.connector.wait_for(lambda: "likely caused by INC-2 payment-gateway (Payments)" in
                               card_text(h.cards_in("checkout")[0]))
    assert "Impacted downstream: checkout-api" in card_text(h.cards_in("payments")[0])
    kinds = [e["kind"] for e in await h.timeline(2)]
    assert "child_linked" in kinds


async def test_most_upstream_root_wins_across_several_hops(harness):
    h = harness
    await h.deliver(_event(1, "ledger-db", "ledger-db down", 0))
    await h.deliver(_event(2, "payment-gateway", "payment-gateway errors", 1))
    await h.deliver(_event(3, "checkout-api", "checkout errors", 2))
    await h.deliver(_event(4, "storefront-web", "storefront errors", 3))
    await h.settle()
    parents = {i.id: i.parent_id for i in await h.incidents()}
    assert parents == {1: None, 2: 1, 3: 1, 4: 1}


async def test_duplicate_of_a_resolved_incident_is_a_recurrence(harness):
    h = harness
    await h.deliver(_event(1, "order-db", "order-db: replication lag 47s", 0))
    await h.deliver(_event(1, "order-db", "order-db: replication lag 47s", 10, kind="resolved"))
    await h.deliver(_event(2, "order-db", "order-db: replication lag 63s", 20))
    await h.settle()
    new = await h.incident(2)
    assert (new.parent_id, new.recurrence_of) == (None, 1)
    assert any("recurrence of INC-1" in e["text"] for e in await h.timeline(2))


async def test_duplicate_window_is_extended_by_each_match(harness):
    h = harness
    await h.deliver(_event(1, "shipping-api", "shipping-api: 502 from carrier 7", 0))
    await h.deliver(_event(2, "shipping-api", "shipping-api: 502 from carrier 9", 25))
    await h.deliver(_event(3, "shipping-api", "shipping-api: 502 from carrier 3", 50))
    await h.deliver(_event(4, "shipping-api", "shipping-api: 502 from carrier 3", 90))
    await h.settle()
    parents = {i.id: (i.parent_id, i.link_kind) for i in await h.incidents()}
    assert parents[2] == (1, "duplicate") and parents[3] == (1, "duplicate")
    assert parents[4] == (None, None)  # 40 minutes after the last match: a new problem
    root = card_text(h.cards_in("general")[0]) if h.cards_in("general") else ""
    assert root == "" or "2 duplicates" in root


async def test_dependency_cycle_is_harmless(harness, tmp_path, database_url, connector):
    from dataclasses import replace
    from incidents.dependencies import DependencyGraph
    h = harness
    graph = DependencyGraph({"order-db": ["shipping-api"], "shipping-api": ["order-db"]})
    h.ctx.catalog = replace(h.ctx.catalog, graph=graph)
    await h.deliver(_event(1, "order-db", "order-db down", 0))
    await h.deliver(_event(2, "shipping-api", "shipping-api down", 1))
    await h.settle()
    parents = {i.id: i.parent_id for i in await h.incidents()}
    assert parents == {1: None, 2: 1}


async def test_human_unlink_survives_later_correlation_and_link_works(harness):
    h = harness
    await h.subscribe("checkout")
    await h.deliver(_event(1, "payment-gateway", "payment-gateway down", 0))
    await h.deliver(_event(2, "checkout-api", "checkout 5xx", 1))
    await h.settle()
    assert (await h.incident(2)).parent_id == 1
    reply = await h.say("incident unlink INC-2")
    assert "no longer linked" in reply["text"]
    await h.settle()
    # Unlinked, it is a root now: it gets its own card in its channel.
    assert any("INC-2" in card_text(c) for c in h.cards_in("checkout"))
    # Evidence arrives again (the title changes): the automatic step leaves it alone.
    await h.deliver(_event(2, "checkout-api", "checkout 5xx again", 3, kind="triggered") .replace(
        b'"EV2-triggered"', b'"EV2-again"'))
    await h.deliver(_event(3, "ledger-db", "ledger down", 1))
    await h.settle()
    assert (await h.incident(2)).parent_id is None
    for i in (1, 2):
        texts = [e["text"] for e in await h.timeline(i)]
        assert any("unlinked" in t for t in texts)
    # INC-1 now hangs under the late root INC-3 (ledger-db): a link to INC-1 joins INC-3's story.
    assert (await h.incident(1)).parent_id == 3
    reply = await h.say("incident link INC-2 INC-1")
    assert "linked under INC-3" in reply["text"]
    linked = await h.incident(2)
    assert linked.link_by == "human" and "INC-1 is itself linked under INC-3" in linked.link_reason
    reply = await h.say("incident link INC-3 INC-2", who="sarah")
    assert "INC-2 is already linked under INC-3: linking INC-3 under it would make a loop" in \
        reply["text"]
    reply = await h.say("incident link INC-2 INC-2")
    assert "cannot be linked to itself" in reply["text"]


async def test_not_related_button_unlinks(harness):
    h = harness
    await h.deliver(_event(1, "payment-gateway", "payment-gateway down", 0))
    await h.deliver(_event(2, "checkout-api", "checkout 5xx", 1))
    await h.settle()
    version = (await h.incident(2)).version
    status, body = await h.send(h.card_click("unlink", {"incident": "INC-2", "version": version}))
    assert status == 200 and "Likely caused by" not in card_text(body["value"])
    assert (await h.incident(2)).no_auto_link


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(sorted(SERVICES)), st.integers(0, 30),
                          st.booleans()), min_size=2, max_size=7))
async def test_linking_keeps_a_forest_of_open_roots(harness, arrivals):
    """Property: whatever arrives, the parent links never form a cycle, and each child's
    parent was open when it was linked (recorded on the child's timeline)."""
    h = harness
    base = len(await h.incidents())
    for n, (service, minute, resolve_first) in enumerate(arrivals, start=base + 1):
        await h.deliver(_event(n, service, f"{service} trouble", minute))
        if resolve_first:
            await h.deliver(_event(n, service, f"{service} trouble", minute + 0.5,
                                  kind="resolved"))
    await h.settle()
    incidents = {i.id: i for i in await h.incidents()}
    for start in incidents:
        seen, cur = set(), incidents[start]
        while cur.parent_id is not None:
            assert cur.id not in seen
            seen.add(cur.id)
            cur = incidents[cur.parent_id]
    for i in incidents.values():
        if i.parent_id and i.link_by == "auto":
            assert any(e["kind"] == "linked" for e in await h.timeline(i.id))


async def test_reports_of_one_problem_in_the_same_second_fold_into_the_first(harness):
    """PagerDuty stamps created_at in whole seconds, so in a storm many incidents start "at
    the same time" and are correlated from a backlog: each duplicate points at the first
    report (the lowest id among equals), never at a later one, and the first report is the
    cascade child of the upstream root."""
    h = harness
    await h.deliver(_event(1, "payment-gateway", "payment-gateway down", 0))
    await h.settle()
    await h.firebell.worker.stop()
    for n in range(2, 8):
        await h.deliver(_event(n, "checkout-api", "checkout 5xx", 1))
    h.firebell.worker.start()  # the backlog is correlated only now
    await h.settle()
    found = {i.id: i for i in await h.incidents()}
    assert all(i.correlated for i in found.values())
    assert (found[2].parent_id, found[2].link_kind) == (1, "cascade")
    assert {n: (found[n].parent_id, found[n].link_kind) for n in range(3, 8)} == \
        {n: (2, "duplicate") for n in range(3, 8)}


async def test_a_symptom_links_to_the_first_open_incident_of_the_most_upstream_service(harness):
    """Upstream candidates are ranked in the database (the first open incident per service):
    with several separate outages open on payment-gateway and on checkout-api, a storefront
    symptom links under the first payment-gateway one."""
    h = harness
    for n, minute in ((1, 0), (2, 1), (3, 2)):
        await h.deliver(_event(n, "payment-gateway", f"payment-gateway problem {'abc'[n - 1]}",
                              minute))
    await h.deliver(_event(4, "checkout-api", "checkout timeouts", 2.5))
    await h.settle()
    await h.deliver(_event(5, "storefront-web", "storefront 5xx", 3))
    await h.settle()
    found = {i.id: i for i in await h.incidents()}
    assert [found[n].parent_id for n in (1, 2, 3)] == [None, None, None]  # three roots
    assert (found[4].parent_id, found[4].link_kind) == (1, "cascade")
    assert (found[5].parent_id, found[5].link_kind) == (1, "cascade")
    assert "payment-gateway" in found[5].link_reason


async def test_a_late_root_leaves_undecided_symptoms_to_their_own_decision(harness):
    """A backlog: the symptoms page first, the root later, nothing decided yet. The root adopts
    only decided incidents; each waiting symptom then decides for itself, so a repeat of a
    symptom folds into that symptom as a duplicate, whatever order the jobs ran in."""
    h = harness
    await h.firebell.worker.stop()
    await h.deliver(_event(1, "checkout-api", "checkout 5xx", 0))
    await h.deliver(_event(2, "checkout-api", "checkout 5xx", 0.5))
    await h.deliver(_event(3, "payment-gateway", "payment-gateway down", 1))
    h.firebell.worker.start()
    await h.settle()
    found = {i.id: i for i in await h.incidents()}
    assert (found[1].parent_id, found[1].link_kind) == (3, "cascade")
    assert (found[2].parent_id, found[2].link_kind) == (1, "duplicate")
    assert found[3].parent_id is None
    assert all(i.correlated for i in found.values())


async def test_correlation_leaves_a_saturated_webhook_door_most_of_the_process(harness):
    """While deliveries queue behind one another, database-only jobs get a short turn and then
    wait nine times as long; once the door is quiet they run freely again."""
    h = harness
    await h.firebell.worker.stop()
    for n in range(1, 21):
        await h.deliver(_event(n, "search-service", f"search shard {n} slow", n))
    saturated = True
    worker = OutboxWorker(h.ctx, h.firebell.clients, door_saturated=lambda: saturated)

    async def decided() -> int:
        return sum(i.correlated for i in await h.incidents())

    assert await worker.run_once() >= 1
    assert await worker.run_once() == 0  # straight after its turn: it waits
    assert 1 <= await decided() < 20
    saturated = False
    while await worker.run_once():  # until no decision is due
        pass
    assert await decided() == 20
    await worker.stop()


async def test_a_burst_of_deliveries_shows_as_a_queueing_door(harness):
    h = harness
    committer = h.firebell.webhooks.committer
    assert not committer.queueing(within=60)
    # A burst bigger than one batch of QUEUEING: deliveries wait behind one another.
    count = committer.QUEUEING * 3
    bodies = [_event(n, "search-service", f"search shard {n} slow", n) for n in range(1, count)]
    await asyncio.gather(*(h.deliver(b) for b in bodies))
    assert committer.queueing(within=60)
    assert not committer.queueing(within=0)


async def test_a_parent_that_loses_a_child_updates_its_card(harness):
    """storefront errors hang under checkout-api's outage; an engineer moves them under an
    unrelated incident by hand. checkout-api's card must stop listing storefront-web as
    impacted: the parent a child leaves is refreshed, not only the one it joins."""
    h = harness
    await h.subscribe("checkout")
    await h.deliver(_event(1, "checkout-api", "checkout 5xx errors", 0))
    await h.deliver(_event(2, "storefront-web", "storefront errors", 1))
    await h.deliver(_event(3, "search-service", "search is down", 1.5))
    await h.settle()
    assert (await h.incident(2)).parent_id == 1
    await h.connector.wait_for(lambda: "Impacted downstream: storefront-web" in
                               card_text(h.cards_in("checkout")[0]))
    reply = await h.say("incident link INC-2 INC-3", who="sarah")  # an incident commander
    assert "linked under INC-3" in reply["text"]
    await h.settle()
    await h.connector.wait_for(lambda: "storefront-web" not in
                               card_text(h.cards_in("checkout")[0]), timeout=10)


async def test_a_late_decision_still_sees_an_upstream_outage_resolved_since(harness):
    """A backlog: the checkout symptom is decided only after payment-gateway's outage was
    resolved. The decision sees the world as it was when the symptom started (the
    "resolved since" half of the per-service look-up), so it still folds under the outage."""
    h = harness
    await h.firebell.worker.stop()
    await h.deliver(_event(1, "payment-gateway", "payment-gateway down", 0))
    await h.deliver(_event(2, "checkout-api", "checkout 5xx", 1))
    await h.deliver(_event(1, "payment-gateway", "payment-gateway down", 3, kind="resolved"))
    h.firebell.worker.start()
    await h.settle()
    root, symptom = await h.incident(1), await h.incident(2)
    assert root.status == "resolved" and root.parent_id is None
    assert (symptom.parent_id, symptom.link_kind) == (1, "cascade")


async def test_candidates_cover_every_upstream_service_of_a_wide_graph(harness):
    """More upstream services than one statement takes (SQLite: 500 terms in a compound
    SELECT): the look-up runs in chunks and still finds the first open incident, or the first
    resolved since, on every one of them, and nothing outside the window."""
    from storage import correlation as queries
    from storage import incidents as store
    h, at = harness, T0 + timedelta(minutes=30)
    services = [f"wide-{n:03d}" for n in range(queries.SERVICES_PER_STATEMENT * 2 + 17)]
    expected = {}
    async with h.ctx.db.write() as conn:
        for n, service in enumerate(services):
            for minute in (40 + n % 3, 20, 25):  # the one at minute 20 is the first
                found = await store.insert(conn, {
                    "source": "test", "external_id": f"{service}-{minute}", "title": "x",
                    "service": service, "team": None, "level": "minor", "status": "open",
                    "triggered_at": T0 + timedelta(minutes=minute), "fingerprint": "f"}, T0)
                if minute == 20:
                    expected[service] = found.id
            if n % 2:  # resolved after the new incident started: still a candidate
                await store.update_fields(conn, await store.get(conn, expected[service]), {
                    "status": "resolved", "resolved_at": at + timedelta(minutes=1)}, at)
        await store.insert(conn, {  # outside the window
            "source": "test", "external_id": "early", "title": "x", "service": services[0],
            "team": None, "level": "minor", "status": "open", "triggered_at": T0,
            "fingerprint": "f"}, T0)
        _, upstream = await queries.correlation_candidates(
            conn, fingerprint="g", services=services, since=T0 + timedelta(minutes=10),
            until=at + timedelta(minutes=5), exclude=0, at=at)
    first: dict[str, int] = {}
    for incident in upstream:  # sorted by start: per service, the first open and/or resolved
        first.setdefault(incident.service, incident.id)
    assert first == expected
    assert T0 not in {i.triggered_at for i in upstream}


async def test_a_root_search_document_does_not_grow_with_each_linked_child(harness):
    """A storm root gains thousands of "INC-n linked as duplicate" lines; re-indexing its
    whole document for each made correlation quadratic. The children stay findable: their own
    timelines say what they are linked to."""
    from storage import search
    h = harness
    for n in range(1, 4):
        await h.deliver(_event(n, "order-db", "order-db: replication lag 47s", n))
    await h.settle()
    root = await h.incident(1)
    assert [(await h.incident(n)).parent_id for n in (2, 3)] == [1, 1]
    assert any(e["kind"] == "child_linked" for e in await h.timeline(1))
    async with h.ctx.db.read() as conn:
        found = await search.search(conn, f"fingerprint {root.fingerprint[:8]}")
    assert sorted(found) == [2, 3]  # the children's own "linked to INC-1" lines, not the root
