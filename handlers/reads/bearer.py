"""`Authorization: Bearer <token>` on HTTP endpoints: compared in constant time, so the time a
refusal takes says nothing about how much of a guess was right."""
from __future__ import annotations

import hmac

from aiohttp import web


def bearer_matches(request: web.Request, token: str) -> bool:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return bool(token) and scheme.lower() == "bearer" and \
        hmac.compare_digest(given.strip().encode(), token.encode())


def unauthorized(text: str = "A valid bearer token is required.") -> web.HTTPUnauthorized:
    return web.HTTPUnauthorized(text=text,
                                headers={"WWW-Authenticate": 'Bearer realm="firebell"'})
