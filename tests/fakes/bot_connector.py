"""A fake Bot Framework Connector (REST API v3) as Microsoft Teams serves it.

In Teams, every incoming activity carries a ``serviceUrl``; that URL is the base
of the Connector API the bot must call to post, reply, update or delete
messages, create conversations and read rosters.  ``FakeBotConnector`` is a
real HTTP server on 127.0.0.1 that can be that ``serviceUrl`` in tests, so
Firebell's real botbuilder code (``CloudAdapter``, ``ConnectorClient``,
``TeamsInfo``) talks HTTP to it unchanged.

Usage::

    async with FakeBotConnector() as connector:
        service_url = connector.base_url          # put it in the activity's serviceUrl
        ...                                       # drive Firebell
        await connector.wait_for(lambda: len(connector.posts) == 1)
        assert connector.messages(conversation_id)[0]["text"] == "..."

This module also holds the plumbing shared by the other fakes of this package
(``graph.py`` and ``bot_auth.py`` import it from here):

* ``LoopbackServer`` -- runs an aiohttp app **in its own thread and event
  loop**.  That is deliberate: botbuilder and MSAL make *blocking* HTTP calls
  (``requests``) from inside the event loop (JWT metadata fetch, app token
  fetch).  A fake served by the test's own loop would deadlock on those calls.
  In a separate thread it answers regardless of what the test loop does.
* ``AadTokenIssuer`` -- an Azure AD v2 client-credentials token endpoint (plus
  the OpenID discovery document MSAL reads first).
* request recording (``RecordedRequest``) and fault injection (``fail_next``,
  ``hang_next``, ``lose_answer_next``).

Pointing botbuilder's outgoing calls at this fake
-------------------------------------------------
* Without app credentials (``APP_ID`` empty) botbuilder sends no
  ``Authorization`` header; just use ``connector.base_url`` as ``serviceUrl``.
* With ``APP_ID``/``APP_PASSWORD``: botbuilder asks MSAL for a token from the
  authority in ``TO_CHANNEL_FROM_BOT_LOGIN_URL``.  MSAL insists on an
  ``https://`` authority and, for hosts it does not know, calls Microsoft's
  instance-discovery service on the internet -- unless the tenant segment is
  ``adfs``.  So start the fake with ``tls=True`` and use
  ``connector.bot_settings(...)``, which returns
  ``TO_CHANNEL_FROM_BOT_LOGIN_URL = https://127.0.0.1:<port>/adfs``; set
  ``REQUESTS_CA_BUNDLE`` to ``connector.ca_pem_path`` (``requests``, used by
  both MSAL and msrest, reads it on every call, so ``monkeypatch.setenv`` works
  in-process).  (Firebell fetches that token off the loop, MSAL in a thread:
  ``bot/app_token.py``; a slow or failing token endpoint: ``hang_next``/``fail_next``.)
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import math
import os
import secrets
import ssl
import tempfile
import threading
import time
import uuid
from collections import defaultdict, deque
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Optional

import jwt
import trustme
from aiohttp import web

# --------------------------------------------------------------------------------------
# Shared plumbing (also used by graph.py and bot_auth.py)
# --------------------------------------------------------------------------------------


@dataclass
class RecordedRequest:
    """One request as the fake received it."""

    method: str
    path: str  # raw path, still percent-encoded as it was on the wire
    params: dict[str, str]  # decoded path parameters (e.g. conversationId)
    query: dict[str, str]
    headers: dict[str, str]
    body: Any  # parsed JSON, a dict for form posts, raw text otherwise, None if empty
    time: float  # time.time() at arrival
    kind: str  # route name: "post", "reply", "update", "create_chat", "token", ...
    status: Optional[int] = None  # status answered; None if the answer was dropped
    fault: Optional[str] = None  # the fault played on it ("status", "hang", "hold", "lose")


@dataclass
class _Fault:
    action: str  # "status" | "hang" | "hold" | "lose"
    remaining: int
    kinds: Optional[frozenset[str]]  # None matches every request
    status: int = 503
    retry_after: Optional[float] = None
    seconds: float = 0.0

    def matches(self, kind: str) -> bool:
        return self.remaining > 0 and (self.kinds is None or kind in self.kinds)


def _as_kinds(kind: str | Iterable[str] | None) -> Optional[frozenset[str]]:
    if kind is None:
        return None
    if isinstance(kind, str):
        return frozenset({kind})
    return frozenset(kind)


# Per-request storage slots (typed keys, as aiohttp recommends).
RECORD = web.RequestKey("fake_record", RecordedRequest)
DROPPED = web.RequestKey("fake_dropped", bool)


def error_body(code: str, message: str) -> dict:
    """Error shape shared by the Bot Connector and Microsoft Graph."""
    return {"error": {"code": code, "message": message}}


class LoopbackServer:
    """An aiohttp app bound to 127.0.0.1 on a free port, served from its own thread.

    Subclasses implement ``_routes()`` (route names become ``RecordedRequest.kind``)
    and may override ``_authorize()`` and ``_fault_response()``.
    All state shared between the server thread and the test is guarded by
    ``self._lock``.
    """

    #: how long stop() lets in-flight handlers (e.g. a hang fault) finish
    SHUTDOWN_TIMEOUT = 0.5

    def __init__(self, *, tls: bool = False, ca: Optional[trustme.CA] = None) -> None:
        self._lock = threading.RLock()
        self.requests: list[RecordedRequest] = []
        self._held = threading.Event()  # hold_next() faults wait for it
        self._faults: list[_Fault] = []
        self._down = False
        self.tls = tls
        self.ca = ca or (trustme.CA() if tls else None)
        self._ca_pem_file: Optional[str] = None
        self.port: Optional[int] = None
        self.base_url: Optional[str] = None
        self._thread: Optional[threading.Thread] = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._runner: Optional[web.AppRunner] = None
        self._site: Optional[web.TCPSite] = None

    # ---- lifecycle -------------------------------------------------------------------

    async def start(self) -> str:
        """Start serving; returns the base URL (no trailing slash)."""
        ready: concurrent.futures.Future = concurrent.futures.Future()
        self._thread = threading.Thread(
            target=self._thread_main, args=(ready,), name=type(self).__name__, daemon=True
        )
        self._thread.start()
        await asyncio.wrap_future(ready)
        scheme = "https" if self.tls else "http"
        self.base_url = f"{scheme}://127.0.0.1:{self.port}"
        return self.base_url

    async def stop(self) -> None:
        if self._thread is None:
            return
        await self._in_server_loop(self._shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        await asyncio.to_thread(self._thread.join)
        self._thread = None
        if self._ca_pem_file:
            os.unlink(self._ca_pem_file)
            self._ca_pem_file = None

    async def __aenter__(self):
        await self.start()
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.stop()

    async def _shutdown(self) -> None:
        # Reset connections first: a graceful TLS close would wait for clients
        # (e.g. an MSAL session kept alive by the test) that never answer.
        self._abort_connections()
        await self._runner.cleanup()

    def _abort_connections(self) -> None:
        for connection in self._runner.server.connections:
            if connection.transport is not None:
                connection.transport.abort()

    def _thread_main(self, ready: concurrent.futures.Future) -> None:
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._serve())
        except BaseException as exc:  # report start-up failures to start()
            ready.set_exception(exc)
            self._loop.close()
            return
        ready.set_result(None)
        self._loop.run_forever()
        self._finish_loop()

    def _finish_loop(self) -> None:
        """Let closed connections finish closing (else their sockets leak), cancel
        leftovers, then close the loop."""
        loop = self._loop
        pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
        for task in pending:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.run_until_complete(asyncio.sleep(0.01))
        loop.close()

    async def _serve(self) -> None:
        app = web.Application(middlewares=[self._record_middleware, self._fault_middleware])
        app.add_routes(self._routes())
        self._runner = web.AppRunner(
            app, shutdown_timeout=self.SHUTDOWN_TIMEOUT, access_log=None
        )
        await self._runner.setup()
        await self._listen(port=0)

    async def _listen(self, port: int) -> None:
        self._site = web.TCPSite(
            self._runner,
            "127.0.0.1",
            port,
            ssl_context=self._server_ssl_context(),
            reuse_address=True,
        )
        await self._site.start()
        self.port = self._site.port  # the bound port when 0 was asked for

    async def _in_server_loop(self, coro):
        """Run a coroutine on the server's loop (aiohttp objects belong to it)."""
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self._loop))

    # ---- "down" mode: connection refused ---------------------------------------------

    async def go_down(self) -> None:
        """Like a crashed process: stop listening (new connections are refused) and
        reset every open connection, idle or busy.  Undo with ``come_back()``."""
        with self._lock:
            self._down = True
        await self._in_server_loop(self._stop_listening())

    async def _stop_listening(self) -> None:
        await self._site.stop()
        self._abort_connections()

    async def come_back(self) -> None:
        """Listen again on the same port after ``go_down()``."""
        await self._in_server_loop(self._listen(port=self.port))
        with self._lock:
            self._down = False

    # ---- TLS ---------------------------------------------------------------------------

    def _server_ssl_context(self) -> Optional[ssl.SSLContext]:
        if not self.tls:
            return None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ca.issue_cert("127.0.0.1", "localhost", "::1").configure_cert(context)
        return context

    @property
    def ca_pem_path(self) -> Optional[str]:
        """PEM file of the throwaway CA, for REQUESTS_CA_BUNDLE / SSL_CERT_FILE."""
        if self.ca is None:
            return None
        if self._ca_pem_file is None:
            with tempfile.NamedTemporaryFile("wb", suffix=".pem", delete=False) as handle:
                handle.write(self.ca.cert_pem.bytes())
            self._ca_pem_file = handle.name
        return self._ca_pem_file

    def client_ssl_context(self) -> ssl.SSLContext:
        """An SSL context trusting this fake, for aiohttp/httpx clients in tests."""
        context = ssl.create_default_context()
        if self.ca is not None:
            self.ca.configure_trust(context)
        return context

    # ---- recording -----------------------------------------------------------------------

    @web.middleware
    async def _record_middleware(self, request: web.Request, handler):
        record = RecordedRequest(
            method=request.method,
            path=request.raw_path.split("?", 1)[0],
            params=dict(request.match_info),
            query=dict(request.query),
            headers=dict(request.headers),
            body=await self._read_body(request),
            time=time.time(),
            kind=self._kind_of(request),
        )
        request[RECORD] = record
        with self._lock:
            self.requests.append(record)
        try:
            response = await handler(request)
        except web.HTTPException as exc:  # e.g. aiohttp's own 404/405
            record.status = exc.status
            raise
        record.status = None if request.get(DROPPED) else response.status
        return response

    @staticmethod
    async def _read_body(request: web.Request) -> Any:
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
        return text

    @staticmethod
    def _kind_of(request: web.Request) -> str:
        route = request.match_info.route
        return getattr(route, "name", None) or "unknown"

    def requests_of(self, kind: str) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.kind == kind]

    async def wait_for(
        self, predicate: Callable[[], Any], timeout: float = 5.0, interval: float = 0.01
    ) -> Any:
        """Poll ``predicate`` (under the state lock) until it is truthy; return its value."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                seen = [f"{r.method} {r.path} -> {r.status}" for r in self.requests[-10:]]
                raise TimeoutError(f"condition not met within {timeout}s; last requests: {seen}")
            await asyncio.sleep(interval)

    # ---- fault injection -----------------------------------------------------------------

    def fail_next(
        self,
        n: int = 1,
        *,
        status: int = 503,
        retry_after: Optional[float] = None,
        kind: str | Iterable[str] | None = None,
    ) -> None:
        """Answer the next ``n`` matching requests with ``status`` (e.g. 429 with
        ``retry_after`` seconds, or 503) without performing them."""
        if status == 429 and retry_after is None:
            retry_after = 1
        self._add_fault(_Fault("status", n, _as_kinds(kind), status=status, retry_after=retry_after))

    def hang_next(
        self, n: int = 1, *, seconds: float = 5.0, kind: str | Iterable[str] | None = None
    ) -> None:
        """Delay the next ``n`` matching requests by ``seconds``, then serve them
        normally (a client with a shorter timeout gives up first)."""
        self._add_fault(_Fault("hang", n, _as_kinds(kind), seconds=seconds))

    def hold_next(self, n: int = 1, *, kind: str | Iterable[str] | None = None) -> None:
        """Hold the next ``n`` matching requests until ``release_held()`` (at most 30 s),
        then serve them normally: calls in flight at a moment the test chooses."""
        self._held.clear()
        self._add_fault(_Fault("hold", n, _as_kinds(kind), seconds=30.0))

    def release_held(self) -> None:
        self._held.set()

    def lose_answer_next(self, n: int = 1, *, kind: str | Iterable[str] | None = None) -> None:
        """Perform the next ``n`` matching requests but close the connection instead
        of answering: the effect happened, the client never learns it."""
        self._add_fault(_Fault("lose", n, _as_kinds(kind)))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def _add_fault(self, fault: _Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def _take_fault(self, kind: str) -> Optional[_Fault]:
        with self._lock:
            for fault in self._faults:
                if fault.matches(kind):
                    fault.remaining -= 1
                    return fault
            return None

    @web.middleware
    async def _fault_middleware(self, request: web.Request, handler):
        if self._down:  # belt and braces: nothing is served while down
            return self._drop_connection(request)
        # Authentication is checked before faults so that a 401 is never masked.
        denied = self._authorize(request)
        if denied is not None:
            return denied
        fault = self._take_fault(request[RECORD].kind)
        if fault is None:
            return await handler(request)
        request[RECORD].fault = fault.action
        if fault.action == "status":
            return self._fault_response(fault)
        if fault.action == "hang":
            await asyncio.sleep(fault.seconds)
            return await handler(request)
        if fault.action == "hold":
            deadline = time.monotonic() + fault.seconds
            while not self._held.is_set() and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            return await handler(request)
        await handler(request)  # "lose": do the work, then drop the answer
        return self._drop_connection(request)

    @staticmethod
    def _drop_connection(request: web.Request) -> web.Response:
        # Closing the transport before the handler returns makes aiohttp discard
        # the response: the client sees "server disconnected without a response".
        request[DROPPED] = True
        if request.transport is not None:
            request.transport.close()
        return web.Response(status=500)

    def _authorize(self, request: web.Request) -> Optional[web.Response]:
        """Return an error response to refuse the request, or None to let it through."""
        return None

    def _fault_response(self, fault: _Fault) -> web.Response:
        headers = {}
        if fault.retry_after is not None:
            headers["Retry-After"] = str(math.ceil(fault.retry_after))
        code = "TooManyRequests" if fault.status == 429 else "ServiceUnavailable"
        return web.json_response(
            error_body(code, f"Injected fault: HTTP {fault.status}"),
            status=fault.status,
            headers=headers,
        )

    def _routes(self) -> list[web.RouteDef]:
        raise NotImplementedError


class AadTokenIssuer:
    """Azure AD v2 client-credentials token endpoint, as MSAL and plain HTTP clients use it.

    Routes (``tenant`` is any single path segment; restricted if ``tenant`` is set):
      POST {base}/{tenant}/oauth2/v2.0/token         (form: grant_type, client_id,
                                                      client_secret, scope=<resource>/.default)
      GET  {base}/{tenant}/v2.0/.well-known/openid-configuration   (MSAL tenant discovery)
      GET  {base}/{tenant}/.well-known/openid-configuration        (same, ADFS-style path)
    Errors use AAD's shape: {"error", "error_description", "error_codes", ...}.
    Issued tokens are JWTs (HS256, a per-instance secret) so clients can read ``exp``.
    """

    def __init__(
        self,
        clients: dict[str, str],
        *,
        tenant: Optional[str] = None,
        lifetime: int = 3599,
        roles: Iterable[str] = (),
    ) -> None:
        self.clients = dict(clients)  # client_id -> client_secret
        self.tenant = tenant
        self.lifetime = lifetime
        self.roles = list(roles)
        self._secret = secrets.token_bytes(32)
        self._issued: dict[str, dict] = {}  # token -> claims
        self._lock = threading.Lock()

    def routes(self, base_url: Callable[[], str]) -> list[web.RouteDef]:
        self._base_url = base_url
        return [
            web.post("/{tenant}/oauth2/v2.0/token", self._token, name="token"),
            web.get(
                "/{tenant}/v2.0/.well-known/openid-configuration",
                self._discovery,
                name="oidc_discovery",
            ),
            web.get(
                "/{tenant}/.well-known/openid-configuration",
                self._discovery,
                name="oidc_discovery_adfs",
            ),
        ]

    # ---- token endpoint --------------------------------------------------------------

    async def _token(self, request: web.Request) -> web.Response:
        form = await request.post()
        tenant = request.match_info["tenant"]
        problem = self._check_token_request(tenant, form)
        if problem:
            status, error, code, description = problem
            return self._aad_error(status, error, code, description)
        scope = form["scope"]
        resource = scope[: -len("/.default")]
        token = self._issue(form["client_id"], tenant, resource)
        return web.json_response(
            {
                "token_type": "Bearer",
                "expires_in": self.lifetime,
                "ext_expires_in": self.lifetime,
                "access_token": token,
            }
        )

    def _check_token_request(self, tenant: str, form) -> Optional[tuple]:
        if self.tenant and tenant not in (self.tenant, "adfs"):
            return (400, "invalid_request", 90002, f"AADSTS90002: Tenant '{tenant}' not found.")
        if form.get("grant_type") != "client_credentials":
            return (
                400,
                "unsupported_grant_type",
                70003,
                "AADSTS70003: The app requested an unsupported grant type.",
            )
        client_id = form.get("client_id")
        if client_id not in self.clients:
            return (
                400,
                "unauthorized_client",
                700016,
                f"AADSTS700016: Application with identifier '{client_id}' was not found "
                f"in the directory '{tenant}'.",
            )
        if form.get("client_secret") != self.clients[client_id]:
            return (
                401,
                "invalid_client",
                7000215,
                "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent "
                "in the request is the client secret value, not the client secret ID.",
            )
        if not form.get("scope", "").endswith("/.default"):
            return (
                400,
                "invalid_scope",
                1002012,
                "AADSTS1002012: The provided value for scope is not valid. Client credential "
                "flows must have a scope value with /.default suffixed to the resource "
                "identifier (application ID URI).",
            )
        return None

    def _issue(self, client_id: str, tenant: str, resource: str) -> str:
        now = int(time.time())
        claims = {
            "aud": resource,
            "iss": f"https://sts.windows.net/{tenant}/",
            "appid": client_id,
            "tid": tenant,
            "roles": self.roles,
            "iat": now,
            "nbf": now,
            "exp": now + self.lifetime,
            "jti": uuid.uuid4().hex,
        }
        token = jwt.encode(claims, self._secret, algorithm="HS256")
        with self._lock:
            self._issued[token] = claims
        return token

    @staticmethod
    def _aad_error(status: int, error: str, code: int, description: str) -> web.Response:
        trace = str(uuid.uuid4())
        return web.json_response(
            {
                "error": error,
                "error_description": f"{description}\r\nTrace ID: {trace}",
                "error_codes": [code],
                "timestamp": time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime()),
                "trace_id": trace,
                "correlation_id": str(uuid.uuid4()),
            },
            status=status,
        )

    async def _discovery(self, request: web.Request) -> web.Response:
        tenant = request.match_info["tenant"]
        base = f"{self._base_url()}/{tenant}"
        return web.json_response(
            {
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "issuer": f"{base}/v2.0",
                "jwks_uri": f"{base}/discovery/v2.0/keys",
                "response_types_supported": ["code", "id_token", "token"],
                "token_endpoint_auth_methods_supported": ["client_secret_post"],
            }
        )

    # ---- validation of tokens presented to the protected API -------------------------

    def check_bearer(self, authorization: Optional[str], audience: str) -> Optional[str]:
        """None if ``authorization`` carries a live token we issued for ``audience``;
        otherwise a reason (for the 401 message)."""
        if not authorization:
            return "Access token is empty."
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return "Access token is empty."
        with self._lock:
            claims = self._issued.get(token)
        if claims is None:
            return "Access token validation failure. Invalid signature or unknown token."
        if claims["exp"] <= time.time():
            return "Lifetime validation failed, the token is expired."
        if claims["aud"].rstrip("/") != audience.rstrip("/"):
            return "Access token validation failure. Invalid audience."
        return None

    def expire_all(self) -> None:
        """Make every token issued so far expired (clients must fetch a new one)."""
        with self._lock:
            for claims in self._issued.values():
                claims["exp"] = 0

    @property
    def issued_count(self) -> int:
        with self._lock:
            return len(self._issued)


# --------------------------------------------------------------------------------------
# Teams rate limits
# --------------------------------------------------------------------------------------

# "Per bot per thread limit" table from Microsoft's "Optimize your bot with rate
# limiting in Teams" (learn.microsoft.com/microsoftteams/platform/bots/how-to/rate-limit,
# source MicrosoftDocs/msteams-docs msteams-platform/bots/how-to/rate-limit.md):
#   Send to conversation     1 s: 7,  2 s: 8,  30 s: 60,  3600 s: 1800
#   Create conversation      1 s: 7,  2 s: 8,  30 s: 60,  3600 s: 1800
#   Get conversation members 1 s: 14, 2 s: 16, 30 s: 120, 3600 s: 3600
#   Get conversations        1 s: 14, 2 s: 16, 30 s: 120, 3600 s: 3600
# The same page says all requests (messages, channel enumerations, roster fetches)
# are rate limited and that the exact values may change; it also gives a global
# limit per app per tenant (30 RPS in the repo version, 50 RPS in newer copies),
# which this fake does not enforce.  A "thread" is a 1:1 chat, a group chat or a
# channel.  Retry-After is not promised by the docs; the fake sends one anyway so
# clients that honour it can be tested.
TEAMS_PER_THREAD_LIMITS: dict[str, tuple[tuple[int, int], ...]] = {
    "send": ((1, 7), (2, 8), (30, 60), (3600, 1800)),
    "create": ((1, 7), (2, 8), (30, 60), (3600, 1800)),
    "members": ((1, 14), (2, 16), (30, 120), (3600, 3600)),
    "conversations": ((1, 14), (2, 16), (30, 120), (3600, 3600)),
}

# Which rate-limit scenario each connector route counts against.
_SCENARIO_OF_KIND = {
    "post": "send",
    "reply": "send",
    "update": "send",
    "delete": "send",
    "create": "create",
    "members": "members",
    "member": "members",
    "paged_members": "members",
    "team_channels": "conversations",
    "team_details": "conversations",
}


class _SlidingWindowLimiter:
    """Counts accepted operations per (scenario, thread) in sliding windows."""

    def __init__(self, limits: dict[str, tuple[tuple[int, int], ...]]) -> None:
        self.limits = limits
        self._events: dict[tuple[str, str], deque[float]] = defaultdict(deque)

    def admit(self, scenario: str, thread: str, now: float) -> Optional[float]:
        """Record the operation and return None, or return seconds to wait if over a limit."""
        windows = self.limits.get(scenario)
        if not windows:
            return None
        events = self._events[(scenario, thread)]
        longest = max(seconds for seconds, _ in windows)
        while events and events[0] <= now - longest:
            events.popleft()
        wait = 0.0
        for seconds, allowed in windows:
            recent = [t for t in events if t > now - seconds]
            if len(recent) >= allowed:
                # free again once the oldest operation counted in this window leaves it
                wait = max(wait, recent[-allowed] + seconds - now)
        if wait > 0:
            return wait
        events.append(now)
        return None


# --------------------------------------------------------------------------------------
# The fake connector
# --------------------------------------------------------------------------------------


def thread_of(conversation_id: str) -> str:
    """Teams channel thread ids look like '19:x@thread.tacv2;messageid=1700000000000';
    the part before ';' is the channel (rosters and message ids belong to it)."""
    return conversation_id.split(";", 1)[0]


class FakeBotConnector(LoopbackServer):
    """Bot Framework Connector v3 as Teams serves it at an activity's serviceUrl.

    Endpoints (path parameters arrive percent-encoded and are decoded):
      POST   /v3/conversations                                   create  -> {id, activityId}
      POST   /v3/conversations/{conversationId}/activities        post    -> {id}
      POST   /v3/conversations/{conversationId}/activities/{id}   reply   -> {id}
      PUT    /v3/conversations/{conversationId}/activities/{id}   update  -> {id} | 404
      DELETE /v3/conversations/{conversationId}/activities/{id}   delete  -> 200 | 404
      GET    /v3/conversations/{conversationId}/members           members
      GET    /v3/conversations/{conversationId}/members/{memberId} member | 404
      GET    /v3/conversations/{conversationId}/pagedmembers      paged_members
      GET    /v3/teams/{teamId}/conversations                     team_channels
      GET    /v3/teams/{teamId}                                   team_details
      POST   /{tenant}/oauth2/v2.0/token (+ OpenID discovery)     token (AadTokenIssuer)
    """

    def __init__(
        self,
        *,
        tls: bool = False,
        ca: Optional[trustme.CA] = None,
        require_auth: bool = False,
        app_id: str = "00000000-0000-0000-0000-00000000b07a",
        app_password: str = "fake-bot-password",
        oauth_scope: str = "https://api.botframework.com",
        tenant_id: str = "00000000-0000-0000-0000-0000000d1e55",
    ) -> None:
        super().__init__(tls=tls, ca=ca)
        self.require_auth = require_auth
        self.app_id = app_id
        self.app_password = app_password
        self.oauth_scope = oauth_scope
        self.tenant_id = tenant_id
        self.tokens = AadTokenIssuer({app_id: app_password})
        # message state
        self._activities: dict[str, dict] = {}  # activity id -> {"conversation_id", "activity", "deleted"}
        self._order: dict[str, list[str]] = defaultdict(list)  # conversation id -> activity ids
        self.posts: list[dict] = []  # every new message: {"conversation_id","id","kind","activity","time"}
        self.updates: list[dict] = []
        self.deletes: list[dict] = []
        self.conversations: dict[str, dict] = {}  # created via POST /v3/conversations
        # directory state set by the test
        self.rosters: dict[str, list[dict]] = {}  # channel/chat/team id -> members
        self.teams: dict[str, dict] = {}
        # rate limiting
        self._limiter: Optional[_SlidingWindowLimiter] = None
        self.throttled = 0  # 429s given by the rate limiter (not by fail_next)
        self._last_id = 0
        self._member_seq = itertools.count(1)

    # ---- test-facing setup -----------------------------------------------------------

    def make_member(
        self,
        name: str,
        *,
        email: Optional[str] = None,
        aad_object_id: Optional[str] = None,
        user_role: str = "user",
    ) -> dict:
        """A roster entry shaped like Teams' TeamsChannelAccount."""
        given, _, surname = name.partition(" ")
        email = email or f"{given.lower()}.{(surname or 'user').lower()}@contoso.example"
        aad_object_id = aad_object_id or str(uuid.uuid4())
        return {
            "id": f"29:1{uuid.uuid4().hex}{next(self._member_seq)}",
            "name": name,
            "aadObjectId": aad_object_id,
            "email": email,
            "userPrincipalName": email,
            "givenName": given,
            "surname": surname or None,
            "tenantId": self.tenant_id,
            "userRole": user_role,
        }

    def set_roster(self, conversation_id: str, members: list[dict]) -> None:
        """Members answered for a chat, channel (any thread in it) or team id."""
        with self._lock:
            self.rosters[thread_of(conversation_id)] = list(members)

    def add_team(
        self,
        team_id: str,
        name: str,
        *,
        channels: Iterable[tuple[str, str]] = (),
        members: Iterable[dict] = (),
        aad_group_id: Optional[str] = None,
    ) -> None:
        """Register a team.  Teams lists the General channel with id == team id and
        no name, so it is always included first."""
        team = {
            "id": team_id,
            "name": name,
            "aadGroupId": aad_group_id or str(uuid.uuid4()),
            "channels": [{"id": team_id}] + [{"id": cid, "name": cname} for cid, cname in channels],
        }
        with self._lock:
            self.teams[team_id] = team
            self.rosters[team_id] = list(members)
            for channel in team["channels"]:
                self.rosters.setdefault(channel["id"], list(members))

    def enforce_rate_limits(self, enabled: bool = True) -> None:
        """Answer 429 + Retry-After when Teams' per-thread limits would be exceeded."""
        with self._lock:
            self._limiter = _SlidingWindowLimiter(TEAMS_PER_THREAD_LIMITS) if enabled else None

    def bot_settings(self, **overrides) -> dict:
        """botbuilder settings making its outgoing calls authenticate against this fake
        (see the module docstring; requires tls=True and REQUESTS_CA_BUNDLE)."""
        if not self.tls:
            raise RuntimeError("MSAL only accepts https authorities: use FakeBotConnector(tls=True)")
        settings = {
            "APP_ID": self.app_id,
            "APP_PASSWORD": self.app_password,
            "TO_CHANNEL_FROM_BOT_LOGIN_URL": f"{self.base_url}/adfs",
            "TO_CHANNEL_FROM_BOT_OAUTH_SCOPE": self.oauth_scope,
        }
        settings.update(overrides)
        return settings

    # ---- assertion helpers -----------------------------------------------------------

    def messages(self, conversation_id: str) -> list[dict]:
        """Current (latest) version of each message posted to exactly this
        conversation id, in post order; deleted messages are left out."""
        with self._lock:
            entries = (self._activities[aid] for aid in self._order.get(conversation_id, []))
            return [dict(e["activity"]) for e in entries if not e["deleted"]]

    def count_by_conversation(self) -> dict[str, int]:
        """How many messages were posted (not updated) per conversation id."""
        with self._lock:
            counts: dict[str, int] = defaultdict(int)
            for post in self.posts:
                counts[post["conversation_id"]] += 1
            return dict(counts)

    # ---- routes ------------------------------------------------------------------------

    def _routes(self) -> list[web.RouteDef]:
        conv = "/v3/conversations/{conversationId}"
        return [
            web.post("/v3/conversations", self._create, name="create"),
            web.post(f"{conv}/activities", self._post, name="post"),
            web.post(f"{conv}/activities/{{activityId}}", self._reply, name="reply"),
            web.put(f"{conv}/activities/{{activityId}}", self._update, name="update"),
            web.delete(f"{conv}/activities/{{activityId}}", self._delete, name="delete"),
            web.get(f"{conv}/members", self._members, name="members"),
            web.get(f"{conv}/members/{{memberId}}", self._member, name="member"),
            web.get(f"{conv}/pagedmembers", self._paged_members, name="paged_members"),
            web.get("/v3/teams/{teamId}/conversations", self._team_channels, name="team_channels"),
            web.get("/v3/teams/{teamId}", self._team_details, name="team_details"),
            *self.tokens.routes(lambda: self.base_url),
        ]

    def _authorize(self, request: web.Request) -> Optional[web.Response]:
        if not (self.require_auth and request.path.startswith("/v3/")):
            return None
        reason = self.tokens.check_bearer(request.headers.get("Authorization"), self.oauth_scope)
        if reason is None:
            return None
        # The real connector answers 401 with ASP.NET's stock body.
        return web.json_response(
            {"message": "Authorization has been denied for this request."}, status=401
        )

    def _throttle(self, request: web.Request, thread: str) -> Optional[web.Response]:
        """Apply the Teams rate limits (if enabled) before an operation."""
        scenario = _SCENARIO_OF_KIND.get(request[RECORD].kind)
        with self._lock:
            if self._limiter is None or scenario is None:
                return None
            wait = self._limiter.admit(scenario, thread, time.monotonic())
            if wait is None:
                return None
            self.throttled += 1
        return web.json_response(
            error_body("Throttled", "Too many requests for this conversation."),
            status=429,
            headers={"Retry-After": str(max(1, math.ceil(wait)))},
        )

    # ---- message operations ------------------------------------------------------------

    def _next_activity_id(self) -> str:
        """Teams message ids are millisecond timestamps; keep them unique and increasing."""
        with self._lock:
            self._last_id = max(int(time.time() * 1000), self._last_id + 1)
            return str(self._last_id)

    def _store_new(
        self, conversation_id: str, activity: dict, kind: str, activity_id: Optional[str] = None
    ) -> str:
        activity_id = activity_id or self._next_activity_id()
        activity = dict(activity, id=activity_id)
        with self._lock:
            self._activities[activity_id] = {
                "conversation_id": conversation_id,
                "activity": activity,
                "deleted": False,
            }
            self._order[conversation_id].append(activity_id)
            self.posts.append(
                {
                    "conversation_id": conversation_id,
                    "id": activity_id,
                    "kind": kind,
                    "activity": activity,
                    "time": time.time(),
                }
            )
        return activity_id

    def _find_activity(self, conversation_id: str, activity_id: str) -> Optional[dict]:
        # A message can be addressed through its channel or any thread of it.
        entry = self._activities.get(activity_id)
        if entry is None or entry["deleted"]:
            return None
        if thread_of(entry["conversation_id"]) != thread_of(conversation_id):
            return None
        return entry

    @staticmethod
    async def _activity_json(request: web.Request) -> Optional[dict]:
        body = request[RECORD].body
        return body if isinstance(body, dict) and body.get("type") else None

    async def _post(self, request: web.Request) -> web.Response:
        conversation_id = request.match_info["conversationId"]
        if (throttled := self._throttle(request, thread_of(conversation_id))) is not None:
            return throttled
        activity = await self._activity_json(request)
        if activity is None:
            return _bad_request("Activity is missing or has no type.")
        return web.json_response({"id": self._store_new(conversation_id, activity, "post")})

    async def _reply(self, request: web.Request) -> web.Response:
        conversation_id = request.match_info["conversationId"]
        if (throttled := self._throttle(request, thread_of(conversation_id))) is not None:
            return throttled
        activity = await self._activity_json(request)
        if activity is None:
            return _bad_request("Activity is missing or has no type.")
        activity = dict(activity, replyToId=request.match_info["activityId"])
        return web.json_response({"id": self._store_new(conversation_id, activity, "reply")})

    async def _update(self, request: web.Request) -> web.Response:
        conversation_id = request.match_info["conversationId"]
        activity_id = request.match_info["activityId"]
        if (throttled := self._throttle(request, thread_of(conversation_id))) is not None:
            return throttled
        activity = await self._activity_json(request)
        if activity is None:
            return _bad_request("Activity is missing or has no type.")
        with self._lock:
            entry = self._find_activity(conversation_id, activity_id)
            if entry is None:
                return _not_found("ActivityNotFound", f"Activity {activity_id} not found.")
            entry["activity"] = dict(activity, id=activity_id)
            self.updates.append(
                {
                    "conversation_id": conversation_id,
                    "id": activity_id,
                    "activity": entry["activity"],
                    "time": time.time(),
                }
            )
        return web.json_response({"id": activity_id})

    async def _delete(self, request: web.Request) -> web.Response:
        conversation_id = request.match_info["conversationId"]
        activity_id = request.match_info["activityId"]
        if (throttled := self._throttle(request, thread_of(conversation_id))) is not None:
            return throttled
        with self._lock:
            entry = self._find_activity(conversation_id, activity_id)
            if entry is None:
                return _not_found("ActivityNotFound", f"Activity {activity_id} not found.")
            entry["deleted"] = True
            self.deletes.append(
                {"conversation_id": conversation_id, "id": activity_id, "time": time.time()}
            )
        return web.Response(status=200)

    async def _create(self, request: web.Request) -> web.Response:
        params = request[RECORD].body
        if not isinstance(params, dict):
            return _bad_request("ConversationParameters missing.")
        channel_id = ((params.get("channelData") or {}).get("channel") or {}).get("id")
        members = params.get("members") or []
        if not channel_id and not members:
            return _bad_request("Either channelData.channel.id or members is required.")
        thread = channel_id or "create:" + ",".join(sorted(m.get("id", "") for m in members))
        if (throttled := self._throttle(request, thread)) is not None:
            return throttled
        return web.json_response(self._create_conversation(params, channel_id))

    def _create_conversation(self, params: dict, channel_id: Optional[str]) -> dict:
        activity = params.get("activity")
        activity_id = self._next_activity_id() if activity else None
        if channel_id:
            # A new post in a channel: the conversation is the thread rooted at it.
            conversation_id = f"{channel_id};messageid={activity_id or self._next_activity_id()}"
        else:
            conversation_id = f"a:1{uuid.uuid4().hex}"  # Teams 1:1 ids start with "a:"
        with self._lock:
            self.conversations[conversation_id] = {"parameters": params, "time": time.time()}
        if activity:
            self._store_new(conversation_id, activity, "create", activity_id)
        result = {"id": conversation_id}
        if activity_id:
            result["activityId"] = activity_id
        return result

    # ---- rosters and teams ---------------------------------------------------------------

    def _roster(self, conversation_id: str) -> Optional[list[dict]]:
        with self._lock:
            return self.rosters.get(thread_of(conversation_id))

    async def _members(self, request: web.Request) -> web.Response:
        conversation_id = request.match_info["conversationId"]
        if (throttled := self._throttle(request, thread_of(conversation_id))) is not None:
            return throttled
        roster = self._roster(conversation_id)
        if roster is None:
            return _not_found("ConversationNotFound", "Conversation not found.")
        return web.json_response(roster)

    async def _member(self, request: web.Request) -> web.Response:
        conversation_id = request.match_info["conversationId"]
        member_id = request.match_info["memberId"]
        if (throttled := self._throttle(request, thread_of(conversation_id))) is not None:
            return throttled
        # Teams accepts either the member's "29:" id or its AAD object id.
        for member in self._roster(conversation_id) or []:
            if member_id in (member.get("id"), member.get("aadObjectId")):
                return web.json_response(member)
        return _not_found("MemberNotFoundInConversation", "The member was not found.")

    async def _paged_members(self, request: web.Request) -> web.Response:
        conversation_id = request.match_info["conversationId"]
        if (throttled := self._throttle(request, thread_of(conversation_id))) is not None:
            return throttled
        roster = self._roster(conversation_id)
        if roster is None:
            return _not_found("ConversationNotFound", "Conversation not found.")
        page_size = int(request.query.get("pageSize") or 200)
        start = int(request.query.get("continuationToken") or 0)
        page = roster[start : start + page_size]
        result: dict[str, Any] = {"members": page}
        if start + page_size < len(roster):
            result["continuationToken"] = str(start + page_size)
        return web.json_response(result)

    async def _team_channels(self, request: web.Request) -> web.Response:
        team = await self._team(request)
        if isinstance(team, web.Response):
            return team
        return web.json_response({"conversations": team["channels"]})

    async def _team_details(self, request: web.Request) -> web.Response:
        team = await self._team(request)
        if isinstance(team, web.Response):
            return team
        details = {k: team[k] for k in ("id", "name", "aadGroupId")}
        details["channelCount"] = len(team["channels"])
        details["memberCount"] = len(self.rosters.get(team["id"], []))
        return web.json_response(details)

    async def _team(self, request: web.Request) -> dict | web.Response:
        team_id = request.match_info["teamId"]
        if (throttled := self._throttle(request, team_id)) is not None:
            return throttled
        with self._lock:
            team = self.teams.get(team_id)
        if team is None:
            return _not_found("TeamNotFound", f"Team {team_id} not found.")
        return team


def _bad_request(message: str) -> web.Response:
    return web.json_response(error_body("BadArgument", message), status=400)


def _not_found(code: str, message: str) -> web.Response:
    return web.json_response(error_body(code, message), status=404)
