"""POST /webhooks/heartbeat/<name>: one beat of a heartbeat the catalog declares.

In order: the whole body up to 4 KiB (handlers/ingest/body.py; 413 beyond), the name (404 for
one the catalog does not declare), that heartbeat's own bearer token (401, compared in constant
time; a heartbeat whose token variable is unset takes no beats here), the body (empty, or a JSON
object, whose contents Firebell ignores: anything else is 400), then one committed write. A beat
only moves "last seen" forward, so a retried beat changes nothing more; one that ends a silence
resolves its incident. 503 (with Retry-After) while the database is unreachable."""
from __future__ import annotations

import hmac
import logging
import time
from typing import Mapping

from aiohttp import web

from handlers.context import Context
from handlers.incident.heartbeats import record_beats
from handlers.ingest.body import door, parse_json_object
from handlers.ingest.delivery import Rejected
from storage.db import DatabaseUnavailable

log = logging.getLogger("firebell.heartbeats")
MAX_BODY = 4 * 1024
SOURCE = "heartbeat"


class HeartbeatDoor:
    def __init__(self, ctx: Context, tokens: Mapping[str, str]):
        """`tokens`: heartbeat name -> its bearer token (app.py reads them from the variables
        the catalog's `token_env` names)."""
        self.ctx, self.tokens, self.metrics = ctx, dict(tokens), ctx.metrics

    def routes(self) -> list[web.RouteDef]:
        return [door("/webhooks/heartbeat/{name}", MAX_BODY, self.beat, refused=self._refused)]

    def _refused(self, exc: Rejected) -> None:
        self.metrics.deliveries.labels(SOURCE, f"rejected_{exc.status}").inc()

    async def beat(self, request: web.Request, body: bytes) -> web.Response:
        started = time.perf_counter()
        name = request.match_info["name"]
        try:
            self._check(name, request, body)
            await record_beats(self.ctx, [name])
            result, response = "ok", web.json_response({"heartbeat": name, "status": "beat"})
        except Rejected as exc:
            result, response = f"rejected_{exc.status}", _error(exc.status, exc.reason)
        except DatabaseUnavailable as exc:
            log.warning("database unavailable, answering 503: %s", exc)
            result = "db_unavailable"
            response = _error(503, "database unavailable, retry later", retry_after=5)
        self.metrics.deliveries.labels(SOURCE, result).inc()
        self.metrics.ingest_seconds.labels(SOURCE).observe(time.perf_counter() - started)
        return response

    def _check(self, name: str, request: web.Request, body: bytes) -> None:
        beat = self.ctx.catalog.heartbeats.get(name)
        if beat is None:
            raise Rejected(404, f"no heartbeat named {name[:100]!r} in the catalog")
        expected = self.tokens.get(name, "")
        if not expected:
            raise Rejected(401, f"heartbeat {name!r} takes no beats here: its token variable "
                                f"({beat.token_env or 'token_env in the catalog'}) is not set")
        offered = request.headers.get("Authorization", "")
        if not offered.startswith("Bearer ") or not hmac.compare_digest(
                offered[7:].strip().encode(), expected.encode()):
            raise Rejected(401, "missing or invalid bearer token for this heartbeat")
        if body.strip():
            parse_json_object(body)  # 400 unless a JSON object


def _error(status: int, reason: str, retry_after: int | None = None) -> web.Response:
    headers = {"Retry-After": str(retry_after)} if retry_after else {}
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="firebell-heartbeat"'
    return web.json_response({"error": reason}, status=status, headers=headers or None)
