"""The one base of the HTTP stand-ins in this package: the Bot Connector, the Bot Framework
identity, Microsoft Graph, JIRA and PagerDuty. A stand-in lists its routes; this base serves them
on 127.0.0.1 (optionally over TLS), records every request, plays faults and waits for what a test
expects.

Every stand-in serves from its own thread (``LoopThread``: botbuilder, MSAL and the jira library
make blocking calls, some on the event loop), so one lock guards the state the server thread
writes and the test reads. A route handler that is a plain function runs under that lock; one
that must wait (a coroutine) runs without it and takes it around what it touches.

Writing a stand-in::

    class FakeThing(HttpStandIn):
        def _routes(self):
            return [web.post("/things", self._create, name="create")]  # name: the request's kind

        def _create(self, request):           # runs under the lock
            body = request[RECORD].body       # already read and parsed
            ...

A handler refuses a request by raising ``Refused(response)`` from however deep it found the fault.
``_authorize(request)`` may refuse one before any fault is played (a 401 is never masked);
``_error_body(status, message)`` shapes injected failures like the real service's errors.

Faults, each for the next ``n`` requests of the given ``kind`` (a name or several; None: any)::

    respond_next(status, body=, headers=)  a canned answer; nothing is performed
    fail_next(status=, retry_after=)       a canned error in the service's shape (+ Retry-After)
    hang_next(seconds=)                    performed, answered late (a client may give up first)
    hold_next() ... release_held()         performed and answered when the test says (<= 30 s)
    lose_answer_next()                     performed, then the connection drops unanswered
    go_down() ... come_back()              connections refused, open ones reset; same port after
"""
from __future__ import annotations

import asyncio
import inspect
import math
import os
import ssl
import tempfile
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import trustme
from aiohttp import web
from multidict import CIMultiDict, MultiDict

from tests.fakes.loop_thread import LoopThread

HOLD_AT_MOST = 30.0  # a held request is answered by then even if the test never releases it


@dataclass
class RecordedRequest:
    """One request as the stand-in received it."""

    kind: str  # the route's name ("post", "create_chat", "search", ...); "unknown" if none
    method: str
    path: str  # still percent-encoded, as on the wire
    params: dict[str, str]  # decoded path parameters
    query: MultiDict[str]  # repeated keys kept: query.getall("include[]")
    headers: CIMultiDict[str]
    body: Any  # parsed JSON, a dict for a form post, text otherwise; None when empty
    time: float  # time.time() at arrival
    status: int | None = None  # answered; None when the answer was lost
    fault: str | None = None  # the fault played on it: "respond", "hang", "hold" or "lose"


@dataclass
class Fault:
    """A misbehaviour for the next ``remaining`` requests of ``kinds`` (None: any kind)."""

    action: str  # "respond" | "hang" | "hold" | "lose"
    remaining: int
    kinds: frozenset[str] | None
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None  # JSON of a canned answer; None: empty
    seconds: float = 0.0

    def matches(self, kind: str) -> bool:
        return self.remaining > 0 and (self.kinds is None or kind in self.kinds)


RECORD = web.RequestKey("stand_in_record", RecordedRequest)


class Refused(Exception):
    """Raised by a route handler: answer ``response`` (the service's 4xx) instead."""

    def __init__(self, response: web.Response) -> None:
        super().__init__(response.status)
        self.response = response


class HttpStandIn(ABC):
    #: how long stop() lets in-flight handlers (e.g. a hang) finish
    SHUTDOWN_TIMEOUT = 0.5

    def __init__(self, *, tls: bool = False, ca: trustme.CA | None = None) -> None:
        self._lock = threading.RLock()
        self.requests: list[RecordedRequest] = []
        self._faults: list[Fault] = []
        self._released = threading.Event()
        self._down = False
        self.tls = tls
        self.ca = ca or (trustme.CA() if tls else None)
        self._ca_pem_file: str | None = None
        self.port: int | None = None
        self.base_url: str | None = None
        self._thread = LoopThread(type(self).__name__)
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None

    # ---- to be written by each stand-in ------------------------------------------------------

    @abstractmethod
    def _routes(self) -> list[web.RouteDef]:
        """The stand-in's routes, each named by the kind of request it records."""

    def _authorize(self, request: web.Request) -> web.Response | None:
        """An answer refusing the request, or None to let it through."""
        return None

    def _error_body(self, status: int, message: str) -> Any:
        """An error as the service words it (the Bot Connector's shape here)."""
        return {"error": {"code": error_code(status), "message": message}}

    # ---- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> str:
        """Serve on a free port; returns the base URL (no trailing slash)."""
        await self._thread.start()
        try:
            await self._thread.run(self._serve())
        except BaseException:
            await self._thread.stop()
            raise
        self.base_url = f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"
        return self.base_url

    async def stop(self) -> None:
        if not self._thread.running:
            return
        await self._thread.run(self._shutdown())
        await self._thread.stop()
        if self._ca_pem_file:
            os.unlink(self._ca_pem_file)
            self._ca_pem_file = None

    async def __aenter__(self):
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def go_down(self) -> None:
        """Like a crashed process: new connections are refused, open ones (idle or busy) reset."""
        with self._lock:
            self._down = True
        await self._thread.run(self._stop_listening())

    async def come_back(self) -> None:
        """Listen again on the same port, with the same state."""
        await self._thread.run(self._listen(self.port))
        with self._lock:
            self._down = False

    async def _serve(self) -> None:
        app = web.Application(middlewares=[self._middleware])
        for route in self._routes():
            app.router.add_route(route.method, route.path, self._with_lock(route.handler),
                                 name=route.kwargs.get("name"))
        self._runner = web.AppRunner(app, shutdown_timeout=self.SHUTDOWN_TIMEOUT, access_log=None)
        await self._runner.setup()
        await self._listen(0)

    async def _listen(self, port: int) -> None:
        self._site = web.TCPSite(self._runner, "127.0.0.1", port, reuse_address=True,
                                 ssl_context=self._server_ssl_context())
        await self._site.start()
        self.port = self._site.port  # the port bound when 0 was asked for

    async def _stop_listening(self) -> None:
        await self._site.stop()
        self._abort_connections()

    async def _shutdown(self) -> None:
        # Reset connections first: a graceful TLS close would wait for clients (an MSAL session
        # kept alive by the test) that never answer.
        self._abort_connections()
        await self._runner.cleanup()

    def _abort_connections(self) -> None:
        for connection in self._runner.server.connections:
            if connection.transport is not None:
                connection.transport.abort()

    def _with_lock(self, handler: Callable) -> Callable:
        if inspect.iscoroutinefunction(handler):
            return handler

        async def locked(request: web.Request) -> web.StreamResponse:
            with self._lock:
                return handler(request)
        return locked

    # ---- TLS ---------------------------------------------------------------------------------

    def _server_ssl_context(self) -> ssl.SSLContext | None:
        if not self.tls:
            return None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ca.issue_cert("127.0.0.1", "localhost", "::1").configure_cert(context)
        return context

    @property
    def ca_pem_path(self) -> str | None:
        """The throwaway CA as a PEM file, for REQUESTS_CA_BUNDLE / SSL_CERT_FILE."""
        if self.ca is None:
            return None
        if self._ca_pem_file is None:
            with tempfile.NamedTemporaryFile("wb", suffix=".pem", delete=False) as handle:
                handle.write(self.ca.cert_pem.bytes())
            self._ca_pem_file = handle.name
        return self._ca_pem_file

    def client_ssl_context(self) -> ssl.SSLContext:
        """An SSL context trusting this stand-in, for aiohttp/httpx clients in tests."""
        context = ssl.create_default_context()
        if self.ca is not None:
            self.ca.configure_trust(context)
        return context

    # ---- what was asked ------------------------------------------------------------------------

    def requests_of(self, kind: str) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.kind == kind]

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 5.0,
                       interval: float = 0.01) -> Any:
        """Poll ``predicate`` (under the state lock) until it is truthy; returns its value."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                value = predicate()
                last = [f"{r.method} {r.path} -> {r.status}" for r in self.requests[-10:]]
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"condition not met within {timeout}s; last requests: {last}")
            await asyncio.sleep(interval)

    # ---- faults ------------------------------------------------------------------------------

    def respond_next(self, status: int, n: int = 1, *, kind: str | Iterable[str] | None = None,
                     body: Any = None, headers: dict[str, str] | None = None) -> None:
        self._queue(Fault("respond", n, _kinds(kind), status, dict(headers or {}), body))

    def fail_next(self, n: int = 1, *, status: int = 503, retry_after: float | None = None,
                  kind: str | Iterable[str] | None = None) -> None:
        headers = {} if retry_after is None else {"Retry-After": str(math.ceil(retry_after))}
        body = self._error_body(status, f"Injected fault: HTTP {status}")
        self.respond_next(status, n, kind=kind, body=body, headers=headers)

    def hang_next(self, n: int = 1, *, seconds: float = 5.0,
                  kind: str | Iterable[str] | None = None) -> None:
        self._queue(Fault("hang", n, _kinds(kind), seconds=seconds))

    def hold_next(self, n: int = 1, *, kind: str | Iterable[str] | None = None) -> None:
        self._released.clear()
        self._queue(Fault("hold", n, _kinds(kind), seconds=HOLD_AT_MOST))

    def release_held(self) -> None:
        self._released.set()

    def lose_answer_next(self, n: int = 1, *, kind: str | Iterable[str] | None = None) -> None:
        self._queue(Fault("lose", n, _kinds(kind)))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def _queue(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def _take_fault(self, kind: str) -> Fault | None:
        with self._lock:
            fault = next((f for f in self._faults if f.matches(kind)), None)
            if fault is not None:
                fault.remaining -= 1
            return fault

    # ---- serving -----------------------------------------------------------------------------

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Callable) -> web.StreamResponse:
        record = await self._record(request)
        response = await self._answer(request, handler, record)
        record.status = None if isinstance(response, _Unanswered) else response.status
        return response

    async def _answer(self, request: web.Request, handler: Callable,
                      record: RecordedRequest) -> web.StreamResponse:
        if self._down:  # nothing is served while down, not even a request already read
            return _drop_connection(request)
        if request.match_info.http_exception is not None:  # a call the stand-in does not serve
            return web.Response(status=request.match_info.http_exception.status,
                                text=f"{type(self).__name__} has no endpoint "
                                     f"{request.method} {request.path}")
        denied = self._authorize(request)
        if denied is not None:
            return denied
        fault = self._take_fault(record.kind)
        if fault is None:
            return await _handle(handler, request)
        record.fault = fault.action
        if fault.action == "respond":
            if fault.body is None:
                return web.Response(status=fault.status, headers=fault.headers)
            return web.json_response(fault.body, status=fault.status, headers=fault.headers)
        if fault.action == "hang":
            await asyncio.sleep(fault.seconds)
        if fault.action == "hold":
            deadline = time.monotonic() + fault.seconds
            while not self._released.is_set() and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
        response = await _handle(handler, request)
        return _drop_connection(request) if fault.action == "lose" else response

    async def _record(self, request: web.Request) -> RecordedRequest:
        record = RecordedRequest(
            kind=getattr(request.match_info.route, "name", None) or "unknown",
            method=request.method,
            path=request.raw_path.split("?", 1)[0],
            params=dict(request.match_info),
            query=MultiDict(request.query),
            headers=CIMultiDict(request.headers),
            body=await _parsed_body(request),
            time=time.time(),
        )
        request[RECORD] = record
        with self._lock:
            self.requests.append(record)
        return record


def error_code(status: int) -> str:
    """The error code Microsoft's APIs (the Bot Connector, Graph) give an injected status."""
    return {429: "TooManyRequests", 503: "ServiceUnavailable"}.get(status, "InternalServerError")


async def _handle(handler: Callable, request: web.Request) -> web.StreamResponse:
    try:
        return await handler(request)
    except Refused as refused:
        return refused.response


def _kinds(kind: str | Iterable[str] | None) -> frozenset[str] | None:
    if kind is None:
        return None
    return frozenset({kind}) if isinstance(kind, str) else frozenset(kind)


async def _parsed_body(request: web.Request) -> Any:
    if not request.can_read_body:
        return None
    if request.content_type == "application/x-www-form-urlencoded":
        return dict(await request.post())
    text = await request.text()
    if request.content_type == "application/json" or text[:1] in ("{", "["):
        try:
            return await request.json()
        except ValueError:
            pass
    return text or None


class _Unanswered(web.Response):
    """What a dropped connection "answers": nothing reaches the client."""


def _drop_connection(request: web.Request) -> web.Response:
    # Closing the transport before the handler returns makes aiohttp discard the response: the
    # client sees "server disconnected without a response".
    if request.transport is not None:
        request.transport.close()
    return _Unanswered(status=500)
