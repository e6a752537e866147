"""The webhook doors: POST /webhooks/pagerduty and POST /webhooks/alertmanager.

Order matters: size limit, then authentication (before anything is parsed), then parsing, then
one committed transaction, then the answer. The answer never waits for Teams or anything else
outside (rule 1); if the database is unreachable the answer is 503 so the sender retries.
"""
from __future__ import annotations

import hmac
import logging
import time
from dataclasses import dataclass
from typing import Sequence

from aiohttp import web

from handlers.context import Context
from handlers.webhooks.alertmanager import parse_alertmanager
from handlers.webhooks.delivery import Delivery, Rejected
from handlers.webhooks.pagerduty import is_v2, parse_pagerduty
from handlers.webhooks.signature import signature_matches
from observability.metrics import Metrics
from storage.db import DatabaseUnavailable
from storage.group_commit import GroupCommitter

log = logging.getLogger("firebell.webhooks")
MAX_BODY = 256 * 1024


@dataclass(frozen=True)
class WebhookSecrets:
    pagerduty: Sequence[str] = ()
    pagerduty_v2_token: str = ""
    alertmanager_token: str = ""


class WebhookDoors:
    def __init__(self, ctx: Context, committer: GroupCommitter, secrets: WebhookSecrets,
                 metrics: Metrics):
        self.ctx, self.committer, self.secrets, self.metrics = ctx, committer, secrets, metrics

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/webhooks/pagerduty", self.pagerduty),
                web.post("/webhooks/alertmanager", self.alertmanager)]

    async def pagerduty(self, request: web.Request) -> web.Response:
        return await self._door("pagerduty", request, self._pagerduty_delivery)

    async def alertmanager(self, request: web.Request) -> web.Response:
        return await self._door("alertmanager", request, self._alertmanager_delivery)

    async def _pagerduty_delivery(self, request: web.Request, body: bytes) -> Delivery:
        signed = signature_matches(request.headers.get("X-PagerDuty-Signature"), body,
                                   self.secrets.pagerduty)
        # PagerDuty never signed V2; a V2 body may instead carry ?token= in the URL.
        if not signed and not (is_v2(body) and _token_ok(request.query.get("token"),
                                                        self.secrets.pagerduty_v2_token)):
            raise Rejected(401, "missing or invalid X-PagerDuty-Signature")
        return parse_pagerduty(body, request.headers.get("X-Webhook-Id"))

    async def _alertmanager_delivery(self, request: web.Request, body: bytes) -> Delivery:
        expected = self.secrets.alertmanager_token
        if expected:
            offered = request.headers.get("Authorization", "")
            if not offered.startswith("Bearer ") or not _token_ok(offered[7:], expected):
                raise Rejected(401, "missing or invalid bearer token")
        return parse_alertmanager(body)

    async def _door(self, source: str, request: web.Request, parse) -> web.Response:
        started = time.perf_counter()
        try:
            body = await _read_body(request)
            delivery = await parse(request, body)
            response = await self._ingest(delivery)
            result = "ok" if delivery.events else "ignored"
        except Rejected as exc:
            result, response = f"rejected_{exc.status}", _error(exc.status, exc.reason)
        except DatabaseUnavailable as exc:
            log.warning("database unavailable, answering 503: %s", exc)
            result = "db_unavailable"
            response = _error(503, "database unavailable, retry later", retry_after=5)
        self.metrics.deliveries.labels(source, result).inc()
        self.metrics.ingest_seconds.labels(source).observe(time.perf_counter() - started)
        return response

    async def _ingest(self, delivery: Delivery) -> web.Response:
        if not delivery.events:
            return web.json_response({"status": "ignored", "ignored": list(delivery.ignored)},
                                     status=202)

        outcomes = await self.committer.run(delivery.events)
        self.ctx.wake_worker()
        return web.json_response({"status": "accepted", "results": [
            {"event": e.event_id, "incident": e.external_id, "outcome": o}
            for e, o in zip(delivery.events, outcomes)]})


async def _read_body(request: web.Request) -> bytes:
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise Rejected(413, f"body over {MAX_BODY // 1024} KiB")
    body = await request.content.read(MAX_BODY + 1)
    if len(body) > MAX_BODY:
        raise Rejected(413, f"body over {MAX_BODY // 1024} KiB")
    return body


def _token_ok(offered: str | None, expected: str) -> bool:
    return bool(expected) and bool(offered) and hmac.compare_digest(offered.encode(),
                                                                   expected.encode())


def _error(status: int, reason: str, retry_after: int | None = None) -> web.Response:
    headers = {"Retry-After": str(retry_after)} if retry_after else None
    return web.json_response({"error": reason}, status=status, headers=headers)
