"""Self-tests for FakeBotConnector, driven by raw HTTP (httpx) and by botbuilder's own clients."""

from __future__ import annotations

from types import SimpleNamespace
from urllib.parse import quote

import httpx
import pytest
from botbuilder.core import TurnContext
from botbuilder.integration.aiohttp import (
    CloudAdapter,
    ConfigurationBotFrameworkAuthentication,
)
from botbuilder.schema import (
    Activity,
    ActivityTypes,
    ChannelAccount,
    ConversationAccount,
    ConversationParameters,
    ConversationReference,
)
from botframework.connector.aio import ConnectorClient
from botframework.connector.auth import MicrosoftAppCredentials
from botframework.connector.models import ErrorResponseException
from botframework.connector.teams import TeamsConnectorClient

from tests.fakes.bot_connector import FakeBotConnector, thread_of

CHANNEL = "19:abc123def456@thread.tacv2"
CHAT = "19:meeting_NjRlMDA@thread.v2"


def message(text: str) -> dict:
    return {"type": "message", "text": text, "from": {"id": "28:bot", "name": "Firebell"}}


def conv_url(base: str, conversation_id: str, suffix: str = "") -> str:
    # Encode like botbuilder/msrest does (':' '@' ';' all percent-encoded).
    return f"{base}/v3/conversations/{quote(conversation_id, safe='')}{suffix}"


@pytest.fixture
async def connector():
    async with FakeBotConnector() as fake:
        yield fake


@pytest.fixture
async def http():
    async with httpx.AsyncClient(timeout=5) as client:
        yield client


def connector_client(connector: FakeBotConnector) -> ConnectorClient:
    """botbuilder's async client (what CloudAdapter uses for messages and rosters)."""
    return ConnectorClient(MicrosoftAppCredentials.empty(), base_url=connector.base_url)


def teams_client(connector: FakeBotConnector) -> TeamsConnectorClient:
    """botbuilder's Teams client (what TeamsInfo uses).  It is synchronous: TeamsInfo
    calls it from async code, blocking the event loop -- fine here because the fake
    serves from its own thread."""
    return TeamsConnectorClient(MicrosoftAppCredentials.empty(), base_url=connector.base_url)


# ---- raw protocol ---------------------------------------------------------------------


async def test_channel_thread_post_reply_update_delete(connector, http):
    created = await http.post(
        f"{connector.base_url}/v3/conversations",
        json={
            "isGroup": True,
            "bot": {"id": "28:bot"},
            "channelData": {"channel": {"id": CHANNEL}, "tenant": {"id": "t1"}},
            "activity": message("SEV1: checkout down"),
            "tenantId": "t1",
        },
    )
    assert created.status_code == 200
    root_id = created.json()["activityId"]
    thread = created.json()["id"]
    assert thread == f"{CHANNEL};messageid={root_id}"
    assert root_id.isdigit() and len(root_id) == 13  # millisecond timestamp like Teams

    posted = await http.post(conv_url(connector.base_url, thread, "/activities"), json=message("update 1"))
    replied = await http.post(
        conv_url(connector.base_url, thread, f"/activities/{root_id}"), json=message("ack")
    )
    ids = [root_id, posted.json()["id"], replied.json()["id"]]
    assert ids == sorted(ids, key=int) and len(set(ids)) == 3

    updated = await http.put(
        conv_url(connector.base_url, thread, f"/activities/{root_id}"),
        json=dict(message("SEV1: checkout down (mitigated)"), id=root_id),
    )
    assert updated.status_code == 200 and updated.json() == {"id": root_id}
    unknown = await http.put(
        conv_url(connector.base_url, thread, "/activities/999"), json=message("x")
    )
    assert unknown.status_code == 404 and "error" in unknown.json()

    texts = [m["text"] for m in connector.messages(thread)]
    assert texts == ["SEV1: checkout down (mitigated)", "update 1", "ack"]
    assert connector.messages(thread)[2]["replyToId"] == root_id
    assert connector.count_by_conversation() == {thread: 3}
    assert [p["kind"] for p in connector.posts] == ["create", "post", "reply"]
    assert len(connector.updates) == 1

    deleted = await http.delete(conv_url(connector.base_url, thread, f"/activities/{ids[1]}"))
    assert deleted.status_code == 200
    assert [m["text"] for m in connector.messages(thread)][1:] == ["ack"]

    # Path parameters are recorded decoded, the raw path keeps the encoding.
    last_post = connector.requests_of("post")[-1]
    assert last_post.params["conversationId"] == thread
    assert "%3B" in last_post.path or "%3b" in last_post.path


async def test_update_through_the_channel_id_finds_the_thread_root(connector, http):
    created = await http.post(
        f"{connector.base_url}/v3/conversations",
        json={"isGroup": True, "channelData": {"channel": {"id": CHANNEL}}, "activity": message("a")},
    )
    root_id = created.json()["activityId"]
    # Same channel, addressed without ';messageid=': Teams accepts it.
    ok = await http.put(
        conv_url(connector.base_url, CHANNEL, f"/activities/{root_id}"), json=message("b")
    )
    assert ok.status_code == 200
    other = await http.put(
        conv_url(connector.base_url, CHAT, f"/activities/{root_id}"), json=message("c")
    )
    assert other.status_code == 404


async def test_unencoded_conversation_ids_are_accepted(connector, http):
    response = await http.post(
        f"{connector.base_url}/v3/conversations/{CHAT}/activities", json=message("hi")
    )
    assert response.status_code == 200
    assert connector.messages(CHAT)[0]["text"] == "hi"


# ---- botbuilder's own clients ------------------------------------------------------------


async def test_botbuilder_connector_client_speaks_the_same_protocol(connector):
    ops = connector_client(connector).conversations
    conv = ConversationAccount(id=CHAT, is_group=True)
    bot = ChannelAccount(id="28:bot", name="Firebell")

    sent = await ops.send_to_conversation(
        CHAT, Activity(type=ActivityTypes.message, text="hello", conversation=conv, from_property=bot)
    )
    reply = await ops.reply_to_activity(
        CHAT, sent.id, Activity(type=ActivityTypes.message, text="re", conversation=conv)
    )
    await ops.update_activity(
        CHAT, sent.id, Activity(type=ActivityTypes.message, id=sent.id, text="hello v2", conversation=conv)
    )
    await ops.delete_activity(CHAT, reply.id)

    assert [m["text"] for m in connector.messages(CHAT)] == ["hello v2"]
    put = connector.requests_of("update")[0]
    assert put.params == {"conversationId": CHAT, "activityId": sent.id}
    assert put.body["text"] == "hello v2"

    with pytest.raises(ErrorResponseException) as missing:
        await ops.update_activity(CHAT, "42", Activity(type="message", id="42", text="x"))
    assert missing.value.response.status_code == 404

    created = await ops.create_conversation(
        ConversationParameters(
            is_group=True,
            bot=bot,
            channel_data={"channel": {"id": CHANNEL}, "tenant": {"id": "t1"}},
            activity=Activity(type=ActivityTypes.message, text="new thread"),
            tenant_id="t1",
        )
    )
    assert created.id == f"{CHANNEL};messageid={created.activity_id}"
    assert connector.messages(created.id)[0]["text"] == "new thread"


async def test_rosters_and_team_lookups(connector):
    alice = connector.make_member("Alice Smith", user_role="user")
    bob = connector.make_member("Bob Jones", email="bob@contoso.example")
    carol = connector.make_member("Carol King")
    connector.add_team("19:team@thread.tacv2", "SRE", channels=[(CHANNEL, "Incidents")], members=[alice, bob, carol])
    client = connector_client(connector)
    thread = f"{CHANNEL};messageid=1700000000000"

    members = await client.conversations.get_conversation_members(thread)
    assert [m.name for m in members] == ["Alice Smith", "Bob Jones", "Carol King"]
    assert members[1].additional_properties["email"] == "bob@contoso.example"

    # Teams resolves a member by its AAD object id too.
    by_aad = await client.conversations.get_conversation_member(CHANNEL, bob["aadObjectId"])
    assert by_aad.id == bob["id"]
    with pytest.raises(ErrorResponseException) as missing:
        await client.conversations.get_conversation_member(CHANNEL, "29:nobody")
    assert missing.value.response.status_code == 404

    page1 = await client.conversations.get_conversation_paged_members(CHANNEL, page_size=2)
    page2 = await client.conversations.get_conversation_paged_members(
        CHANNEL, page_size=2, continuation_token=page1.continuation_token
    )
    assert [m.name for m in page1.members + page2.members] == ["Alice Smith", "Bob Jones", "Carol King"]
    assert page2.continuation_token is None

    channels = teams_client(connector).teams.get_teams_channels("19:team@thread.tacv2")
    assert [(c.id, c.name) for c in channels.conversations] == [
        ("19:team@thread.tacv2", None),
        (CHANNEL, "Incidents"),
    ]
    details = teams_client(connector).teams.get_team_details("19:team@thread.tacv2")
    assert (details.name, details.member_count) == ("SRE", 3)
    assert thread_of(thread) == CHANNEL


async def test_cloud_adapter_proactive_send_and_update_with_app_credentials(monkeypatch):
    """The full outgoing path: CloudAdapter -> MSAL token from the fake's AAD endpoint
    (over TLS, trusted through REQUESTS_CA_BUNDLE) -> authenticated connector calls."""
    async with FakeBotConnector(tls=True, require_auth=True) as connector:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", connector.ca_pem_path)
        config = SimpleNamespace(**connector.bot_settings())
        adapter = CloudAdapter(ConfigurationBotFrameworkAuthentication(config))
        reference = ConversationReference(
            channel_id="msteams",
            service_url=connector.base_url,
            conversation=ConversationAccount(id=CHAT, is_group=True, conversation_type="groupChat"),
            bot=ChannelAccount(id="28:bot", name="Firebell"),
        )

        async def logic(turn_context: TurnContext):
            sent = await turn_context.send_activity("Incident opened")
            await turn_context.update_activity(
                Activity(type=ActivityTypes.message, id=sent.id, text="Incident resolved")
            )

        await adapter.continue_conversation(reference, logic, bot_app_id=connector.app_id)

        assert [m["text"] for m in connector.messages(CHAT)] == ["Incident resolved"]
        assert connector.tokens.issued_count >= 1
        for call in connector.requests_of("post") + connector.requests_of("update"):
            assert call.status == 200 and call.headers["Authorization"].startswith("Bearer ")
        token_call = connector.requests_of("token")[0]
        assert token_call.body["grant_type"] == "client_credentials"
        assert token_call.body["scope"] == "https://api.botframework.com/.default"


async def test_require_auth_refuses_missing_or_foreign_tokens(http):
    async with FakeBotConnector(require_auth=True) as connector:
        url = conv_url(connector.base_url, CHAT, "/activities")
        assert (await http.post(url, json=message("x"))).status_code == 401
        bad = await http.post(url, json=message("x"), headers={"Authorization": "Bearer forged"})
        assert bad.status_code == 401
        token = await http.post(
            f"{connector.base_url}/botframework.com/oauth2/v2.0/token",
            data={
                "grant_type": "client_credentials",
                "client_id": connector.app_id,
                "client_secret": connector.app_password,
                "scope": "https://api.botframework.com/.default",
            },
        )
        assert token.status_code == 200 and token.json()["token_type"] == "Bearer"
        good = await http.post(
            url, json=message("x"), headers={"Authorization": f"Bearer {token.json()['access_token']}"}
        )
        assert good.status_code == 200
        wrong_secret = await http.post(
            f"{connector.base_url}/botframework.com/oauth2/v2.0/token",
            data={"grant_type": "client_credentials", "client_id": connector.app_id,
                  "client_secret": "nope", "scope": "https://api.botframework.com/.default"},
        )
        assert wrong_secret.status_code == 401 and wrong_secret.json()["error"] == "invalid_client"
        assert connector.messages(CHAT) and len(connector.messages(CHAT)) == 1


# ---- fault injection ----------------------------------------------------------------------


async def test_fail_next_429_and_503_only_for_the_matching_kind(connector, http):
    connector.fail_next(1, status=429, retry_after=3, kind="post")
    connector.fail_next(1, status=503, kind="update")
    url = conv_url(connector.base_url, CHAT, "/activities")

    throttled = await http.post(url, json=message("1"))
    assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "3"
    first = await http.post(url, json=message("2"))
    assert first.status_code == 200
    unavailable = await http.put(f"{url}/{first.json()['id']}", json=message("2b"))
    assert unavailable.status_code == 503
    assert [m["text"] for m in connector.messages(CHAT)] == ["2"]  # faults did nothing
    assert [r.status for r in connector.requests] == [429, 200, 503]


async def test_hang_provokes_client_timeout_then_completes(connector):
    connector.hang_next(1, seconds=0.5, kind="post")
    async with httpx.AsyncClient(timeout=0.1) as impatient:
        with pytest.raises(httpx.ReadTimeout):
            await impatient.post(conv_url(connector.base_url, CHAT, "/activities"), json=message("slow"))
    # The server finished the work after the hang: the message exists anyway.
    await connector.wait_for(lambda: connector.messages(CHAT), timeout=2)


async def test_lost_answer_performs_the_operation_but_drops_the_connection(connector, http):
    connector.lose_answer_next(1, kind="post")
    with pytest.raises(httpx.RemoteProtocolError):
        await http.post(conv_url(connector.base_url, CHAT, "/activities"), json=message("ghost"))
    assert [m["text"] for m in connector.messages(CHAT)] == ["ghost"]
    assert connector.requests_of("post")[0].status is None


async def test_botbuilder_retries_429_on_put_but_not_on_post(connector):
    """msrest (urllib3 Retry) silently retries PUT/GET/DELETE on 429/503 and honours
    Retry-After; POST is not retried, so send/reply 429s surface to the caller."""
    ops = connector_client(connector).conversations
    sent = await ops.send_to_conversation(CHAT, Activity(type="message", text="a"))

    connector.fail_next(1, status=429, retry_after=1, kind="update")
    await ops.update_activity(CHAT, sent.id, Activity(type="message", id=sent.id, text="b"))
    assert [r.status for r in connector.requests_of("update")] == [429, 200]

    connector.fail_next(1, status=429, retry_after=1, kind="post")
    with pytest.raises(ErrorResponseException) as throttled:
        await ops.send_to_conversation(CHAT, Activity(type="message", text="c"))
    assert throttled.value.response.status_code == 429
    assert [r.status for r in connector.requests_of("post")] == [200, 429]


async def test_rate_limit_mode_enforces_teams_per_thread_limit(connector, http):
    connector.enforce_rate_limits()
    url = conv_url(connector.base_url, CHAT, "/activities")
    statuses = [(await http.post(url, json=message(str(i)))).status_code for i in range(8)]
    assert statuses == [200] * 7 + [429]  # 7 per second per thread
    assert connector.throttled == 1
    last = await http.post(url, json=message("again"))
    assert last.status_code == 429 and int(last.headers["Retry-After"]) >= 1
    # Another thread has its own budget.
    other = await http.post(conv_url(connector.base_url, CHANNEL, "/activities"), json=message("x"))
    assert other.status_code == 200
    assert connector.count_by_conversation() == {CHAT: 7, CHANNEL: 1}


# ---- housekeeping -------------------------------------------------------------------------


async def test_instances_are_independent_and_wait_for_times_out(http):
    async with FakeBotConnector() as one, FakeBotConnector() as two:
        assert one.base_url != two.base_url
        await http.post(conv_url(one.base_url, CHAT, "/activities"), json=message("only one"))
        assert one.count_by_conversation() == {CHAT: 1} and two.count_by_conversation() == {}
        with pytest.raises(TimeoutError):
            await two.wait_for(lambda: two.posts, timeout=0.1)


async def test_go_down_refuses_connections_and_come_back_reuses_the_port(connector, http):
    url = conv_url(connector.base_url, CHAT, "/activities")
    assert (await http.post(url, json=message("1"))).status_code == 200
    await connector.go_down()
    with pytest.raises(httpx.ConnectError):  # even over the kept-alive connection
        await http.post(url, json=message("2"))
    await connector.come_back()
    assert (await http.post(url, json=message("3"))).status_code == 200
    assert [m["text"] for m in connector.messages(CHAT)] == ["1", "3"]
