"""The one way a door reads its body and turns it into a JSON document.

Every POST route is built with `door()`, which reads the whole body (until the sender's end of
stream, whatever the Content-Length, chunking or TCP segmentation) up to the door's limit before
the door sees it. `request.content.read(n)` returns whatever has arrived so far: a body split
across two segments by a proxy or a slow link came in cut, and its signature never matched.

`parse_json` is the one JSON parse for outside input: orjson (which refuses nesting beyond
1,024 levels), a tighter depth limit (Python's own recursion limit is about 1,000, so a
1,000-deep value that parsed could still break str(), json or repr later), and NUL characters
replaced by U+FFFD in every string and key, once per door (PostgreSQL refuses NUL in text and
JSON). U+FFFD rather than deleting keeps ids distinct: "P1\\u00002" does not become "P12".
"""
from __future__ import annotations

import logging
import time
from typing import Any, Awaitable, Callable

import orjson
from aiohttp import ClientPayloadError, web
from aiohttp.http_exceptions import HttpProcessingError

from handlers.ingest.delivery import Rejected
from storage.db import DatabaseUnavailable

log = logging.getLogger("firebell.doors")

MAX_DEPTH = 64          # a PagerDuty body nests 6 levels, an Alertmanager one 4, an activity ~10
NUL, REPLACEMENT = "\x00", "\ufffd"

Handler = Callable[[web.Request, bytes], Awaitable[web.StreamResponse]]
Refused = Callable[[Rejected], None]


def door(path: str, limit: int, handler: Handler, *,
         refused: Refused | None = None) -> web.RouteDef:
    """POST `path`: the whole body, at most `limit` bytes, is read before `handler` runs.

    Over the limit is 413, a body cut short by the sender is 400; `refused` (if given) hears
    of either, for the door's metrics."""
    async def read_then_handle(request: web.Request) -> web.StreamResponse:
        try:
            body = await read_body(request, limit)
        except Rejected as exc:
            if refused:
                refused(exc)
            return web.json_response({"error": exc.reason}, status=exc.status)
        return await handler(request, body)

    read_then_handle.body_limit = limit  # how tests recognise a door built here
    return web.post(path, read_then_handle)


async def read_body(request: web.Request, limit: int) -> bytes:
    declared = request.content_length
    if declared is not None and declared > limit:
        raise Rejected(413, f"body over {_size(limit)}")
    chunks, size = [], 0
    try:
        # Until the end of the body: with chunked encoding there is no length to trust.
        async for chunk in request.content.iter_any():
            size += len(chunk)
            if size > limit:
                raise Rejected(413, f"body over {_size(limit)}")
            chunks.append(chunk)
    except (ConnectionError, ClientPayloadError, HttpProcessingError) as exc:
        # The sender went away or broke the framing: nobody is left to answer but the log.
        log.info("a request body ended early: %s", type(exc).__name__)
        raise Rejected(400, "the body ended before it was complete") from None
    return b"".join(chunks)


def parse_json(body: bytes) -> Any:
    """JSON from outside, safe to store and to walk: at most MAX_DEPTH levels, no NUL."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if "depth limit" in str(exc):
            raise Rejected(400, _TOO_DEEP) from None
        raise Rejected(400, f"body is not valid JSON: {exc}") from None
    # Cheap looks at the bytes first: a body cannot nest deeper than it has brackets, and a
    # NUL inside a JSON string is always written as the escape \u0000.
    if b"\\u0000" in body:
        return _without_nul(doc, MAX_DEPTH)
    if body.count(b"[") + body.count(b"{") > MAX_DEPTH and not _nests_within(doc, MAX_DEPTH):
        raise Rejected(400, _TOO_DEEP)
    return doc


def parse_json_object(body: bytes) -> dict[str, Any]:
    doc = parse_json(body)
    if not isinstance(doc, dict):
        raise Rejected(400, "body must be a JSON object")
    return doc


_TOO_DEEP = f"JSON nested too deep (at most {MAX_DEPTH} levels)"


def _without_nul(node: Any, levels: int) -> Any:
    if isinstance(node, str):
        return node.replace(NUL, REPLACEMENT)
    if not isinstance(node, (dict, list)):
        return node
    if levels <= 0:
        raise Rejected(400, _TOO_DEEP)
    if isinstance(node, list):
        return [_without_nul(x, levels - 1) for x in node]
    return {k.replace(NUL, REPLACEMENT): _without_nul(v, levels - 1) for k, v in node.items()}


def _nests_within(doc: Any, levels: int) -> bool:
    stack = [(doc, 1)] if isinstance(doc, (dict, list)) else []
    while stack:
        node, depth = stack.pop()
        if depth > levels:
            return False
        children = node.values() if isinstance(node, dict) else node
        stack.extend((c, depth + 1) for c in children if isinstance(c, (dict, list)))
    return True


def _size(limit: int) -> str:
    return f"{limit // (1024 * 1024)} MB" if limit % (1024 * 1024) == 0 else f"{limit // 1024} KiB"


async def answered(metrics: Any, source: str,
                   work: Callable[[], Awaitable[tuple[str, web.Response]]], *,
                   challenge: str | None = None) -> web.Response:
    """A door's answer: `work` gives (result, response); the sender's mistake (Rejected) and an
    unreachable database become their own answers. Every answer is counted and timed per
    source. `challenge`: the WWW-Authenticate header of a 401."""
    started = time.perf_counter()
    try:
        result, response = await work()
    except Rejected as exc:
        result = f"rejected_{exc.status}"
        response = error_response(exc.status, exc.reason,
                                  challenge=challenge if exc.status == 401 else None)
    except DatabaseUnavailable as exc:
        log.warning("database unavailable, answering 503: %s", exc)
        result = "db_unavailable"
        response = error_response(503, "database unavailable, retry later", retry_after=5)
    metrics.deliveries.labels(source, result).inc()
    metrics.ingest_seconds.labels(source).observe(time.perf_counter() - started)
    return response


def error_response(status: int, reason: str, *, retry_after: int | None = None,
                   challenge: str | None = None) -> web.Response:
    headers = {"Retry-After": str(retry_after)} if retry_after else {}
    if challenge:
        headers["WWW-Authenticate"] = challenge
    return web.json_response({"error": reason}, status=status, headers=headers or None)
