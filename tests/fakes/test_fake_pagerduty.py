"""Self-test of FakePagerDuty with httpx as the client and a local aiohttp
server as the webhook receiver (everything on 127.0.0.1)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import socket
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from aiohttp import web

from tests.fakes.pagerduty import ACCEPT_V2, FakePagerDuty

ACK = {"incident": {"type": "incident_reference", "status": "acknowledged"}}
RESOLVE = {"incident": {"type": "incident_reference", "status": "resolved"}}
NOW = datetime.now(timezone.utc).replace(microsecond=0)


@dataclass
class World:
    """A seeded fake: two users on call, three services, one incident."""

    pd: FakePagerDuty
    http: httpx.AsyncClient
    ana: str
    bo: str
    policy: str
    schedule: str
    checkout: str
    database: str
    network: str
    incident: str


@pytest.fixture
async def world() -> AsyncIterator[World]:
    async with FakePagerDuty() as pd:
        ana = pd.add_user("Ana Lopez", "ana@example.com")
        bo = pd.add_user("Bo Berg", "bo@example.com")
        policy = pd.add_escalation_policy("Ops")
        schedule = pd.add_schedule("Ops primary")
        pd.add_oncall(ana, policy, 1, schedule, NOW - timedelta(hours=2), NOW + timedelta(hours=6))
        pd.add_oncall(bo, policy, 1, schedule, NOW + timedelta(hours=6), NOW + timedelta(hours=30))
        pd.add_oncall(bo, policy, 2)  # always on call at level 2, no schedule
        checkout = pd.add_service("Checkout", escalation_policy_id=policy)
        database = pd.add_service("Database")
        network = pd.add_service("Network")
        pd.add_dependency(supporting_service_id=database, dependent_service_id=checkout)
        pd.add_dependency(supporting_service_id=network, dependent_service_id=database)
        incident = pd.add_incident("Checkout errors", checkout, assignee_ids=(ana,))
        headers = {"Authorization": f"Token token={pd.token}", "Accept": ACCEPT_V2}
        async with httpx.AsyncClient(base_url=pd.url, headers=headers, timeout=5) as http:
            yield World(pd, http, ana, bo, policy, schedule, checkout, database, network, incident)


@dataclass
class Receiver:
    """Firebell's side of the webhook: records posts, answers queued statuses (else 202)."""

    url: str = ""
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    state = Receiver()

    async def handle(request: web.Request) -> web.Response:
        state.received.append((dict(request.headers), await request.read()))
        return web.Response(status=state.statuses.pop(0) if state.statuses else 202)

    app = web.Application()
    app.router.add_post("/pagerduty", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    state.url = f"http://127.0.0.1:{runner.addresses[0][1]}/pagerduty"
    yield state
    await runner.cleanup()


def error(response: httpx.Response) -> tuple[int, str, int]:
    body = response.json()["error"]
    return response.status_code, body["message"], body["code"]


# -- incident updates -------------------------------------------------------------


async def test_acknowledge_with_required_headers(world: World) -> None:
    response = await world.http.put(f"/incidents/{world.incident}", json=ACK, headers={"From": "ana@example.com"})
    assert response.status_code == 200
    incident = response.json()["incident"]
    assert incident["status"] == "acknowledged"
    assert incident["acknowledgements"][0]["acknowledger"]["id"] == world.ana
    assert incident["last_status_change_by"]["id"] == world.ana
    assert world.pd.incidents[world.incident].status == "acknowledged"

    sent = world.pd.requests_for("update_incident")[0]
    assert sent.headers["Authorization"] == f"Token token={world.pd.token}"
    assert sent.headers["Accept"] == ACCEPT_V2
    assert sent.headers["From"] == "ana@example.com"
    assert sent.json == ACK


async def test_header_and_auth_errors(world: World) -> None:
    url = f"/incidents/{world.incident}"
    assert error(await world.http.put(url, json=ACK)) == (400, "Invalid Input Provided", 2001)
    assert error(await world.http.put(url, json=ACK, headers={"From": "nobody@example.com"})) == (
        400, "Requester User Not Found", 1008)
    bad_token = {"Authorization": "Token token=wrong", "From": "ana@example.com"}
    assert error(await world.http.put(url, json=ACK, headers=bad_token)) == (401, "Authentication failed", 2006)
    bearer = {"Authorization": f"Bearer {world.pd.token}", "From": "ana@example.com"}
    assert (await world.http.put(url, json=ACK, headers=bearer)).status_code == 401
    world.pd.add_token("read-only", read_only=True)
    read_only = {"Authorization": "Token token=read-only", "From": "ana@example.com"}
    assert error(await world.http.put(url, json=ACK, headers=read_only)) == (403, "Access Denied", 2010)
    assert world.pd.incidents[world.incident].status == "triggered"

    # A user token acts as its user: no From needed.
    world.pd.add_token("bo-token", kind="user", user_id=world.bo)
    response = await world.http.put(url, json=ACK, headers={"Authorization": "Token token=bo-token"})
    assert response.json()["incident"]["acknowledgements"][0]["acknowledger"]["id"] == world.bo


async def test_resolve_then_updates_are_refused(world: World) -> None:
    url, who = f"/incidents/{world.incident}", {"From": "bo@example.com"}
    resolved = await world.http.put(url, json=RESOLVE, headers=who)
    assert resolved.json()["incident"]["status"] == "resolved"
    assert resolved.json()["incident"]["assignments"] == []
    assert error(await world.http.put(url, json=ACK, headers=who)) == (400, "Incident Already Resolved", 1001)
    bad_status = {"incident": {"type": "incident_reference", "status": "snoozed"}}
    assert error(await world.http.put(url, json=bad_status, headers=who))[2] == 1003
    assert error(await world.http.put("/incidents/PNOPE", json=ACK, headers=who)) == (404, "Not Found", 2100)
    assert (await world.http.get(url)).json()["incident"]["status"] == "resolved"


# -- webhooks ------------------------------------------------------------------------


async def test_status_changes_are_sent_back_as_signed_v3_webhooks(world: World, receiver: Receiver) -> None:
    world.pd.enable_webhooks(receiver.url, secret="s3cret")
    url, who = f"/incidents/{world.incident}", {"From": "ana@example.com"}
    await world.http.put(url, json=ACK, headers=who)
    await world.http.put(url, json=ACK, headers=who)  # no change, no webhook
    await world.http.put(url, json=RESOLVE, headers=who)
    deliveries = await world.pd.wait_for_webhooks(2)

    assert [d.event_type for d in deliveries] == ["incident.acknowledged", "incident.resolved"]
    assert [d.attempts for d in deliveries] == [[202], [202]]
    headers, body = receiver.received[0]
    expected = "v1=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert headers["X-PagerDuty-Signature"] == expected
    assert uuid.UUID(headers["X-Webhook-Id"])
    assert headers["User-Agent"] == "PagerDuty-Webhook/V3.0"
    assert headers["Content-Type"].startswith("application/json")
    event = deliveries[0].payload["event"]
    assert (event["event_type"], event["resource_type"]) == ("incident.acknowledged", "incident")
    assert event["agent"] == {**event["agent"], "id": world.ana, "type": "user_reference"}
    assert event["data"]["id"] == world.incident and event["data"]["status"] == "acknowledged"


async def test_webhook_retries_keep_the_webhook_id_and_4xx_is_dropped(world: World, receiver: Receiver) -> None:
    world.pd.enable_webhooks(receiver.url, secret="s", retry_delays=(0.05, 0.05))
    receiver.statuses = [503, 429, 204]
    world.pd.set_incident_status(world.incident, "acknowledged", by_user_id=world.bo)  # as done in the PD app
    (delivery,) = await world.pd.wait_for_webhooks(1)
    assert delivery.attempts == [503, 429, 204] and delivery.delivered
    assert len({h["X-Webhook-Id"] for h, _ in receiver.received}) == 1

    receiver.statuses = [410]
    world.pd.set_incident_status(world.incident, "resolved")
    await world.pd.wait_for_webhooks(2)
    assert world.pd.webhook_deliveries[1].attempts == [410]
    assert not world.pd.webhook_deliveries[1].delivered


async def test_webhook_to_a_dead_receiver_records_connection_errors(world: World) -> None:
    with socket.socket() as probe:  # a port nobody listens on once the probe is closed
        probe.bind(("127.0.0.1", 0))
        dead_port = probe.getsockname()[1]
    world.pd.enable_webhooks(f"http://127.0.0.1:{dead_port}/nowhere", secret="s")
    world.pd.set_incident_status(world.incident, "acknowledged")
    (delivery,) = await world.pd.wait_for_webhooks(1)
    assert "ClientConnectorError" in str(delivery.attempts[0]) and not delivery.delivered


# -- on-calls ------------------------------------------------------------------------


async def test_oncalls_now_with_user_references_or_full_users(world: World) -> None:
    response = await world.http.get("/oncalls", params={"escalation_policy_ids[]": world.policy})
    body = response.json()
    assert (body["limit"], body["offset"], body["more"], body["total"]) == (25, 0, False, None)
    users = [(o["escalation_level"], o["user"]["id"]) for o in body["oncalls"]]
    assert users == [(1, world.ana), (2, world.bo)]
    reference = body["oncalls"][0]["user"]
    assert reference["type"] == "user_reference" and "email" not in reference
    assert body["oncalls"][1]["schedule"] is None and body["oncalls"][1]["end"] is None

    with_users = await world.http.get("/oncalls", params={"schedule_ids[]": world.schedule, "include[]": "users"})
    (oncall,) = with_users.json()["oncalls"]
    assert oncall["user"]["type"] == "user" and oncall["user"]["email"] == "ana@example.com"
    assert oncall["schedule"]["id"] == world.schedule and oncall["escalation_level"] == 1


async def test_oncalls_time_window_earliest_and_paging(world: World) -> None:
    later_shift = (NOW + timedelta(hours=30), NOW + timedelta(hours=54))
    world.pd.add_oncall(world.ana, world.policy, 1, world.schedule, *later_shift)
    window = {"since": (NOW - timedelta(hours=1)).isoformat(), "until": (NOW + timedelta(days=2)).isoformat()}
    everything = (await world.http.get("/oncalls", params=window)).json()["oncalls"]
    assert [(o["escalation_level"], o["user"]["id"]) for o in everything] == [
        (1, world.ana), (1, world.bo), (1, world.ana), (2, world.bo)]
    earliest = (await world.http.get("/oncalls", params={**window, "earliest": "true"})).json()["oncalls"]
    assert [(o["escalation_level"], o["user"]["id"]) for o in earliest] == [
        (1, world.ana), (1, world.bo), (2, world.bo)]
    assert earliest[0]["start"] == (NOW - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")

    first = (await world.http.get("/oncalls", params={**window, "limit": 3, "total": "true"})).json()
    assert (len(first["oncalls"]), first["more"], first["total"]) == (3, True, 4)
    rest = (await world.http.get("/oncalls", params={**window, "limit": 3, "offset": 3})).json()
    assert (len(rest["oncalls"]), rest["more"]) == (1, False)

    later = {"since": (NOW + timedelta(hours=10)).isoformat(), "until": (NOW + timedelta(hours=11)).isoformat()}
    assert [o["user"]["id"] for o in (await world.http.get("/oncalls", params=later)).json()["oncalls"]] == [
        world.bo, world.bo]


async def test_oncalls_parameter_mistakes(world: World) -> None:
    # Without the [] the filter is silently ignored, as on the real API.
    ignored = (await world.http.get("/oncalls", params={"schedule_ids": "PNOPE"})).json()["oncalls"]
    assert len(ignored) == 2
    bad_time = await world.http.get("/oncalls", params={"since": "yesterday"})
    assert error(bad_time)[0::2] == (400, 2004)
    too_long = {"since": NOW.isoformat(), "until": (NOW + timedelta(days=91)).isoformat()}
    assert error(await world.http.get("/oncalls", params=too_long))[0::2] == (400, 2005)


async def test_schedule_users(world: World) -> None:
    body = (await world.http.get(f"/schedules/{world.schedule}/users")).json()
    assert [u["email"] for u in body["users"]] == ["ana@example.com"]
    assert (await world.http.get("/schedules/PNOPE/users")).status_code == 404


# -- services, dependencies, users ------------------------------------------------------


async def test_services_are_paginated_by_offset(world: World) -> None:
    seen, offset = [], 0
    while True:
        page = (await world.http.get("/services", params={"limit": 2, "offset": offset})).json()
        seen += [s["name"] for s in page["services"]]
        if not page["more"]:
            break
        offset += page["limit"]
    assert seen == ["Checkout", "Database", "Network"]
    assert len(world.pd.requests_for("services")) == 2
    found = (await world.http.get("/services", params={"query": "data"})).json()["services"]
    assert [s["id"] for s in found] == [world.database]
    service = (await world.http.get(f"/services/{world.checkout}")).json()["service"]
    assert service["escalation_policy"]["id"] == world.policy


async def test_technical_service_dependencies_in_both_directions(world: World) -> None:
    body = (await world.http.get(f"/service_dependencies/technical_services/{world.database}")).json()
    pairs = {(r["supporting_service"]["id"], r["dependent_service"]["id"]) for r in body["relationships"]}
    assert pairs == {(world.database, world.checkout), (world.network, world.database)}
    relation = body["relationships"][0]
    assert relation["type"] == "service_dependency"
    assert relation["supporting_service"]["type"] == "technical_service_reference"
    missing = await world.http.get("/service_dependencies/technical_services/PNOPE")
    assert error(missing) == (404, "Not Found", 2100)


async def test_users_lookup_by_email(world: World) -> None:
    body = (await world.http.get("/users", params={"query": "bo@example.com"})).json()
    assert [u["id"] for u in body["users"]] == [world.bo]
    assert (await world.http.get(f"/users/{world.ana}")).json()["user"]["name"] == "Ana Lopez"


# -- faults and lifecycle ---------------------------------------------------------------


async def test_rate_limit_and_server_errors(world: World) -> None:
    world.pd.rate_limit_next(reset_seconds=7, operation="oncalls")
    limited = await world.http.get("/oncalls")
    assert error(limited) == (429, "Rate Limit Exceeded", 2020)
    assert limited.headers["ratelimit-reset"] == "7" and limited.headers["ratelimit-remaining"] == "0"
    assert "Retry-After" not in limited.headers
    world.pd.rate_limit_next(retry_after=3)
    assert (await world.http.get("/services")).headers["Retry-After"] == "3"
    world.pd.fail_next(503, operation="update_incident")
    failed = await world.http.put(f"/incidents/{world.incident}", json=ACK, headers={"From": "ana@example.com"})
    assert failed.status_code == 503 and world.pd.incidents[world.incident].status == "triggered"
    assert (await world.http.get("/oncalls")).status_code == 200


async def test_hang_and_lost_answer_still_change_the_incident(world: World) -> None:
    url, who = f"/incidents/{world.incident}", {"From": "ana@example.com"}
    world.pd.hang_next(0.5, operation="update_incident")
    with pytest.raises(httpx.ReadTimeout):
        await world.http.put(url, json=ACK, headers=who, timeout=0.1)
    await asyncio.sleep(0.6)
    assert world.pd.incidents[world.incident].status == "acknowledged"  # a slow server still does the work

    world.pd.lose_response_next(operation="update_incident")
    with pytest.raises(httpx.RemoteProtocolError):
        await world.http.put(url, json=RESOLVE, headers=who)
    assert world.pd.incidents[world.incident].status == "resolved"
    assert world.pd.requests_for("update_incident")[-1].status is None


async def test_down_and_come_back_on_the_same_port(world: World) -> None:
    url = world.pd.url
    await world.pd.down()
    with pytest.raises(httpx.ConnectError):
        await world.http.get("/services")
    await world.pd.come_back()
    assert world.pd.url == url
    assert (await world.http.get("/services")).status_code == 200


async def test_several_instances_are_independent() -> None:
    async with FakePagerDuty(token="a") as one, FakePagerDuty(token="b") as two:
        one.add_service("Only in one")
        async with httpx.AsyncClient(base_url=two.url, headers={"Authorization": "Token token=b"}) as http:
            assert (await http.get("/services")).json()["services"] == []
        assert one.url != two.url and one.requests == []
