"""The webhook doors: POST /webhooks/pagerduty and POST /webhooks/alertmanager.

Order matters: the whole body up to the size limit (handlers/ingest/body.py), then
authentication (before anything is parsed), then parsing, then one committed transaction
(handlers/ingest/batch.py), then the answer. The answer never waits for Teams or anything else
outside; if the database is unreachable the answer is 503 so the sender retries.
"""
from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from typing import Mapping, Sequence

from aiohttp import web

from handlers.context import Context
from handlers.incident.heartbeats import record_beats
from handlers.ingest.alertmanager import parse_alertmanager
from handlers.ingest.batch import ingest_batch
from handlers.ingest.body import answered, door
from handlers.ingest.delivery import Delivery, Rejected
from handlers.ingest.pagerduty import parse_pagerduty, parse_pagerduty_v2
from handlers.ingest.signature import signature_matches
from handlers.reads.bearer import bearer_matches
from incidents.heartbeats import watchdog_of
from storage.group_commit import GroupCommitter

MAX_BODY = 256 * 1024


@dataclass(frozen=True)
class WebhookSecrets:
    pagerduty: Sequence[str] = ()
    pagerduty_v2_token: str = ""
    alertmanager_token: str = ""
    # heartbeat name -> its bearer token, from the variable its catalog entry's token_env names
    heartbeats: Mapping[str, str] = field(default_factory=dict)


class WebhookDoors:
    """The doors and what they feed: every accepted delivery goes to `ingest_batch`, several
    deliveries per transaction (group commit)."""

    def __init__(self, ctx: Context, secrets: WebhookSecrets):
        self.ctx, self.secrets, self.metrics = ctx, secrets, ctx.metrics
        self.committer = GroupCommitter(
            ctx.db, lambda conn, deliveries: ingest_batch(ctx, conn, deliveries))

    def routes(self) -> list[web.RouteDef]:
        return [door("/webhooks/pagerduty", MAX_BODY, self.pagerduty,
                     refused=self._refused("pagerduty")),
                door("/webhooks/alertmanager", MAX_BODY, self.alertmanager,
                     refused=self._refused("alertmanager"))]

    async def pagerduty(self, request: web.Request, body: bytes) -> web.Response:
        return await self._door("pagerduty", request, body, self._pagerduty_delivery)

    async def alertmanager(self, request: web.Request, body: bytes) -> web.Response:
        return await self._door("alertmanager", request, body, self._alertmanager_delivery)

    def _refused(self, source: str):
        def count(exc: Rejected) -> None:
            self.metrics.deliveries.labels(source, f"rejected_{exc.status}").inc()
        return count

    async def _pagerduty_delivery(self, request: web.Request, body: bytes) -> Delivery:
        delivery_id = request.headers.get("X-Webhook-Id")
        if signature_matches(request.headers.get("X-PagerDuty-Signature"), body,
                             self.secrets.pagerduty):
            return parse_pagerduty(body, delivery_id)
        # PagerDuty never signed V2; a V2 body may instead carry ?token= in the URL, and that
        # token lets in V2 bodies only.
        if _token_ok(request.query.get("token"), self.secrets.pagerduty_v2_token):
            return parse_pagerduty_v2(body, delivery_id)
        raise Rejected(401, "missing or invalid X-PagerDuty-Signature")

    async def _alertmanager_delivery(self, request: web.Request, body: bytes) -> Delivery:
        expected = self.secrets.alertmanager_token
        if expected:
            if not bearer_matches(request, expected):
                raise Rejected(401, "missing or invalid bearer token")
        beats = self.ctx.catalog.heartbeats.values()
        return parse_alertmanager(body, lambda labels: watchdog_of(beats, labels))

    async def _door(self, source: str, request: web.Request, body: bytes,
                    parse) -> web.Response:
        async def work() -> tuple[str, web.Response]:
            delivery = await parse(request, body)
            response = await self._ingest(delivery)
            return ("ok" if delivery.events or delivery.beats else "ignored"), response
        return await answered(self.metrics, source, work)

    async def _ingest(self, delivery: Delivery) -> web.Response:
        if delivery.beats:  # Alertmanager's Watchdog: a heartbeat, not an incident
            await record_beats(self.ctx, delivery.beats)
            if not delivery.events:
                return web.json_response({"status": "beat", "heartbeats": list(delivery.beats)})
        if not delivery.events:
            return web.json_response({"status": "ignored", "ignored": list(delivery.ignored)},
                                     status=202)

        outcomes = await self.committer.run(delivery.events)
        self.ctx.wake_worker()
        return web.json_response({"status": "accepted", "results": [
            {"event": e.event_id, "incident": e.external_id, "outcome": o}
            for e, o in zip(delivery.events, outcomes)]})


def _token_ok(offered: str | None, expected: str) -> bool:
    return bool(expected) and bool(offered) and hmac.compare_digest(offered.encode(),
                                                                   expected.encode())
