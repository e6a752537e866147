"""Every door reads the whole body, however it arrives on the wire.

A real TCP client (asyncio streams) against the harness's real port sends the request line and
headers, then half the body, pauses 5 to 50 ms, then the rest; and the same with
`Transfer-Encoding: chunked` in several chunks with pauses. A proxy, a slow link or a chunked
sender delivers bodies like that; every try must be answered as if the body had come at once.
"""
from __future__ import annotations

import asyncio
import json
import logging
import random
from dataclasses import dataclass

import pytest

from tests.conftest import fixture_bytes
from tests.harness import HEADERS, HEARTBEAT_TOKEN

V3 = "02-checkout-api-triggered.json"
V2 = "10-order-db-legacy-v2-trigger.json"
AM = "11-alertmanager-search-service-firing.json"


@dataclass(frozen=True)
class DoorCase:
    name: str
    path: str
    headers: dict[str, str]
    body: bytes
    ok: int          # the door's answer to this request sent in one piece
    limit: int       # the door's body size limit
    route: str | None = None  # the route it reaches, when its path has a parameter


def door_cases(h) -> list[DoorCase]:
    """One valid request per door. A POST route missing here fails test_every_post_route_..."""
    v3_headers = {k: v for k, v in HEADERS[V3].items() if k != "Content-Type"}
    v2_headers = {k: v for k, v in HEADERS[V2].items() if k != "Content-Type"}
    activity = h.personal_message("incident help")
    return [
        DoorCase("pagerduty-v3", "/webhooks/pagerduty", v3_headers, fixture_bytes(V3), 200,
                 256 * 1024),
        DoorCase("pagerduty-v2-token", "/webhooks/pagerduty?token=v2-token", v2_headers,
                 fixture_bytes(V2), 200, 256 * 1024),
        DoorCase("alertmanager", "/webhooks/alertmanager", {"Authorization": "Bearer am-token"},
                 fixture_bytes(AM), 200, 256 * 1024),
        # A message activity is answered 201 (no invoke response), as botbuilder always did.
        DoorCase("bot-framework", "/api/messages", {}, json.dumps(activity).encode(), 201,
                 1024 * 1024),
        DoorCase("heartbeat", "/webhooks/heartbeat/alert-pipeline",
                 {"Authorization": f"Bearer {HEARTBEAT_TOKEN}"},
                 b'{"job": "nightly-export", "ok": true}', 200, 4 * 1024,
                 route="/webhooks/heartbeat/{name}"),
    ]


DOOR_NAMES = ["pagerduty-v3", "pagerduty-v2-token", "alertmanager", "bot-framework",
              "heartbeat"]


def _case(h, name: str) -> DoorCase:
    return next(c for c in door_cases(h) if c.name == name)


async def raw_post(port: int, case: DoorCase, pieces: list[bytes], gaps: list[float], *,
                   chunked: bool = False) -> tuple[int, bytes]:
    """POST over a bare TCP connection: headers first, then each piece after its gap."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        lines = [f"POST {case.path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Connection: close",
                 "Content-Type: application/json",
                 *(f"{k}: {v}" for k, v in case.headers.items())]
        lines.append("Transfer-Encoding: chunked" if chunked
                     else f"Content-Length: {sum(len(p) for p in pieces)}")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        await writer.drain()
        for piece, gap in zip(pieces, gaps):
            await asyncio.sleep(gap)
            writer.write(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
            await writer.drain()
        if chunked:
            writer.write(b"0\r\n\r\n")
            await writer.drain()
        answer = await asyncio.wait_for(reader.read(), timeout=10)
    finally:
        writer.close()
    status = int(answer.split(b" ", 2)[1])
    return status, answer.split(b"\r\n\r\n", 1)[-1]


def _no_traceback(caplog) -> None:
    assert not [r for r in caplog.records if r.exc_info], caplog.text
    assert "Traceback" not in caplog.text


def _port(h) -> int:
    return int(h.url.rsplit(":", 1)[1])


async def test_every_post_route_is_a_door_that_reads_whole_bodies(harness):
    """A door added later must be built with the one body reader and be listed above, so the
    split and chunked tests below cover it."""
    posts = [r for r in harness.app.router.routes() if r.method == "POST"]
    covered = {c.route or c.path.split("?")[0] for c in door_cases(harness)}
    assert {r.resource.canonical for r in posts} == covered
    for route in posts:
        assert getattr(route.handler, "body_limit", None), \
            f"{route.resource.canonical} does not read its body with handlers.ingest.body.door"


@pytest.mark.parametrize("name", DOOR_NAMES)
async def test_a_body_split_across_segments_is_read_whole(harness, caplog, name):
    caplog.set_level(logging.INFO)
    case = _case(harness, name)
    rng = random.Random(name)
    half = len(case.body) // 2
    statuses = []
    for _ in range(20):
        gap = rng.uniform(0.005, 0.050)
        status, answer = await raw_post(_port(harness), case,
                                        [case.body[:half], case.body[half:]], [0, gap])
        statuses.append((status, answer[:200]))
    assert [s for s, _ in statuses] == [case.ok] * 20, statuses
    _no_traceback(caplog)


@pytest.mark.parametrize("name", DOOR_NAMES)
async def test_a_chunked_body_is_read_whole(harness, caplog, name):
    caplog.set_level(logging.INFO)
    case = _case(harness, name)
    rng = random.Random(name + "chunked")
    statuses = []
    for _ in range(8):
        cuts = sorted(rng.sample(range(1, len(case.body)), 4))
        pieces = [case.body[a:b] for a, b in zip([0, *cuts], [*cuts, len(case.body)])]
        gaps = [0] + [rng.uniform(0.005, 0.030) for _ in pieces[1:]]
        status, answer = await raw_post(_port(harness), case, pieces, gaps, chunked=True)
        statuses.append((status, answer[:200]))
    assert [s for s, _ in statuses] == [case.ok] * 8, statuses
    _no_traceback(caplog)


@pytest.mark.parametrize("name", DOOR_NAMES)
async def test_a_chunked_body_over_the_limit_is_413(harness, caplog, name):
    """No Content-Length to refuse up front: the reader stops at the door's limit."""
    caplog.set_level(logging.INFO)
    case = _case(harness, name)
    piece = b" " * (64 * 1024)
    pieces = [case.body[:-1]] + [piece] * (case.limit // len(piece) + 1) + [case.body[-1:]]
    status, _ = await raw_post(_port(harness), case, pieces, [0] * len(pieces), chunked=True)
    assert status == 413
    assert await harness.incidents() == []
    _no_traceback(caplog)


async def test_a_sender_that_goes_away_mid_body_leaves_no_trace(harness, caplog):
    """Nobody is left to answer; the log says so in one line, without a traceback."""
    caplog.set_level(logging.INFO)
    for case in door_cases(harness):
        for framing in (b"Content-Length: %d" % (len(case.body) + 100),
                        b"Transfer-Encoding: chunked"):
            reader, writer = await asyncio.open_connection("127.0.0.1", _port(harness))
            head = b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n%s\r\n\r\n"
            writer.write(head % (case.path.encode(), framing))
            half = case.body[:len(case.body) // 2]
            writer.write(b"%x\r\n%s\r\n" % (len(half), half) if b"chunked" in framing else half)
            await writer.drain()
            await asyncio.sleep(0.02)
            writer.close()
    await asyncio.sleep(0.2)
    assert await harness.incidents() == []
    assert sum("ended early" in r.getMessage() for r in caplog.records) == \
        2 * len(door_cases(harness))
    _no_traceback(caplog)


async def test_a_request_aiohttp_cannot_parse_is_one_log_line_not_a_traceback(database_url,
                                                                              tmp_path):
    """Broken chunk framing is refused by aiohttp's parser before any Firebell code runs, and
    aiohttp logs it as an ERROR with a traceback. Firebell as deployed (`python app.py`, its
    own logging) turns that into one INFO line: the sender's mistake, not Firebell's."""
    from tests.processes import FirebellProcess

    app = FirebellProcess(database_url, tmp_path, env={"LOG_LEVEL": "INFO"})
    app.start()
    try:
        await app.wait_ready()
        reader, writer = await asyncio.open_connection("127.0.0.1", app.port)
        writer.write(b"POST /webhooks/alertmanager HTTP/1.1\r\nHost: firebell\r\n"
                     b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"ZZ\r\n{}\r\n0\r\n\r\n")
        await writer.drain()
        status_line = await reader.readline()
        writer.close()
        assert b" 400 " in status_line
        await asyncio.sleep(0.3)
    finally:
        app.stop()
    log = app.log_path.read_text()
    assert "refused a malformed request" in log
    assert "Traceback" not in log and "ERROR" not in log
