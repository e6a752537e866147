"""FakeBotConnector speaks the calls Firebell makes, as botbuilder's own clients and raw HTTP
send them: post, reply, update (Teams ids percent-encoded), rosters, the app token and its check,
and Teams' per-thread rate limits."""
from __future__ import annotations

from types import SimpleNamespace
from urllib.parse import quote

import pytest
from botbuilder.core import TurnContext
from botbuilder.integration.aiohttp import CloudAdapter, ConfigurationBotFrameworkAuthentication
from botbuilder.schema import (Activity, ActivityTypes, ChannelAccount, ConversationAccount,
                               ConversationReference)
from botframework.connector.aio import ConnectorClient
from botframework.connector.auth import MicrosoftAppCredentials
from botframework.connector.models import ErrorResponseException

from tests.fakes.bot_connector import FakeBotConnector

CHANNEL = "19:abc123def456@thread.tacv2"
THREAD = f"{CHANNEL};messageid=1700000000000"
CHAT = "19:meeting_NjRlMDA@thread.v2"


def message(text: str) -> dict:
    return {"type": "message", "text": text, "from": {"id": "28:bot", "name": "Firebell"}}


def conv_url(base: str, conversation_id: str, suffix: str = "") -> str:
    # Encoded as botbuilder and Firebell send them (':' '@' ';' all percent-encoded).
    return f"{base}/v3/conversations/{quote(conversation_id, safe='')}{suffix}"


@pytest.fixture
async def connector():
    async with FakeBotConnector() as fake:
        yield fake


async def test_post_reply_update_in_a_channel_thread(connector, http):
    base = connector.base_url
    posted = await http.post(conv_url(base, THREAD, "/activities"), json=message("SEV1"))
    root = posted.json()["id"]
    assert root.isdigit() and len(root) == 13  # a millisecond timestamp, like Teams'
    replied = await http.post(conv_url(base, THREAD, f"/activities/{root}"), json=message("ack"))
    assert int(replied.json()["id"]) > int(root)
    # An update may address the message through its channel: Teams accepts it.
    updated = await http.put(conv_url(base, CHANNEL, f"/activities/{root}"),
                             json=dict(message("SEV1 (mitigated)"), id=root))
    assert updated.status_code == 200 and updated.json() == {"id": root}

    assert [m["text"] for m in connector.messages(THREAD)] == ["SEV1 (mitigated)", "ack"]
    assert connector.messages(THREAD)[1]["replyToId"] == root
    assert [p["kind"] for p in connector.posts] == ["post", "reply"] and len(connector.updates) == 1
    assert connector.count_by_conversation() == {THREAD: 2}
    assert connector.requests_of("reply")[0].params == {"conversationId": THREAD,
                                                        "activityId": root}


async def test_unknown_messages_and_bodies_that_are_no_activity_are_refused(connector, http):
    base = connector.base_url
    posted = (await http.post(conv_url(base, THREAD, "/activities"), json=message("a"))).json()
    elsewhere = await http.put(conv_url(base, CHAT, f"/activities/{posted['id']}"),
                               json=message("b"))
    assert elsewhere.status_code == 404 and elsewhere.json()["error"]["code"] == "ActivityNotFound"
    assert (await http.put(conv_url(base, THREAD, "/activities/999"),
                           json=message("c"))).status_code == 404
    no_type = await http.post(conv_url(base, THREAD, "/activities"), json={"text": "x"})
    assert no_type.status_code == 400 and no_type.json()["error"]["code"] == "BadArgument"
    assert [m["text"] for m in connector.messages(THREAD)] == ["a"]


async def test_botbuilders_client_and_rosters(connector):
    client = ConnectorClient(MicrosoftAppCredentials.empty(), base_url=connector.base_url)
    ops = client.conversations
    sent = await ops.send_to_conversation(CHAT, Activity(type="message", text="hi"))
    await ops.reply_to_activity(CHAT, sent.id, Activity(type="message", text="re"))
    await ops.update_activity(
        CHAT, sent.id, Activity(type=ActivityTypes.message, id=sent.id, text="hi v2"))
    assert [m["text"] for m in connector.messages(CHAT)] == ["hi v2", "re"]

    connector.set_roster(CHANNEL, [{"id": "29:a", "name": "Alice", "email": "a@contoso.example"}])
    (alice,) = await ops.get_conversation_members(THREAD)  # any thread: its channel's roster
    assert alice.name == "Alice" and alice.additional_properties["email"] == "a@contoso.example"
    with pytest.raises(ErrorResponseException) as unknown:
        await ops.get_conversation_members(CHAT)
    assert unknown.value.response.status_code == 404


async def test_cloud_adapter_sends_and_updates_with_an_app_token(monkeypatch):
    """botbuilder's outgoing path with app credentials: MSAL gets a token from the stand-in's AAD
    endpoint (TLS, trusted through REQUESTS_CA_BUNDLE), then authenticated connector calls."""
    async with FakeBotConnector(tls=True, require_auth=True) as connector:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", connector.ca_pem_path)
        adapter = CloudAdapter(ConfigurationBotFrameworkAuthentication(
            SimpleNamespace(**connector.bot_settings())))
        reference = ConversationReference(
            channel_id="msteams", service_url=connector.base_url,
            conversation=ConversationAccount(id=CHAT, is_group=True, conversation_type="groupChat"),
            bot=ChannelAccount(id="28:bot", name="Firebell"))

        async def logic(turn_context: TurnContext):
            sent = await turn_context.send_activity("Incident opened")
            await turn_context.update_activity(
                Activity(type=ActivityTypes.message, id=sent.id, text="Incident resolved"))

        await adapter.continue_conversation(reference, logic, bot_app_id=connector.app_id)

        assert [m["text"] for m in connector.messages(CHAT)] == ["Incident resolved"]
        for call in connector.requests_of("post") + connector.requests_of("update"):
            assert call.status == 200 and call.headers["Authorization"].startswith("Bearer ")
        token_call = connector.requests_of("token")[0]
        assert token_call.body["grant_type"] == "client_credentials"
        assert token_call.body["scope"] == "https://api.botframework.com/.default"


async def test_require_auth_refuses_missing_forged_and_expired_tokens(http):
    async with FakeBotConnector(require_auth=True) as connector:
        url = conv_url(connector.base_url, CHAT, "/activities")
        form = {"grant_type": "client_credentials", "client_id": connector.app_id,
                "client_secret": connector.app_password,
                "scope": "https://api.botframework.com/.default"}
        token_url = f"{connector.base_url}/botframework.com/oauth2/v2.0/token"
        wrong_secret = await http.post(token_url, data={**form, "client_secret": "nope"})
        assert wrong_secret.status_code == 401 and wrong_secret.json()["error"] == "invalid_client"
        token = (await http.post(token_url, data=form)).json()["access_token"]

        assert (await http.post(url, json=message("x"))).status_code == 401
        forged = await http.post(url, json=message("x"), headers={"Authorization": "Bearer forged"})
        assert forged.status_code == 401
        good = await http.post(url, json=message("x"), headers={"Authorization": f"Bearer {token}"})
        assert good.status_code == 200
        connector.tokens.expire_all()
        expired = await http.post(url, json=message("y"),
                                  headers={"Authorization": f"Bearer {token}"})
        assert expired.status_code == 401 and len(connector.messages(CHAT)) == 1


async def test_rate_limits_are_per_thread_and_answer_retry_after(connector, http):
    connector.enforce_rate_limits()
    url = conv_url(connector.base_url, CHAT, "/activities")
    statuses = [(await http.post(url, json=message(str(i)))).status_code for i in range(8)]
    assert statuses == [200] * 7 + [429]  # 7 a second per thread
    again = await http.post(url, json=message("again"))
    assert again.status_code == 429 and int(again.headers["Retry-After"]) >= 1
    assert connector.throttled == 2
    other = await http.post(conv_url(connector.base_url, THREAD, "/activities"), json=message("x"))
    assert other.status_code == 200
    assert connector.count_by_conversation() == {CHAT: 7, THREAD: 1}
