"""The one base of the HTTP stand-ins, through a two-route stand-in: requests recorded, faults
played per kind, down and back on the same port, TLS, loud answers to calls it does not serve,
and answers while the test's own loop is blocked."""
from __future__ import annotations

import asyncio
import os

import httpx
import pytest
import requests
from aiohttp import web

from tests.fakes.http_stand_in import RECORD, HttpStandIn


class FakeCounter(HttpStandIn):
    def __init__(self, **options) -> None:
        super().__init__(**options)
        self.count = 0

    def _routes(self) -> list[web.RouteDef]:
        return [web.post("/counters/{name}", self._add, name="add"),
                web.get("/counters/{name}", self._read, name="read")]

    def _add(self, request: web.Request) -> web.Response:
        self.count += (request[RECORD].body or {}).get("by", 1)
        return web.json_response({"count": self.count})

    def _read(self, request: web.Request) -> web.Response:
        return web.json_response({"count": self.count})


@pytest.fixture
async def fake():
    async with FakeCounter() as stand_in:
        yield stand_in


async def test_requests_are_recorded_and_an_unserved_call_is_a_loud_404(fake, http):
    await http.post(f"{fake.base_url}/counters/a%3Bb", params=[("x", "1"), ("x", "2")],
                    json={"by": 2}, headers={"X-Probe": "yes"})
    await http.post(f"{fake.base_url}/counters/c", data={"by": "form"})
    (add, form) = fake.requests_of("add")
    assert (add.kind, add.method, add.status, add.fault) == ("add", "POST", 200, None)
    assert add.path == "/counters/a%3Bb" and add.params == {"name": "a;b"}
    assert add.query.getall("x") == ["1", "2"] and add.headers["x-probe"] == "yes"
    assert add.body == {"by": 2} and form.body == {"by": "form"}

    unserved = await http.delete(f"{fake.base_url}/counters/a")
    assert unserved.status_code == 405
    assert "FakeCounter has no endpoint DELETE" in unserved.text
    elsewhere = await http.get(f"{fake.base_url}/nope")
    assert elsewhere.status_code == 404
    assert "FakeCounter has no endpoint GET /nope" in elsewhere.text
    assert [r.kind for r in fake.requests[-2:]] == ["unknown", "unknown"]


async def test_canned_answers_hit_only_their_kind_and_perform_nothing(fake, http):
    fake.fail_next(1, status=429, retry_after=2.5, kind="add")
    fake.respond_next(418, kind=["add", "read"], body={"why": "teapot"}, headers={"X-A": "b"})
    throttled = await http.post(f"{fake.base_url}/counters/a", json={})
    assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "3"
    assert throttled.json()["error"]["code"] == "TooManyRequests"
    teapot = await http.get(f"{fake.base_url}/counters/a")
    assert (teapot.status_code, teapot.headers["X-A"]) == (418, "b")
    assert teapot.json() == {"why": "teapot"}
    assert (await http.post(f"{fake.base_url}/counters/a", json={})).json() == {"count": 1}
    assert [(r.status, r.fault) for r in fake.requests] == [(429, "respond"), (418, "respond"),
                                                            (200, None)]


async def test_a_hung_request_times_the_client_out_and_is_still_performed(fake):
    fake.hang_next(seconds=0.5, kind="add")
    async with httpx.AsyncClient(timeout=0.1) as impatient:
        with pytest.raises(httpx.ReadTimeout):
            await impatient.post(f"{fake.base_url}/counters/a", json={})
    await fake.wait_for(lambda: fake.count == 1, timeout=2)


async def test_a_held_request_is_in_flight_until_released(fake, http):
    fake.hold_next(kind="add")
    call = asyncio.create_task(http.post(f"{fake.base_url}/counters/a", json={}))
    held = await fake.wait_for(lambda: [r for r in fake.requests if r.fault == "hold"])
    await asyncio.sleep(0.1)
    assert held[0].status is None and fake.count == 0 and not call.done()
    fake.release_held()
    assert (await call).json() == {"count": 1} and held[0].status == 200


async def test_a_lost_answer_performs_the_call_and_drops_the_connection(fake, http):
    fake.lose_answer_next(kind="add")
    with pytest.raises(httpx.RemoteProtocolError):
        await http.post(f"{fake.base_url}/counters/a", json={})
    assert fake.count == 1 and fake.requests_of("add")[0].status is None


async def test_down_refuses_even_kept_alive_connections_and_comes_back_on_the_same_port(fake, http):
    assert (await http.post(f"{fake.base_url}/counters/a", json={})).status_code == 200
    base = fake.base_url
    await fake.go_down()
    with pytest.raises(httpx.ConnectError):
        await http.post(f"{fake.base_url}/counters/a", json={})
    await fake.come_back()
    assert fake.base_url == base
    assert (await http.post(f"{fake.base_url}/counters/a", json={})).json() == {"count": 2}


async def test_it_answers_a_blocking_call_made_on_the_test_loop(fake):
    # What botbuilder does when it fetches signing keys or a token with `requests`.
    assert requests.get(f"{fake.base_url}/counters/a", timeout=5).json() == {"count": 0}


async def test_tls_with_a_throwaway_ca_and_wait_for_says_what_it_saw():
    async with FakeCounter(tls=True) as secure:
        assert secure.base_url.startswith("https://")
        async with httpx.AsyncClient(verify=secure.client_ssl_context()) as http:
            assert (await http.get(f"{secure.base_url}/counters/a")).status_code == 200
        pem = secure.ca_pem_path
        assert os.path.exists(pem)
        with pytest.raises(TimeoutError, match=r"GET /counters/a -> 200"):
            await secure.wait_for(lambda: secure.count, timeout=0.05)
    assert not os.path.exists(pem)
