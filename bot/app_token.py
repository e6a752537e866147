"""The bot's own token for its replies, fetched without ever holding up the event loop.

A patch of the SDK. With MicrosoftAppId set, every reply botbuilder 4.17.1 sends is signed in
`AppCredentials.signed_session`, which msrest calls synchronously, on the event loop, and which
calls `MicrosoftAppCredentials.get_access_token()`: MSAL's `acquire_token_for_client`, a
blocking HTTP call to the login endpoint with no timeout. botbuilder builds new credentials
(and so a new MSAL application with an empty cache) for every turn, so every turn fetched a
token, on the loop: a slow login endpoint froze `/healthz`, the webhooks and every other turn
for as long as it took to answer. botbuilder's archived 4.17.1 will not be fixed; its
credentials come from the factory handed to `ConfigurationBotFrameworkAuthentication`, so
`AppTokens` is that factory (bot/adapter.py), and its credentials never fetch:

- one `AppToken` per app id, login authority and scope, shared by every turn's credentials;
  `get_access_token()` serves it from memory, or fails at once (`NoAppToken`) if there is
  no usable one: that reply is not sent, the turn's error handler logs it;
- the fetch is the SDK's own MSAL call (same authority, same proxies, same
  REQUESTS_CA_BUNDLE) in a thread of its own, with socket timeouts. A fresh MSAL application
  each time: its cache would answer a refresh with the token being replaced;
- it is fetched at start-up, and again (by a timer on the loop that serves the replies) once
  less than REFRESH_BEFORE of its life is left, while the current token keeps serving;
- a reply finding no usable token while a fetch is under way waits for it, on the loop, until
  READY_WAIT after that fetch began (start-up, or a token that ran out): a healthy login
  endpoint answers well within it, a slow one costs the turns of those seconds no more;
- after a failed fetch, no new one for a backoff (10 s, doubling up to 2 min).
"""
from __future__ import annotations

import asyncio
import contextvars
import logging
import math
import threading
import time
from functools import partial
from typing import Callable

from botframework.connector.auth import (AuthenticationConstants, ClaimsIdentity,
                                         MicrosoftAppCredentials,
                                         ServiceClientCredentialsFactory)
from msal import ConfidentialClientApplication

log = logging.getLogger("firebell.bot")

FETCH_TIMEOUT = (3.05, 10.0)    # requests, for each of MSAL's calls: connect, then each read
REFRESH_BEFORE = 600.0          # refresh once less than this is left of the token's life
USE_MARGIN = 30.0               # not sent this close to expiry (it may lapse in transit), or
                                # a quarter of its life before, if that is shorter
READY_WAIT = 3.0                # how long after a fetch began replies still wait for it
BACKOFF_FIRST, BACKOFF_MAX = 10.0, 120.0


# True while start() asks botbuilder for the replies' credentials, on a loop of its own that
# ends at once: that loop must not become the one that keeps the token fresh.
_STARTING = contextvars.ContextVar("firebell_bot_token_starting", default=False)


class NoAppToken(PermissionError):
    """No usable token for the bot's replies (yet): the reply is not sent."""


class AppToken:
    """One token: served from memory, fetched in a thread, refreshed ahead of its expiry.

    `fetch` blocks (it runs in a thread) and returns the token and how many seconds it lives.
    State is shared with the fetching thread, hence the lock; the timer and the waiters
    belong to the event loop that serves the replies (the latest one that asked)."""

    def __init__(self, fetch: Callable[[], tuple[str, float]], what: str, *,
                 clock: Callable[[], float] = time.monotonic):
        self._fetch, self.what, self._clock = fetch, what, clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._use_until = -math.inf             # a little before it expires
        self._refresh_at = -math.inf            # due at once: there is no token yet
        self._not_before = -math.inf            # backoff after a failed fetch
        self._failures = 0
        self._fetch_began: float | None = None  # a fetch is under way since then
        self._waiters: list[asyncio.Future] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None

    def current(self) -> str:
        """The token, at once, or NoAppToken. Never waits: msrest calls it on the loop."""
        self.refresh_if_due()
        with self._lock:
            if self._usable():
                return self._token
            fetching = self._fetch_began is not None
        raise NoAppToken(f"no Bot Framework token for {self.what} yet ("
                         + ("still fetching it" if fetching else "the last fetch failed")
                         + "): the reply is not sent")

    async def ready(self) -> None:
        """Wait, on the loop, for a fetch under way to bring a usable token: at most until
        READY_WAIT after that fetch began."""
        self.refresh_if_due()
        with self._lock:
            if self._usable() or self._fetch_began is None:
                return
            left = self._fetch_began + READY_WAIT - self._clock()
            if left <= 0:
                return
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
        try:
            await asyncio.wait({waiter}, timeout=left)
        finally:
            with self._lock:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)

    def refresh_if_due(self) -> bool:
        """Start a fetch in a thread, unless one is under way, none is due or we back off."""
        self._adopt_loop()
        with self._lock:
            now = self._clock()
            if self._fetch_began is not None or now < max(self._refresh_at, self._not_before):
                return False
            self._fetch_began = now
        threading.Thread(target=self._fetch_and_keep, name="firebell-bot-token",
                         daemon=True).start()
        return True

    def _usable(self) -> bool:
        return self._token is not None and self._clock() < self._use_until

    def _fetch_and_keep(self) -> None:
        """In the fetching thread."""
        began = self._clock()
        try:
            token, lifetime = self._fetch()
        except Exception as exc:  # any failure: back off, keep what we have
            self._failed(exc)
        else:
            with self._lock:
                self._token = token
                self._use_until = began + lifetime - min(USE_MARGIN, lifetime / 4)
                # A short-lived token is refreshed at half its life, and never more often than
                # every BACKOFF_FIRST: an odd `expires_in` must not become a storm of fetches.
                self._refresh_at = began + max(lifetime - REFRESH_BEFORE, lifetime / 2,
                                               BACKOFF_FIRST)
                self._failures, self._not_before = 0, -math.inf
        finally:
            with self._lock:
                self._fetch_began = None
                waiters, self._waiters = self._waiters, []
            for waiter in waiters:
                _call_soon(waiter.get_loop(), _wake, waiter)
            if self._loop is not None:
                _call_soon(self._loop, self._arm_timer)

    def _failed(self, exc: Exception) -> None:
        with self._lock:
            self._failures += 1
            backoff = min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** (self._failures - 1))
            self._not_before = self._clock() + backoff
            serving = "serving the current one" if self._usable() else "replies fail meanwhile"
        log.warning("Bot Framework token for %s not fetched (%s: %s); %s, next try in %.0f s",
                    self.what, type(exc).__name__, str(exc)[:200], serving, backoff)

    def _adopt_loop(self) -> None:
        """The loop that serves the replies keeps the token fresh: a timer on it refreshes it
        when due even if no reply asks (a quiet night must not end in an expired token)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # start-up, before aiohttp runs its loop: the first turn adopts
            return
        if _STARTING.get():
            return
        if loop is not self._loop:
            self._loop = loop
            self._arm_timer()

    def _arm_timer(self) -> None:
        """On the adopted loop: wake up when the next fetch is due."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        with self._lock:
            if self._fetch_began is not None:
                return  # its end arms the next
            due = max(self._refresh_at, self._not_before)
        if self._loop is not None and not self._loop.is_closed():
            self._timer = self._loop.call_later(max(0.0, due - self._clock()), self._on_timer)

    def _on_timer(self) -> None:
        if not self.refresh_if_due():
            self._arm_timer()  # woke a little early (the loop's clock is not ours): again


def _call_soon(loop: asyncio.AbstractEventLoop, callback, *args) -> None:
    try:
        loop.call_soon_threadsafe(callback, *args)
    except RuntimeError:  # that loop is closed (a test's, or a start-up one): nothing to do
        pass


def _wake(waiter: asyncio.Future) -> None:
    if not waiter.done():
        waiter.set_result(None)


class AppTokenCredentials(MicrosoftAppCredentials):
    """The SDK's credentials for one app, authority and scope, signing with an AppToken."""

    def __init__(self, sdk: MicrosoftAppCredentials, token: AppToken):
        super().__init__(sdk.microsoft_app_id, sdk.microsoft_app_password, sdk.tenant,
                         sdk.oauth_scope)
        self.oauth_endpoint = sdk.oauth_endpoint  # a private cloud's, as the SDK set it
        self.token = token

    def get_access_token(self, force_refresh: bool = False) -> str:
        return self.token.current()

    async def ready(self) -> None:
        await self.token.ready()


class AppTokens(ServiceClientCredentialsFactory):
    """botbuilder's credentials factory, wrapping the SDK's: same credentials, except that
    they sign with an AppToken (one per app id, authority and scope)."""

    def __init__(self, sdk: ServiceClientCredentialsFactory, *,
                 clock: Callable[[], float] = time.monotonic):
        self._sdk, self._clock = sdk, clock
        self._tokens: dict[tuple[str, str, str], AppToken] = {}
        self._lock = threading.Lock()  # the start-up thread creates one too

    async def is_valid_app_id(self, app_id: str) -> bool:
        return await self._sdk.is_valid_app_id(app_id)

    async def is_authentication_disabled(self) -> bool:
        return await self._sdk.is_authentication_disabled()

    async def create_credentials(self, app_id: str, oauth_scope: str, login_endpoint: str,
                                 validate_authority: bool):
        sdk = await self._sdk.create_credentials(app_id, oauth_scope, login_endpoint,
                                                 validate_authority)
        # Anonymous credentials sign nothing; other kinds (managed identity) stay the SDK's.
        if not isinstance(sdk, MicrosoftAppCredentials) or not sdk.microsoft_app_id:
            return sdk
        key = (sdk.microsoft_app_id, sdk.oauth_endpoint, sdk.oauth_scope)
        with self._lock:
            token = self._tokens.get(key)
            if token is None:
                token = self._tokens[key] = AppToken(partial(fetch_token, sdk),
                                                     f"{sdk.oauth_scope} from {sdk.oauth_endpoint}",
                                                     clock=self._clock)
        token.refresh_if_due()  # a new token starts fetching; the turn's loop is adopted
        return AppTokenCredentials(sdk, token)

    def start(self, authentication, app_id: str) -> None:
        """Fetch the token the replies will use now rather than at the first reply. In a
        thread: app.py builds the adapter before aiohttp runs its event loop."""
        threading.Thread(target=_start_fetching, args=(authentication, app_id),
                         name="firebell-bot-token-start", daemon=True).start()


def _start_fetching(authentication, app_id: str) -> None:
    """Ask botbuilder for the credentials a reply would get (the same factory call a turn
    makes, so the same AppToken): creating them starts its fetch."""
    async def reply_credentials() -> None:
        claims = ClaimsIdentity({AuthenticationConstants.AUDIENCE_CLAIM: app_id}, True)
        await authentication.create_connector_factory(claims).create(
            "https://smba.trafficmanager.net/teams/")  # no call is made: any URL does

    _STARTING.set(True)  # this thread's context; asyncio.run's task copies it
    try:
        asyncio.run(reply_credentials())
    except Exception as exc:  # then the first reply starts it
        log.warning("Bot Framework token not requested at start-up (%s: %s)",
                    type(exc).__name__, str(exc)[:200])


def fetch_token(credentials: MicrosoftAppCredentials) -> tuple[str, float]:
    """Blocking: runs in a thread. MicrosoftAppCredentials.get_access_token's MSAL call, with
    socket timeouts, and with the token's lifetime, which that method does not return."""
    scope = credentials.oauth_scope
    if not scope.endswith("/.default"):
        scope += "/.default"
    msal = ConfidentialClientApplication(client_id=credentials.microsoft_app_id,
                                         client_credential=credentials.microsoft_app_password,
                                         authority=credentials.oauth_endpoint,
                                         timeout=FETCH_TIMEOUT)
    answer = msal.acquire_token_for_client(scopes=[scope])
    if "access_token" not in answer:
        raise PermissionError(f"{answer.get('error', 'no token')}: "
                              f"{str(answer.get('error_description', ''))[:200]}")
    return answer["access_token"], float(answer["expires_in"])
