"""A running Firebell for protocol-level tests: the real app on a real port, talking to a real
database and to a fake Bot Connector (an HTTP server that records what the bot sends, as the
Playground's connector does). Tests post Activity JSON and webhook bytes at it."""
from __future__ import annotations

import asyncio
import itertools
import json
import time
from dataclasses import replace
from datetime import timedelta
from typing import Any

import aiohttp
from aiohttp import web
from sqlalchemy import func, select

from app import Firebell, Settings
from bot.adapter import BotSettings
from handlers.context import Policy
from handlers.ingest.doors import WebhookSecrets
from incidents.model import Incident
from scheduler.worker import RetryPolicy
from storage import incidents as store
from storage import timeline
from storage.schema import outbox
from handlers.ingest.signature import sign
from tests.conftest import CATALOG, FIXTURES, fixture_bytes
from tests.fakes.bot_connector import FakeBotConnector

SECRET = "whsec-test-secret"
HEARTBEAT_TOKEN = "hb-alert-pipeline-token"
TENANT = "00000000-0000-0000-0000-0000000d1e55"
TEAM = "19:shopfront-team@thread.tacv2"
BOT = {"id": "28:firebell-bot", "name": "Firebell"}
CHANNELS = {"checkout": "19:checkout-incidents@thread.tacv2",
            "payments": "19:payments-incidents@thread.tacv2",
            "general": "19:shopfront-team@thread.tacv2",
            "search": "19:search-incidents@thread.tacv2"}
HEADERS = json.loads((FIXTURES / "headers.json").read_bytes())

PEOPLE = {  # Teams users of the test tenant; e-mails match the catalog's people
    "priya": ("Priya Raman", "priya.raman@shopfront.example"),
    "mei": ("Mei Tanaka", "mei.tanaka@shopfront.example"),
    "sarah": ("Sarah Kim", "sarah.kim@shopfront.example"),
    "tom": ("Tom Brennan", "tom.brennan@shopfront.example"),
    "ana": ("Ana Costa", "ana.costa@shopfront.example"),
    "guest": ("Guest User", "guest@elsewhere.example"),
}


def user(key: str) -> dict[str, str]:
    name, _ = PEOPLE[key]
    return {"id": f"29:{key}", "name": name, "aadObjectId": f"aad-{key}"}


def roster() -> list[dict[str, Any]]:
    return [{"id": f"29:{k}", "name": n, "aadObjectId": f"aad-{k}", "email": e,
             "userPrincipalName": e, "tenantId": TENANT} for k, (n, e) in PEOPLE.items()]


def make_settings(database_url: str, **changes: Any) -> Settings:
    policy = Policy(card_update_interval=timedelta(seconds=0.2),
                    public_base_url="http://firebell.test")
    settings = Settings(database_url=database_url, catalog_path=str(CATALOG),
                        webhooks=WebhookSecrets(pagerduty=(SECRET,), pagerduty_v2_token="v2-token",
                                                alertmanager_token="am-token",
                                                heartbeats={"alert-pipeline": HEARTBEAT_TOKEN}),
                        public_base_url="http://firebell.test", bot=BotSettings(), policy=policy,
                        retry=RetryPolicy(max_attempts=4, base_delay=0.05, max_delay=0.5),
                        worker_poll_seconds=0.05, log_format="text")
    return replace(settings, **changes)


class Harness:
    def __init__(self, settings: Settings, connector: FakeBotConnector, *,
                 authorize: Any = None, tenant: str = TENANT):
        self.settings = settings
        self.connector = connector
        # authorize(activity) -> Authorization header value, when the bot checks JWTs.
        self.authorize = authorize
        self.tenant = tenant
        self._ids = itertools.count(1_700_000_000_000)

    async def start(self) -> "Harness":
        self.firebell = Firebell(self.settings)
        self.app = self.firebell.web_app()
        self.runner = web.AppRunner(self.app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        self.http = aiohttp.ClientSession()
        # Firebell is added to the team first, as in Teams: that is when it learns the roster.
        await self.send(self.install())
        await self.settle()
        return self

    async def stop(self) -> None:
        await self.http.close()
        await self.runner.cleanup()

    @property
    def ctx(self):
        return self.firebell.ctx

    # -- webhooks -----------------------------------------------------------------------------
    async def pagerduty(self, name: str, *, body: bytes | None = None,
                        headers: dict[str, str] | None = None, query: str = "") -> aiohttp.ClientResponse:
        body = fixture_bytes(name) if body is None else body
        sent = dict(HEADERS.get(name, {"Content-Type": "application/json"}))
        sent.update(headers or {})
        sent = {k: v for k, v in sent.items() if v is not None}
        async with self.http.post(f"{self.url}/webhooks/pagerduty{query}", data=body,
                                  headers=sent) as resp:
            await resp.read()
            return resp

    async def deliver(self, body: bytes) -> None:
        """A PagerDuty V3 delivery of `body` (made up by a test), signed: it must be accepted."""
        resp = await self.pagerduty("x", body=body, headers={
            "X-PagerDuty-Signature": sign(SECRET, body), "Content-Type": "application/json"})
        assert resp.status == 200

    async def alertmanager(self, name: str, *, body: bytes | None = None,
                           token: str | None = "am-token") -> aiohttp.ClientResponse:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        async with self.http.post(f"{self.url}/webhooks/alertmanager",
                                  data=fixture_bytes(name) if body is None else body,
                                  headers=headers) as resp:
            await resp.read()
            return resp

    # -- Teams activities -------------------------------------------------------------------------
    def channel_message(self, text: str, *, channel: str = "checkout", who: str = "priya",
                        mention: bool = True) -> dict[str, Any]:
        activity_id = str(next(self._ids))
        channel_id = CHANNELS[channel]
        body = f"<at>Firebell</at> {text}" if mention else text
        return {
            "type": "message", "id": activity_id, "channelId": "msteams",
            "serviceUrl": self.connector.base_url, "from": user(who), "recipient": BOT,
            "conversation": {"id": f"{channel_id};messageid={activity_id}",
                             "conversationType": "channel", "isGroup": True,
                             "tenantId": self.tenant},
            "text": body,
            "entities": [{"type": "mention", "text": "<at>Firebell</at>", "mentioned": BOT}]
            if mention else [],
            "channelData": {"channel": {"id": channel_id, "name": channel},
                            "team": {"id": TEAM, "name": "Shopfront"},
                            "tenant": {"id": self.tenant}},
        }

    def personal_message(self, text: str, *, who: str = "priya") -> dict[str, Any]:
        return {
            "type": "message", "id": str(next(self._ids)), "channelId": "msteams",
            "serviceUrl": self.connector.base_url, "from": user(who), "recipient": BOT,
            "conversation": {"id": f"a:personal-{who}", "conversationType": "personal",
                             "tenantId": TENANT},
            "text": text, "channelData": {"tenant": {"id": TENANT}},
        }

    def card_click(self, verb: str, data: dict[str, Any], *, channel: str = "checkout",
                   who: str = "priya", reply_to: str | None = None) -> dict[str, Any]:
        activity = self.channel_message("", channel=channel, who=who, mention=False)
        activity.update(type="invoke", name="adaptiveCard/action", text=None,
                        replyToId=reply_to or "0",
                        value={"action": {"type": "Action.Execute", "verb": verb, "data": data},
                               "trigger": "manual"})
        return activity

    def install(self, *, channel: str = "general") -> dict[str, Any]:
        activity = self.channel_message("", channel=channel, mention=False)
        activity.update(type="conversationUpdate", text=None, membersAdded=[BOT],
                        channelData={**activity["channelData"], "eventType": "teamMemberAdded"})
        return activity

    async def send(self, activity: dict[str, Any], *,
                   headers: dict[str, str] | None = None) -> tuple[int, Any]:
        if headers is None and self.authorize:
            headers = {"Authorization": self.authorize(activity)}
        async with self.http.post(f"{self.url}/api/messages", json=activity,
                                  headers=headers) as resp:
            raw = await resp.read()
            try:
                return resp.status, json.loads(raw) if raw else None
            except ValueError:
                return resp.status, raw.decode(errors="replace")

    async def say(self, text: str, **kw: Any) -> dict[str, Any]:
        """Send a channel message and return the bot's reply activity: its reply to this very
        message (made within the turn, so before `send` returns), else the last it posted (a
        card posted below instead). Not simply the last: an outbox post may land meanwhile."""
        before = len(self.connector.requests_of("reply")) + len(self.connector.requests_of("post"))
        activity = self.channel_message(text, **kw)
        status, _ = await self.send(activity)
        assert status in (200, 201), status
        replies = [r for r in self.connector.requests_of("reply")
                   if r.params.get("activityId") == activity["id"]]
        if replies:
            return replies[-1].body
        await self.connector.wait_for(lambda: len(self.connector.requests_of("reply"))
                                      + len(self.connector.requests_of("post")) > before)
        last = (self.connector.requests_of("reply") + self.connector.requests_of("post"))
        return max(last, key=lambda r: r.time).body

    async def subscribe(self, team: str, channel: str | None = None, who: str = "sarah") -> None:
        """Route a team's incidents to a channel (Sarah, an incident commander, may)."""
        reply = await self.say(f"incident subscribe {team}", channel=channel or team, who=who)
        assert "now gets" in reply["text"], reply

    # -- state ------------------------------------------------------------------------------------------
    async def settle(self, timeout: float = 10.0, horizon: float = 3.0) -> None:
        """Wait until the outbox has nothing due within `horizon` seconds (queued follow-ups,
        coalesced card updates and short retries have run)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            async with self.ctx.db.read() as conn:
                busy = (await conn.execute(select(func.count()).select_from(outbox).where(
                    outbox.c.status.in_(["pending", "running"]),
                    outbox.c.run_after <= self.ctx.now() + timedelta(seconds=horizon)))
                ).scalar_one()
            if not busy:
                return
            self.firebell.worker.wake()
            await asyncio.sleep(0.05)
        raise TimeoutError("outbox did not settle")

    async def incident(self, incident_id: int) -> Incident:
        async with self.ctx.db.read() as conn:
            found = await store.get(conn, incident_id)
        assert found is not None, f"INC-{incident_id} not found"
        return found

    async def incidents(self) -> list[Incident]:
        async with self.ctx.db.read() as conn:
            return await store.list_recent(conn, statuses=None, team=None, limit=1000)

    async def timeline(self, incident_id: int) -> list[dict[str, Any]]:
        async with self.ctx.db.read() as conn:
            return await timeline.entries(conn, incident_id)

    def cards_in(self, channel: str) -> list[dict[str, Any]]:
        """The current Adaptive Card of each message in a channel (after updates)."""
        out = []
        channel_id = CHANNELS[channel]
        threads = dict.fromkeys(p["conversation_id"] for p in self.connector.posts
                                if p["conversation_id"].split(";")[0] == channel_id)
        activities = [a for cid in threads for a in self.connector.messages(cid)]
        for activity in activities:
            for att in activity.get("attachments") or []:
                if att.get("contentType") == "application/vnd.microsoft.card.adaptive":
                    out.append(att["content"])
        return out


def card_text(card: dict[str, Any]) -> str:
    """All visible text of a card, for assertions."""
    parts: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict) and node.get("type") == "RichTextBlock":
            parts.append("".join(run.get("text", "") for run in node.get("inlines", [])))
            return
        if isinstance(node, dict):
            for key in ("text", "title", "value"):
                if isinstance(node.get(key), str):
                    parts.append(node[key])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
    walk(card.get("body", []))
    walk(card.get("actions", []))
    return "\n".join(parts)
