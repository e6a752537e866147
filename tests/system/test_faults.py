"""Under fire: Firebell killed mid-storm, outside systems failing, the database going away.
What was acknowledged is never lost, every side effect happens once, and Firebell recovers by
itself. Each test runs on SQLite and, with DATABASE_URL set, on PostgreSQL (the database-proxy
test only there)."""
from __future__ import annotations

import asyncio
import re
import signal
import time
from collections import Counter

import aiohttp
import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import make_url

from app import Integrations
from incidents.catalog import load_catalog
from integrations.teams_connector import ConnectorCredentials, TeamsConnector
from scheduler.worker import RetryPolicy
from storage.db import Database, DatabaseUnavailable
from storage.schema import card_messages, inbound_events, incidents, outbox, timeline
from tests.conftest import CATALOG, USING_POSTGRES
from tests.fakes.tcp_proxy import TcpProxy
from tests.harness import CHANNELS, SECRET, Harness, card_text, make_settings
from tests.processes import (FirebellProcess, OutsideWorld, PagerDutyDelivery, deliver,
                             deliver_all, pagerduty_event, plan_storm, subscribe_channels,
                             wait_until_drained)

CATALOG_DATA = load_catalog(CATALOG)
REF = re.compile(r"^INC-(\d+) ")


# -- kill -9 ------------------------------------------------------------------------------------

@pytest.mark.slow
async def test_kill_9_mid_storm_loses_nothing_acknowledged_and_posts_each_card_once(
        database_url, connector, tmp_path):
    connector.enforce_rate_limits()  # Teams' per-conversation limits, answered with 429
    async with OutsideWorld(CATALOG_DATA) as world:
        app = FirebellProcess(database_url, tmp_path,
                              env={"FIREBELL_OUTBOX_LEASE_SECONDS": "15", **world.env})
        app.start()
        db = Database(database_url)
        try:
            await app.wait_ready()
            await subscribe_channels(app.url, connector, [*CATALOG_DATA.teams, "default"])
            plan = plan_storm(CATALOG_DATA, 1000)
            kill_after = 400
            acked_first_pass: list = []
            cards_at_kill = 0
            posts_at_kill: list = []

            def on_answer(delivery, outcome):
                nonlocal cards_at_kill
                if isinstance(outcome, int) and 200 <= outcome < 300:
                    acked_first_pass.append(delivery)
                    if len(acked_first_pass) == kill_after:
                        app.proc.send_signal(signal.SIGKILL)
                        cards_at_kill = len(_posts_per_card(connector))

            async with aiohttp.ClientSession() as http:
                await deliver_all(http, [(app.url, d) for d in plan], on_answer=on_answer)
            assert app.proc.wait(timeout=10) == -signal.SIGKILL
            posts_at_kill = list(connector.posts)  # everything the dead process got posted
            failed = [d for d in plan if not d.acknowledged]
            assert len(acked_first_pass) >= kill_after and failed, "the kill came too late"

            # Restarted on the same database: everything acknowledged before the kill is there.
            in_flight = await _posted_but_unrecorded(db, posts_at_kill)
            app.start()
            await app.wait_ready()
            stored = await _event_keys(db)
            lost = [d.event_id for d in acked_first_pass if f"pd3:{d.event_id}" not in stored]
            assert lost == [], f"{len(lost)} acknowledged deliveries lost, e.g. {lost[:5]}"
            committed_unanswered = sum(f"pd3:{d.event_id}" in stored for d in failed)

            # PagerDuty redelivers what got no 2xx: the same bytes, the same X-Webhook-Id.
            async with aiohttp.ClientSession() as http:
                await deliver_all(http, [(app.url, d) for d in failed])
            assert [d for d in plan if not d.acknowledged] == []
            assert await _event_keys(db) >= {f"pd3:{d.event_id}" for d in plan}
            drained = await wait_until_drained(db, 45, procs=[app])

            async with db.read() as conn:
                rows = (await conn.execute(select(incidents))).mappings().all()
                entries = (await conn.execute(select(timeline.c.incident_id, timeline.c.kind,
                                                     timeline.c.data))).mappings().all()
                cards = (await conn.execute(select(card_messages))).mappings().all()
                parked = (await conn.execute(select(outbox.c.kind, outbox.c.last_error)
                                             .where(outbox.c.status == "failed"))).all()
            assert len(rows) == len({d.external_id for d in plan}) == 600
            assert {r["external_id"] for r in rows} == {d.external_id for d in plan}
            assert all(r["correlated"] for r in rows), "an incident was never correlated"
            assert parked == []
            # Each event handled once: one timeline entry per event id.
            per_event = Counter((e["data"] or {}).get("event_id") for e in entries
                                if (e["data"] or {}).get("event_id"))
            assert per_event and max(per_event.values()) == 1
            assert sum(e["kind"] == "triggered" for e in entries) == 600

            posted = _posts_per_card(connector)
            roots = [r for r in rows if r["parent_id"] is None]
            # Teams accepted these posts but Firebell died before recording them: the Bot
            # Connector has no idempotency key and no way to list messages, so the retry posts
            # them again (the documented limitation, see test_a_lost_post_answer_...). Every
            # other card is posted exactly once.
            doubles = {k: n for k, n in posted.items() if n > 1}
            assert all(n == 2 and k in in_flight for k, n in doubles.items()), (doubles, in_flight)
            for card in cards:  # every card Firebell recorded is exactly one message in Teams
                assert card["activity_id"], f"INC-{card['incident_id']}: card never posted"
                key = (card["incident_id"], card["conversation_id"])
                assert posted[key] == (2 if key in doubles else 1)
            assert set(posted) == {(c["incident_id"], c["conversation_id"]) for c in cards}
            for root in roots:  # every root has its card in its team's channel
                assert (root["id"], f"19:{root['team']}-incidents@thread.tacv2") in posted
            # ... and its JIRA postmortem task and war room, once.
            tasks, rooms = world.postmortem_tasks(), world.war_rooms()
            assert tasks and max(tasks.values()) == 1, tasks
            assert rooms and max(rooms.values()) == 1, rooms
            levels = CATALOG_DATA.levels
            for root in roots:
                ref = f"INC-{root['id']}"
                assert tasks[ref] == (1 if levels.needs_postmortem_for(root["level"]) else 0), ref
                assert rooms[ref] == (1 if levels.needs_war_room(root["level"]) else 0), ref
            print(f"\nkill -9: 1000 sent, {len(acked_first_pass)} acknowledged before the kill "
                  f"(all found), {len(failed)} re-sent ({committed_unanswered} of them committed "
                  f"but unanswered), {len(roots)} roots, {len(posted)} card posts "
                  f"({cards_at_kill} before the kill), {len(doubles)} posted again because the kill "
                  f"came between Teams' answer and Firebell's record of it, "
                  f"{sum(tasks.values())} JIRA tasks and "
                  f"{sum(rooms.values())} war rooms (0 doubles), "
                  f"drained in {drained:.1f}s, {connector.throttled} Teams 429s")
        finally:
            app.kill()
            await db.close()


async def _event_keys(db: Database) -> set[str]:
    async with db.read() as conn:
        return set((await conn.execute(select(inbound_events.c.key))).scalars())


async def _posted_but_unrecorded(db: Database, posts: list) -> set[tuple[int, str]]:
    """Card posts Teams had accepted at the kill whose message id Firebell had not stored."""
    async with db.read() as conn:
        recorded = {r.activity_id for r in await conn.execute(select(card_messages.c.activity_id))}
    found = set()
    for post in posts:
        summary = post["activity"].get("summary") or ""
        ref = REF.match(summary)
        if ref and post["activity"].get("attachments") and post["id"] not in recorded:
            found.add((int(ref.group(1)), post["conversation_id"]))
    return found


def _posts_per_card(connector) -> Counter:
    """New messages carrying an incident card, per (incident id, conversation)."""
    counts: Counter = Counter()
    for post in connector.posts:
        summary = post["activity"].get("summary") or ""
        found = REF.match(summary)
        if found and post["activity"].get("attachments"):
            counts[(int(found.group(1)), post["conversation_id"])] += 1
    return counts


# -- Teams answering 429, 503 and not at all ---------------------------------------------------

PAYMENTS, DATA = CHANNELS["payments"], CHANNELS["general"]
PG_SVC = CATALOG_DATA.service("payment-gateway")
CHK_SVC = CATALOG_DATA.service("checkout-api")
LEDGER_SVC = CATALOG_DATA.service("ledger-db")


def _pd(event_type: str, pd_id: str, svc, title: str, number: int, **kw) -> PagerDutyDelivery:
    return pagerduty_event(event_type, pd_id, svc.name, svc.pagerduty_service_id, title,
                           number=number, **kw)


async def _send(h: Harness, delivery: PagerDutyDelivery) -> int | str:
    return await deliver(h.http, h.url, delivery, secret=SECRET)


async def _patient(database_url, connector, *, teams_timeout: float = 1.0,
                   **changes) -> Harness:
    """Firebell in process with many quick retries (an outage of seconds stands for one of
    minutes) and a short timeout on Bot Connector calls (10 s in production)."""
    settings = make_settings(database_url, retry=RetryPolicy(max_attempts=50, base_delay=0.2,
                                                             max_delay=1.0), **changes)
    h = await Harness(settings, connector).start()
    await h.firebell.clients.teams.close()
    h.firebell.clients.teams = TeamsConnector(ConnectorCredentials(), timeout=teams_timeout)
    return h


async def _settle(h: Harness, timeout: float) -> None:
    """Harness.settle, saying which jobs are still busy if it does not."""
    try:
        await h.settle(timeout=timeout)
    except TimeoutError:
        async with h.ctx.db.read() as conn:
            busy = (await conn.execute(select(
                outbox.c.id, outbox.c.kind, outbox.c.status, outbox.c.attempts, outbox.c.run_after,
                outbox.c.claimed_until, outbox.c.last_error).where(
                outbox.c.status.in_(["pending", "running"])).limit(10))).all()
        raise TimeoutError(f"outbox busy after {timeout}s: {busy}") from None


async def _metric(h: Harness, name: str, **labels: str) -> float:
    async with h.http.get(f"{h.url}/metrics") as resp:
        text = await resp.text()
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    found = re.search(rf"^{name}\{{{want}\}} (\S+)$", text, re.M)
    return float(found.group(1)) if found else 0.0


async def test_teams_429_503_and_timeouts_are_retried_coalesced_and_land_once(
        database_url, connector):
    h = await _patient(database_url, connector)
    c = connector
    try:
        await h.subscribe("payments")
        # The card's post: 429 with Retry-After: 2, then 503, then through.
        c.fail_next(1, status=429, retry_after=2, kind="post")
        c.fail_next(1, status=503, kind="post")
        root = _pd("incident.triggered", "PROOT1", PG_SVC, "payment-gateway: 0/6 pods ready, down",
                   4000)
        assert await _send(h, root) == 200
        await c.wait_for(lambda: _posts_per_card(c), timeout=15)
        attempts = c.requests_of("post")
        assert [r.status for r in attempts] == [429, 503, 200]
        assert attempts[1].time - attempts[0].time >= 2.0  # Retry-After honoured

        # Its updates: two time out, four get 503, while 20 children and an ack arrive.
        earlier = len(c.requests_of("update"))
        c.hang_next(2, seconds=1.3, kind="update")
        c.fail_next(4, status=503, kind="update")
        children = [_pd("incident.triggered", f"PCHILD{i}", CHK_SVC,
                        f"checkout-api: HTTP 5xx error rate {10 + i}% on POST /v1/checkout",
                        4100 + i)
                    for i in range(20)]
        for child in children:
            assert await _send(h, child) == 200
        ack = _pd("incident.acknowledged", "PROOT1", PG_SVC,
                  "payment-gateway: 0/6 pods ready, down", 4000, agent="Sarah Kim")
        assert await _send(h, ack) == 200
        await c.wait_for(lambda: sum(r.status == 503 for r in c.requests_of("update")) == 4,
                         timeout=20)
        await _settle(h, 30)

        async with h.ctx.db.read() as conn:
            linked = (await conn.execute(select(incidents.c.id).where(
                incidents.c.parent_id.is_not(None)))).scalars().all()
        assert len(linked) == 20
        assert _posts_per_card(c) == Counter({(1, PAYMENTS): 1})  # one card, however it went
        updates = c.requests_of("update")[earlier:]
        ok = [r for r in updates if r.status == 200][2:]  # the two hung ones were served late
        assert [r.status for r in updates[2:6]] == [503] * 4
        # 21 changes during the trouble became a handful of updates, and the card is current.
        assert 1 <= len(ok) <= 6, [r.status for r in updates]
        text = card_text(h.cards_in("payments")[0])
        assert "Acknowledged" in text and "Sarah Kim" in text and "checkout-api" in text
        assert ok[-1].time > max(r.time for r in updates[:2]) + 1.3  # newest content landed last
        assert await _metric(h, "firebell_outbox_retries_total", kind="post_card") == 2
        assert await _metric(h, "firebell_outbox_retries_total", kind="update_card") == 6
        print(f"\nTeams: post 429→503→200 ({attempts[1].time - attempts[0].time:.1f}s after "
              f"the 429), 2 update timeouts + 4×503, 21 changes → {len(ok)} updates, 1 card")
    finally:
        await h.stop()


@pytest.mark.xfail(strict=True, reason=(
    "The Bot Connector has no idempotency key and Teams cannot be asked whether a post landed: "
    "when Teams performs a post but its answer is lost (connection cut, or a timeout that Teams "
    "still completes), post_card has no activity id and posts the card again. Needs a design "
    "decision (e.g. reconcile through Graph channel messages before re-posting, or mark the "
    "first post's outcome as unknown and delete the orphan once found)."))
async def test_a_card_post_whose_answer_is_lost_is_not_posted_twice(database_url, connector):
    h = await _patient(database_url, connector)
    try:
        await h.subscribe("payments")
        connector.lose_answer_next(1, kind="post")
        root = _pd("incident.triggered", "PROOT2", PG_SVC, "payment-gateway: 0/6 pods ready, down",
                   4200)
        assert await _send(h, root) == 200
        await connector.wait_for(lambda: _posts_per_card(connector), timeout=10)
        await h.settle(timeout=15)
        assert _posts_per_card(connector) == Counter({(1, PAYMENTS): 1})
    finally:
        await h.stop()


# -- JIRA and Graph down for a while -------------------------------------------------------------

async def test_jira_and_graph_down_then_back_show_pending_and_deliver_once(database_url,
                                                                          connector):
    async with OutsideWorld(CATALOG_DATA) as world:
        g, j = world.graph, world.jira
        integrations = Integrations(
            graph_client_id=g.client_id, graph_client_secret=g.client_secret,
            graph_tenant_id=g.tenant_id, graph_base_url=g.graph_url,
            azure_authority_host=g.base_url, jira_url=j.base_url, jira_email=j.email,
            jira_api_token=j.api_token)
        h = await _patient(database_url, connector, integrations=integrations)
        try:
            await h.subscribe("payments")
            await j.go_down()
            await g.go_down()
            title = "payment-gateway: 0/6 pods ready, down"
            assert await _send(h, _pd("incident.triggered", "PROOT3", PG_SVC, title, 4300)) == 200
            for i in range(5):
                assert await _send(h, _pd("incident.triggered", f"PCHK3{i}", CHK_SVC,
                                          f"checkout-api: HTTP 5xx error rate {20 + i}%", 4310 + i)
                                   ) == 200
            assert await _send(h, _pd("incident.acknowledged", "PROOT3", PG_SVC, title, 4300,
                                      agent="Sarah Kim")) == 200

            def card() -> str:
                cards = h.cards_in("payments")
                return card_text(cards[0]) if cards else ""

            # Visible while pending: the card says what failed and when it is tried again (in
            # the reader's zone: a TIME function).
            pending = re.compile(r"failed \(.*\), retrying$")
            await connector.wait_for(lambda: all(
                any(line.startswith(system) and pending.search(line)
                    for line in card().splitlines()) for system in ("JIRA", "War room")),
                timeout=15)
            assert "Next try {{DATE(" in card() and "UTC" not in card()
            await asyncio.sleep(5)  # "minutes" of outage, compressed
            async with h.ctx.db.read() as conn:
                jobs = (await conn.execute(select(outbox.c.kind, outbox.c.status, outbox.c.attempts)
                                           .where(outbox.c.kind.in_(["jira_postmortem",
                                                                     "war_room"])))).all()
            assert sorted(k for k, *_ in jobs) == ["jira_postmortem", "war_room"]
            assert all(status in ("pending", "running") and attempts >= 4
                       for _, status, attempts in jobs), jobs  # retried, never given up
            async with h.ctx.db.read() as conn:
                first_failure = (await conn.execute(select(timeline.c.at).where(
                    timeline.c.kind == "triggered").order_by(timeline.c.id))).scalars().first()
            await j.come_back()
            await g.come_back()
            outage = (h.ctx.now() - first_failure).total_seconds()
            await _settle(h, 30)

            tasks, rooms = world.postmortem_tasks(), world.war_rooms()
            assert tasks == Counter({"INC-1": 1}) and rooms == Counter({"INC-1": 1})
            assert len(j.requests_of("create")) == 1 and \
                [r.status for r in g.requests_of("create_chat")] == [201]
            chat = next(iter(g.chats))
            members = {g.find_user(uid)["userPrincipalName"] for uid in g.member_ids(chat)}
            assert "priya.raman@shopfront.example" in members  # the children's people joined
            text = card()
            assert "failed" not in text and "retrying" not in text
            key = next(iter(j.issues))
            assert key in text and "War room" in text
            assert connector.messages(chat)  # the card landed in the war room, once
            assert len(connector.messages(chat)) == 1
            print(f"\nJIRA+Graph: down {outage:.1f}s with "
                  f"{[a for *_, a in jobs]} attempts, then 1 task ({key}) and 1 war room")
        finally:
            await h.stop()


# -- the database going away ---------------------------------------------------------------------

@pytest.mark.skipif(not USING_POSTGRES, reason=(
    "PostgreSQL only: the database is made unreachable by cutting a TCP proxy between Firebell "
    "and its server; SQLite is a file inside the process and cannot become unreachable"))
async def test_database_unreachable_webhooks_answer_503_and_firebell_recovers(database_url,
                                                                             connector):
    real = make_url(database_url)
    async with TcpProxy(real.host, real.port) as proxy:
        proxied = real.set(host="127.0.0.1", port=proxy.port).render_as_string(
            hide_password=False)
        h = await _patient(proxied, connector, teams_timeout=10.0)
        try:
            await h.subscribe("payments")
            await h.subscribe("data-platform", channel="general")
            deliveries: list[tuple[float, float, PagerDutyDelivery]] = []  # (sent, answered, d)
            stop = asyncio.Event()

            async def pagerduty(sender: int) -> None:  # a steady stream of new incidents
                n = 0
                while not stop.is_set():
                    n += 1
                    d = _pd("incident.triggered", f"PDB{sender}x{n}", CHK_SVC,
                            f"checkout-api: HTTP 5xx error rate {n}% (sender {sender})",
                            6000 + 100 * sender + n)
                    sent = time.monotonic()
                    await deliver(h.http, h.url, d, secret=SECRET, timeout=5)
                    deliveries.append((sent, time.monotonic(), d))
                    await asyncio.sleep(0.05)

            async def readyz() -> int:
                async with h.http.get(f"{h.url}/readyz") as resp:
                    return resp.status

            title = "payment-gateway: 0/6 pods ready, down"
            first = _pd("incident.triggered", "PDBROOT1", PG_SVC, title, 5998)
            assert await _send(h, first) == 200
            await connector.wait_for(lambda: _posts_per_card(connector), timeout=10)
            senders = [asyncio.create_task(pagerduty(i)) for i in range(3)]
            await asyncio.sleep(0.5)
            # Two calls to Teams are under way when the database goes, and are answered while it
            # is away: a card update (the first root was acknowledged; the senders' cascade
            # children update that card too) and the second root's card post.
            connector.hold_next(1, kind="update")
            connector.hold_next(1, kind="post")
            assert await _send(h, _pd("incident.acknowledged", "PDBROOT1", PG_SVC, title, 5998,
                                      agent="Sarah Kim")) == 200
            second = _pd("incident.triggered", "PDBROOT2", LEDGER_SVC,
                         "ledger-db: 0/3 pods ready, down", 5999)
            assert await _send(h, second) == 200

            def held():
                return [r for r in connector.requests if r.fault == "hold"]
            await connector.wait_for(lambda: len(held()) == 2, timeout=10, interval=0.005)
            await proxy.drop()
            dropped, dropped_wall = time.monotonic(), time.time()
            await asyncio.sleep(1.0)
            connector.release_held()
            assert await readyz() == 503
            async with h.http.get(f"{h.url}/metrics") as resp:
                assert resp.status == 200  # metrics still answer
            await asyncio.sleep(2.0)
            await proxy.restore()
            restored, restored_wall = time.monotonic(), time.time()
            await asyncio.sleep(2.0)
            stop.set()
            await asyncio.gather(*senders)
            assert await readyz() == 200  # the same process: no restart

            outcomes = Counter(d.statuses[-1] for *_, d in deliveries)
            assert set(outcomes) <= {200, 503}, outcomes  # never a 500, never a timeout
            while_down = [d for s, a, d in deliveries if s > dropped + 0.2 and a < restored]
            assert while_down and all(d.statuses == [503] for d in while_down)
            after = [d for s, a, d in deliveries if s > restored + 1.0]
            assert after and all(d.statuses == [200] for d in after)
            # PagerDuty redelivers the refused ones; nothing acknowledged is lost.
            refused = [d for *_, d in deliveries if not d.acknowledged]
            for d in refused:
                assert await _send(h, d) == 200
            # A change after the outage reaches the first root's card at once (its update
            # that finished during the outage is not holding the card for a lease).
            assert await _send(h, _pd("incident.resolved", "PDBROOT1", PG_SVC, title,
                                      5998)) == 200
            await _settle(h, 20)
            async with h.ctx.db.read() as conn:
                stored = set((await conn.execute(select(inbound_events.c.key))).scalars())
                count = len((await conn.execute(select(incidents.c.id))).all())
                ids = dict((await conn.execute(
                    select(incidents.c.external_id, incidents.c.id).where(
                        incidents.c.external_id.in_(["PDBROOT1", "PDBROOT2"])))).all())
            assert {f"pd3:{d.event_id}" for *_, d in deliveries} <= stored
            assert count == len(deliveries) + 2
            # The calls in flight when the database went were answered while it was away ...
            in_flight = held()
            assert sorted(r.kind for r in in_flight) == ["post", "update"]
            assert all(r.time < dropped_wall for r in in_flight)
            assert all(r.status == 200 for r in in_flight)
            # ... and each did its work once: one card per root, and the first card current.
            assert _posts_per_card(connector) == Counter({(ids["PDBROOT1"], PAYMENTS): 1,
                                                          (ids["PDBROOT2"], DATA): 1})
            assert "Resolved" in card_text(h.cards_in("payments")[0])
            print(f"\ndatabase down {restored - dropped:.1f}s: {len(deliveries)} deliveries, "
                  f"{len(while_down)} answered 503 while down (all), {outcomes[503]} 503 in all, "
                  f"{len(refused)} redelivered and stored, none lost; /readyz 503 → 200; "
                  f"{proxy.resets} connections cut")
        finally:
            await h.stop()


@pytest.mark.skipif(not USING_POSTGRES, reason=(
    "PostgreSQL only: the connection is cut by a TCP proxy between Firebell and its server; "
    "SQLite has no connection to lose"))
async def test_a_connection_cut_mid_statement_is_database_unavailable(database_url):
    """What every caller relies on to answer 503 and retry rather than fail: a statement whose
    connection dies under it raises DatabaseUnavailable (the driver says "connection was closed
    in the middle of operation", wrapped by SQLAlchemy's adapter)."""
    real = make_url(database_url)
    async with TcpProxy(real.host, real.port) as proxy:
        db = Database(real.set(host="127.0.0.1", port=proxy.port).render_as_string(
            hide_password=False))
        try:
            with pytest.raises(DatabaseUnavailable):
                async with db.write() as conn:
                    await conn.execute(text("SELECT 1"))
                    await proxy.hold()
                    statement = asyncio.create_task(conn.execute(text("SELECT 2")))
                    await asyncio.sleep(0.3)
                    await proxy.drop()
                    await statement
            await proxy.restore()
            async with db.write() as conn:  # and the next one gets a fresh connection
                assert (await conn.execute(text("SELECT 3"))).scalar() == 3
        finally:
            await db.close()
