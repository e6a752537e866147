"""The Bot Framework's token signing keys, fetched without ever holding up the event loop.

A patch of the SDK. botbuilder 4.17.1 keeps the keys per OpenID metadata URL in
`JwtTokenExtractor.metadataCache`, filled by `jwt_token_extractor._OpenIdMetadata`, which
fetches them with `requests.get` with no timeout, on the event loop: at the first request, once
a day, for a token whose `kid` it does not know (at most hourly), and after a failed fetch on
every request. While a slow key endpoint answered, nothing else ran: one token with an unknown
`kid` held `/healthz` and the webhooks up for 7.5 s. botbuilder's archived 4.17.1 will not be
fixed, and the class is built by name inside `JwtTokenExtractor.get_open_id_metadata`, so
`install()` puts `SigningKeys` in its place, for every metadata URL (channel, emulator, skills):

- the fetch is the same `requests.get` (same proxies, same REQUESTS_CA_BUNDLE), in a thread,
  with socket timeouts, and the loop stops waiting for it after FETCH_DEADLINE;
- keys are served from the cache; a day-old cache keeps serving while a refresh runs behind;
- a token with an unknown `kid` starts a refresh (one at a time, at most one per
  UNKNOWN_KID_EVERY) and waits for it at most KEY_WAIT seconds, then is refused (401). A
  healthy key endpoint answers well within it, and Teams gives a request 15 s; a slow one
  costs that one request 3 s, nobody else anything;
- after a failed fetch, no new one for a backoff (10 s, doubling up to 10 min); until then
  known keys are served and unknown ones refused at once.
"""
from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from typing import Any, Callable

import requests
from botframework.connector.auth import jwt_token_extractor
from botframework.connector.auth.jwt_token_extractor import JwtTokenExtractor, _OpenIdConfig
from jwt.algorithms import RSAAlgorithm

log = logging.getLogger("firebell.bot")

FETCH_TIMEOUT = (3.05, 5.0)     # requests: connect, then each read
FETCH_DEADLINE = 10.0           # the whole refresh (metadata, then keys), as the loop sees it
KEY_WAIT = 3.0                  # how long a token with an unknown kid waits for a refresh
REFRESH_EVERY = 24 * 3600.0     # botbuilder's: keys older than a day are refreshed
UNKNOWN_KID_EVERY = 300.0       # unknown kids refetch at most this often after a success
BACKOFF_FIRST, BACKOFF_MAX = 10.0, 600.0

SDK_OPEN_ID_METADATA = jwt_token_extractor._OpenIdMetadata  # what install() replaces


class SigningKeys:
    """One metadata URL's keys. Constructed by botbuilder as `_OpenIdMetadata(url)`; it calls
    `await get(kid)` and reads `.public_key` and `.endorsements` from the answer."""

    def __init__(self, url: str, *, clock: Callable[[], float] = time.monotonic):
        self.url = url
        self._clock = clock
        self._keys: dict[str, _OpenIdConfig] = {}
        self._fetched_at: float | None = None   # last successful refresh
        self._not_before = -math.inf            # no refresh before this (backoff, kid limit)
        self._failures = 0
        self._refresh: asyncio.Task | None = None

    async def get(self, key_id: str | None) -> _OpenIdConfig:
        key = self._keys.get(key_id or "")
        if key is not None:
            if self._fetched_at is None or self._clock() - self._fetched_at > REFRESH_EVERY:
                self._start_refresh()  # serve the old keys meanwhile
            return key
        refresh = self._start_refresh() or self._in_flight()
        if refresh is not None:
            await asyncio.wait({refresh}, timeout=KEY_WAIT)  # the refresh goes on regardless
        key = self._keys.get(key_id or "")
        if key is None:
            raise PermissionError(f"token signed with key {str(key_id)[:60]!r}, which is not "
                                  "among the Bot Framework's published keys (now)")
        return key

    def _in_flight(self) -> asyncio.Task | None:
        task = self._refresh
        # A task of another (closed) event loop never finishes: as good as none.
        if task is None or task.done() or task.get_loop() is not asyncio.get_running_loop():
            return None
        return task

    def _start_refresh(self) -> asyncio.Task | None:
        if self._in_flight() is not None or self._clock() < self._not_before:
            return None
        self._refresh = asyncio.get_running_loop().create_task(self._refresh_keys())
        return self._refresh

    async def _refresh_keys(self) -> None:
        try:
            keys = await asyncio.wait_for(asyncio.to_thread(_fetch_keys, self.url),
                                          FETCH_DEADLINE)
        except Exception as exc:  # any failure: back off, keep what we have
            self._failures += 1
            backoff = min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** (self._failures - 1))
            self._not_before = self._clock() + backoff
            log.warning("Bot Framework signing keys from %s not fetched (%s: %s); serving the "
                        "%d cached, next try in %.0f s", self.url, type(exc).__name__,
                        str(exc)[:200], len(self._keys), backoff)
            return
        now = self._clock()
        self._keys, self._fetched_at, self._failures = keys, now, 0
        self._not_before = now + UNKNOWN_KID_EVERY


def _fetch_keys(metadata_url: str) -> dict[str, _OpenIdConfig]:
    """Blocking: runs in a thread. The metadata document names the key set's URL."""
    response = requests.get(metadata_url, timeout=FETCH_TIMEOUT)
    response.raise_for_status()
    keys_response = requests.get(response.json()["jwks_uri"], timeout=FETCH_TIMEOUT)
    keys_response.raise_for_status()
    keys = {}
    for jwk in keys_response.json().get("keys") or []:
        parsed = _parse(jwk)
        if parsed is not None:
            keys[jwk["kid"]] = parsed
    if not keys:
        raise ValueError("the key set has no usable RSA key")
    return keys


def _parse(jwk: Any) -> _OpenIdConfig | None:
    if not isinstance(jwk, dict) or not jwk.get("kid"):
        return None
    try:
        public_key = RSAAlgorithm.from_jwk(json.dumps(jwk))
    except Exception:  # one odd key must not cost the others
        log.warning("Bot Framework signing key %s skipped: not an RSA key", str(jwk["kid"])[:60])
        return None
    return _OpenIdConfig(public_key, jwk.get("endorsements") or [])


def install() -> None:
    """Make botbuilder build SigningKeys for every metadata URL (idempotent)."""
    if jwt_token_extractor._OpenIdMetadata is SigningKeys:
        return
    jwt_token_extractor._OpenIdMetadata = SigningKeys
    for url, cached in list(JwtTokenExtractor.metadataCache.items()):
        if not isinstance(cached, SigningKeys):  # made by the SDK's class before: rebuild
            JwtTokenExtractor.metadataCache.pop(url, None)
