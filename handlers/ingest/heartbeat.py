"""POST /webhooks/heartbeat/<name>: one beat of a heartbeat the catalog declares.

In order: the whole body up to 4 KiB (handlers/ingest/body.py; 413 beyond), the name (404 for
one the catalog does not declare), that heartbeat's own bearer token (401, compared in constant
time; a heartbeat whose token variable is unset takes no beats here), the body (empty, or a JSON
object, whose contents Firebell ignores: anything else is 400), then one committed write. A beat
only moves "last seen" forward, so a retried beat changes nothing more; one that ends a silence
resolves its incident. 503 (with Retry-After) while the database is unreachable."""
from __future__ import annotations

from typing import Mapping

from aiohttp import web

from handlers.context import Context
from handlers.incident.heartbeats import record_beats
from handlers.ingest.body import answered, door, parse_json_object
from handlers.ingest.delivery import Rejected
from handlers.reads.bearer import bearer_matches

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
        name = request.match_info["name"]

        async def work() -> tuple[str, web.Response]:
            self._check(name, request, body)
            await record_beats(self.ctx, [name])
            return "ok", web.json_response({"heartbeat": name, "status": "beat"})
        return await answered(self.metrics, SOURCE, work,
                              challenge='Bearer realm="firebell-heartbeat"')

    def _check(self, name: str, request: web.Request, body: bytes) -> None:
        beat = self.ctx.catalog.heartbeats.get(name)
        if beat is None:
            raise Rejected(404, f"no heartbeat named {name[:100]!r} in the catalog")
        expected = self.tokens.get(name, "")
        if not expected:
            raise Rejected(401, f"heartbeat {name!r} takes no beats here: its token variable "
                                f"({beat.token_env or 'token_env in the catalog'}) is not set")
        if not bearer_matches(request, expected):
            raise Rejected(401, "missing or invalid bearer token for this heartbeat")
        if body.strip():
            parse_json_object(body)  # 400 unless a JSON object
