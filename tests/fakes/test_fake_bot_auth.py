"""botbuilder's REAL inbound JWT validation against FakeBotFrameworkIdentity.

A tiny aiohttp bot (CloudAdapter + ConfigurationBotFrameworkAuthentication + a
trivial ActivityHandler) receives activities with various tokens.  Valid ones run
the turn (and its reply reaches a FakeBotConnector with app credentials); every
invalid one is refused and the turn does not run.

What botbuilder 4.17.1 answers, pinned here (see bot_auth.py for why):
  wrong audience / issuer / serviceurl claim, non-Bearer scheme -> 401 (PermissionError)
  NO Authorization header at all                                -> 500 (AttributeError: the
      parameterized authenticator gets "" from CloudAdapter, returns no identity, then
      reads identity.claims)
  expired token                                                 -> 500 (jwt.ExpiredSignatureError)
  unknown kid                                                   -> 500 (IndexError in key lookup)
  published kid, forged signature                               -> 500 (jwt.InvalidSignatureError)
  key not endorsed for the channel                              -> 500 (Exception)
  not a JWT at all                                              -> 500 (jwt.DecodeError)
In every case the turn does not run.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
import trustme
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from botbuilder.core import ActivityHandler, TurnContext
from botbuilder.integration.aiohttp import (
    CloudAdapter,
    ConfigurationBotFrameworkAuthentication,
)
from botframework.connector.auth.jwt_token_extractor import JwtTokenExtractor

from tests.fakes.bot_auth import FakeBotFrameworkIdentity
from tests.fakes.bot_connector import FakeBotConnector

APP_ID = "5f2b0f1e-0000-4000-8000-00000000f1re"
CHAT = "19:war-room@thread.v2"


class EchoBot(ActivityHandler):
    def __init__(self) -> None:
        self.turns: list[str] = []

    async def on_message_activity(self, turn_context: TurnContext):
        self.turns.append(turn_context.activity.text)
        await turn_context.send_activity(f"echo: {turn_context.activity.text}")


def make_bot_app(config) -> tuple[web.Application, EchoBot]:
    adapter = CloudAdapter(ConfigurationBotFrameworkAuthentication(config))
    bot = EchoBot()
    bot.errors = []  # exceptions that escaped CloudAdapter.process (aiohttp answers 500)

    async def messages(request: web.Request) -> web.Response:
        try:
            return await adapter.process(request, bot)
        except web.HTTPException:
            raise
        except Exception as error:
            bot.errors.append(type(error).__name__)
            raise

    app = web.Application()
    app.router.add_post("/api/messages", messages)
    return app, bot


def teams_activity(service_url: str, text: str = "ping") -> dict:
    return {
        "type": "message",
        "id": "1700000000001",
        "channelId": "msteams",
        "serviceUrl": service_url,
        "timestamp": datetime.now(timezone.utc).isoformat(),
        "from": {"id": "29:user", "name": "Alice", "aadObjectId": "aad-alice"},
        "recipient": {"id": f"28:{APP_ID}", "name": "Firebell"},
        "conversation": {"id": CHAT, "conversationType": "groupChat", "isGroup": True, "tenantId": "t1"},
        "channelData": {"tenant": {"id": "t1"}},
        "text": text,
    }


@pytest.fixture(autouse=True)
def sdk_key_cache(monkeypatch):
    """These tests pin botbuilder's own behaviour. Firebell's adapter replaces botbuilder's key
    cache for the whole process (bot/signing_keys.py): put the SDK's back for them."""
    from botframework.connector.auth import jwt_token_extractor

    from bot.signing_keys import SDK_OPEN_ID_METADATA
    monkeypatch.setattr(jwt_token_extractor, "_OpenIdMetadata", SDK_OPEN_ID_METADATA)


@pytest.fixture
async def world(monkeypatch):
    """Identity (http) + connector (TLS, auth required) + the bot under test."""
    async with FakeBotFrameworkIdentity(app_id=APP_ID) as identity, FakeBotConnector(
        tls=True, require_auth=True, app_id=APP_ID
    ) as connector:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", connector.ca_pem_path)
        app, bot = make_bot_app(identity.config(connector=connector))
        async with TestClient(TestServer(app)) as client:

            async def deliver(authorization: str | None, service_url: str = connector.base_url):
                headers = {"Authorization": authorization} if authorization else {}
                return await client.post(
                    "/api/messages", json=teams_activity(service_url), headers=headers
                )

            yield identity, connector, bot, deliver


async def test_valid_token_runs_the_turn_and_the_reply_reaches_the_connector(world):
    identity, connector, bot, deliver = world
    response = await deliver(identity.auth_header(service_url=connector.base_url))
    assert response.status == 201
    assert bot.turns == ["ping"]
    [reply] = connector.messages(CHAT)
    assert reply["text"] == "echo: ping" and reply["replyToId"] == "1700000000001"
    assert connector.requests_of("reply")[0].headers["Authorization"].startswith("Bearer ")
    assert [r.kind for r in identity.requests] == ["openid_metadata", "keys"]

    # Second activity: botbuilder serves keys from its cache (no new fetch).
    assert (await deliver(identity.auth_header(service_url=connector.base_url))).status == 201
    assert len(identity.requests) == 2 and len(bot.turns) == 2


@pytest.mark.parametrize(
    "case, expected_status, escaped",
    [
        ("wrong audience", 401, []),
        ("wrong issuer", 401, []),
        ("serviceurl claim differs from activity", 401, []),
        ("serviceurl claim missing", 401, []),
        ("not a Bearer scheme", 401, []),
        ("no token", 500, ["AttributeError"]),
        ("expired", 500, ["ExpiredSignatureError"]),
        ("signed by an unknown key", 500, ["IndexError"]),
        ("published kid, forged signature", 500, ["InvalidSignatureError"]),
        ("key not endorsed for msteams", 500, ["Exception"]),
        ("not a JWT", 500, ["DecodeError"]),
    ],
)
async def test_invalid_tokens_are_refused_and_the_turn_does_not_run(world, case, expected_status, escaped):
    identity, connector, bot, deliver = world
    service_url = connector.base_url
    tokens = {
        "no token": lambda: None,
        "not a Bearer scheme": lambda: "Basic " + identity.sign(service_url=service_url),
        "not a JWT": lambda: "Bearer not-a-jwt",
        "wrong audience": lambda: identity.auth_header(service_url=service_url, audience="someone-else"),
        "wrong issuer": lambda: identity.auth_header(service_url=service_url, issuer="https://evil.example"),
        "serviceurl claim differs from activity": lambda: identity.auth_header(
            service_url="https://smba.trafficmanager.net/amer/"
        ),
        "serviceurl claim missing": lambda: identity.auth_header(
            service_url=service_url, claims_overrides={"serviceurl": None}
        ),
        "expired": lambda: identity.auth_header(service_url=service_url, expired=True),
        "signed by an unknown key": lambda: identity.auth_header(
            service_url=service_url, key=identity.new_key(publish=False)
        ),
        "published kid, forged signature": lambda: identity.auth_header(
            service_url=service_url, key=identity.new_key(publish=False), kid=identity.default_key.kid
        ),
        "key not endorsed for msteams": lambda: identity.auth_header(
            service_url=service_url, key=identity.new_key(endorsements=["webchat"])
        ),
    }
    response = await deliver(tokens[case]())
    assert response.status == expected_status, await response.text()
    assert bot.errors == escaped
    assert bot.turns == []
    assert connector.posts == []


async def test_key_rotation_needs_a_cache_reset():
    """botbuilder caches the key set per metadata URL (class-level) and refetches on
    an unknown kid only if its copy is older than an hour."""
    async with FakeBotFrameworkIdentity(app_id=APP_ID) as identity:
        app, bot = make_bot_app(identity.config())
        bot.on_message_activity = _count_only(bot)
        async with TestClient(TestServer(app)) as client:
            url = "https://smba.example/teams/"

            async def deliver(header):
                return await client.post("/api/messages", json=teams_activity(url), headers={"Authorization": header})

            assert (await deliver(identity.auth_header(service_url=url))).status == 201
            rotated = identity.new_key()  # published after botbuilder fetched the keys
            assert (await deliver(identity.auth_header(service_url=url, key=rotated))).status == 500
            identity.forget_cached_metadata()
            assert (await deliver(identity.auth_header(service_url=url, key=rotated))).status == 201
            assert len(bot.turns) == 2
        assert identity.metadata_url in JwtTokenExtractor.metadataCache
    assert identity.metadata_url not in JwtTokenExtractor.metadataCache  # stop() cleans up


async def test_identity_over_tls_with_the_throwaway_ca(monkeypatch):
    """The metadata fetch uses requests: REQUESTS_CA_BUNDLE makes it trust trustme's CA."""
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    ca = trustme.CA()
    async with FakeBotFrameworkIdentity(app_id=APP_ID, tls=True, ca=ca) as identity:
        assert identity.metadata_url.startswith("https://")
        app, bot = make_bot_app(identity.config())
        bot.on_message_activity = _count_only(bot)
        async with TestClient(TestServer(app)) as client:
            url = "https://smba.example/teams/"
            header = {"Authorization": identity.auth_header(service_url=url)}

            untrusted = await client.post("/api/messages", json=teams_activity(url), headers=header)
            assert untrusted.status == 500  # SSLError from requests: CA not trusted yet
            identity.forget_cached_metadata()

            monkeypatch.setenv("REQUESTS_CA_BUNDLE", identity.ca_pem_path)
            trusted = await client.post("/api/messages", json=teams_activity(url), headers=header)
            assert trusted.status == 201 and bot.turns == ["ping"]


def _count_only(bot: EchoBot):
    """Replace the echo with a silent turn (these tests have no connector)."""

    async def on_message_activity(turn_context: TurnContext):
        bot.turns.append(turn_context.activity.text)

    return on_message_activity
