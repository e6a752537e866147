"""GraphClient against FakeGraph (a real HTTP server on 127.0.0.1): war rooms made once, even
when an answer is lost; every failure shaped for the outbox."""
from __future__ import annotations

import pytest

from integrations.errors import PermanentFailure, TemporaryFailure
from integrations.graph import GraphClient, odata_string
from tests.fakes.graph import FakeGraph

TOPIC = "INC-7 checkout down"


@pytest.fixture
async def graph():
    async with FakeGraph() as fake:
        fake.alice = fake.add_user("Alice Smith")
        fake.bob = fake.add_user("Bob Jones", upn="Bob.Jones@contoso.example")
        fake.carol = fake.add_user("Carol King")
        fake.app = fake.add_teams_app("f1re6e11-0000-4000-8000-000000000001", "Firebell")
        yield fake


def make_client(graph: FakeGraph, **overrides) -> GraphClient:
    settings = dict(tenant_id=graph.tenant_id, client_id=graph.client_id,
                    client_secret=graph.client_secret, base_url=graph.graph_url,
                    authority_host=graph.base_url, timeout=2)
    return GraphClient(**{**settings, **overrides})


@pytest.fixture
async def client(graph):
    client = make_client(graph)
    yield client
    await client.close()


def upns(graph: FakeGraph, *users) -> list[str]:
    return [u["userPrincipalName"] for u in (users or (graph.alice, graph.bob, graph.carol))]


async def test_war_room_is_created_once_and_found_afterwards(graph, client):
    first = await client.ensure_war_room(TOPIC, upns(graph))
    assert first.created and first.topic == TOPIC
    assert first.id.startswith("19:") and first.web_url.startswith("https://teams.microsoft.com/")
    assert sorted(graph.member_ids(first.id)) == sorted(u["id"] for u in (graph.alice, graph.bob, graph.carol))

    again = await client.ensure_war_room(TOPIC, upns(graph))
    assert (again.id, again.created) == (first.id, False)
    assert len(graph.chats_with_topic(TOPIC)) == 1
    sent = graph.requests_of("create_chat")[0].body
    assert sent["chatType"] == "group"
    assert sent["members"][0]["user@odata.bind"] == (
        f"https://graph.microsoft.com/v1.0/users('{graph.alice['userPrincipalName']}')")


async def test_lost_answer_then_retry_makes_one_chat(graph, client):
    graph.lose_answer_next(kind="create_chat")
    with pytest.raises(TemporaryFailure):
        await client.ensure_war_room(TOPIC, upns(graph))
    assert len(graph.chats_with_topic(TOPIC)) == 1  # made, but we never heard

    retried = await client.ensure_war_room(TOPIC, upns(graph))
    assert not retried.created
    assert len(graph.chats_with_topic(TOPIC)) == 1
    assert len(graph.requests_of("create_chat")) == 1


async def test_topic_quoting_and_paging(graph, client):
    topics = ["INC-1 a", "INC-2 b", "INC-3 c", "INC-4 o'brien's db & co + 50%"]
    made = {t: await client.create_group_chat(t, upns(graph)) for t in topics}
    found = await client.find_chat(topics[-1], graph.bob["userPrincipalName"])
    assert found is not None and found.id == made[topics[-1]].id
    assert await client.find_chat("INC-5", graph.bob["userPrincipalName"]) is None
    lookups = graph.requests_of("list_user_chats")
    assert lookups[0].query["$filter"] == "topic eq 'INC-4 o''brien''s db & co + 50%'"
    assert odata_string("it's") == "'it''s'"


async def test_paging_follows_next_link_and_twins_resolve_to_the_oldest(graph, client):
    oldest = await client.create_group_chat(TOPIC, upns(graph))
    for _ in range(50):  # twins someone made by hand; we ask for pages of 50
        await client.create_group_chat(TOPIC, upns(graph))
    found = await client.find_chat(TOPIC, graph.carol["userPrincipalName"])
    assert found.id == oldest.id
    pages = graph.requests_of("list_user_chats")
    assert len(pages) == 2 and "$skiptoken" in pages[1].query


async def test_too_few_members_is_permanent_and_sends_nothing(graph, client):
    with pytest.raises(PermanentFailure, match="at least 3"):
        await client.ensure_war_room(TOPIC, upns(graph, graph.alice, graph.bob) + ["ALICE.smith@contoso.example"])
    assert graph.requests_of("create_chat") == [] and graph.requests_of("list_user_chats") == []


async def test_unknown_member_on_create_is_permanent(graph, client):
    with pytest.raises(PermanentFailure, match="UPN"):
        await client.create_group_chat(TOPIC, upns(graph, graph.alice, graph.bob) + ["ghost@contoso.example"])


async def test_add_members_skips_present_and_reports_unknown(graph, client):
    chat = await client.ensure_war_room(TOPIC, upns(graph))
    dana = graph.add_user("Dana White", mail="dana@mail.contoso.example")  # mail differs from UPN
    result = await client.add_members(chat.id, [graph.alice["userPrincipalName"], dana["userPrincipalName"],
                                                "ghost@contoso.example"])
    assert result.added == [dana["userPrincipalName"]]
    assert result.already_there == [graph.alice["userPrincipalName"]]
    assert result.unknown == ["ghost@contoso.example"]

    again = await client.add_members(chat.id, [dana["userPrincipalName"]])
    assert again.added == [] and again.already_there == [dana["userPrincipalName"]]
    assert len(graph.requests_of("add_member")) == 1
    assert graph.requests_of("add_member")[0].body["visibleHistoryStartDateTime"] == "0001-01-01T00:00:00Z"


async def test_add_members_to_a_missing_chat_is_permanent(graph, client):
    with pytest.raises(PermanentFailure, match="not found"):
        await client.add_members("19:nope@thread.v2", [graph.alice["userPrincipalName"]])


async def test_app_installed_once_even_after_a_lost_answer(graph, client):
    chat = await client.ensure_war_room(TOPIC, upns(graph))
    graph.lose_answer_next(kind="install_app")
    with pytest.raises(TemporaryFailure):
        await client.ensure_app_installed(chat.id, graph.app["id"])
    assert graph.app_ids(chat.id) == [graph.app["id"]]
    assert await client.ensure_app_installed(chat.id, graph.app["id"]) is False
    assert graph.app_ids(chat.id) == [graph.app["id"]]

    other = await client.create_group_chat("INC-8", upns(graph))
    assert await client.ensure_app_installed(other.id, graph.app["id"]) is True
    with pytest.raises(PermanentFailure, match="app catalog"):
        await client.ensure_app_installed(other.id, "no-such-app")


async def test_token_is_cached_and_renewed_after_a_401(graph, client):
    await client.find_chat(TOPIC, graph.alice["userPrincipalName"])
    await client.find_chat(TOPIC, graph.alice["userPrincipalName"])
    assert len(graph.requests_of("token")) == 1
    graph.expire_tokens()
    assert await client.find_chat(TOPIC, graph.alice["userPrincipalName"]) is None
    assert len(graph.requests_of("token")) == 2
    token_form = graph.requests_of("token")[0].body
    assert token_form["scope"] == "https://graph.microsoft.com/.default"


@pytest.mark.parametrize("override, hint", [
    ({"client_secret": "wrong-secret"}, "GRAPH_CLIENT_SECRET"),
    ({"client_id": "someone-else"}, "GRAPH_CLIENT_ID"),
    ({"tenant_id": "other-tenant"}, "GRAPH_TENANT_ID"),
])
async def test_bad_credentials_are_permanent_and_say_what_to_fix(graph, override, hint):
    client = make_client(graph, **override)
    try:
        with pytest.raises(PermanentFailure, match=hint) as caught:
            await client.ensure_war_room(TOPIC, upns(graph))
    finally:
        await client.close()
    assert "wrong-secret" not in str(caught.value) and graph.client_secret not in str(caught.value)


async def test_throttling_and_outages_are_temporary(graph, client):
    graph.fail_next(status=429, retry_after=7, kind="list_user_chats")
    with pytest.raises(TemporaryFailure) as throttled:
        await client.ensure_war_room(TOPIC, upns(graph))
    assert throttled.value.retry_after == 7

    graph.fail_next(status=503, kind="create_chat")
    with pytest.raises(TemporaryFailure) as unavailable:
        await client.ensure_war_room(TOPIC, upns(graph))
    assert unavailable.value.retry_after is None

    graph.fail_next(status=403, kind="create_chat")
    with pytest.raises(PermanentFailure, match="Chat.Create"):
        await client.ensure_war_room(TOPIC, upns(graph))

    await graph.go_down()
    with pytest.raises(TemporaryFailure):
        await client.ensure_war_room(TOPIC, upns(graph))
    await graph.come_back()
    assert (await client.ensure_war_room(TOPIC, upns(graph))).created
    assert len(graph.chats_with_topic(TOPIC)) == 1


async def test_a_hung_graph_times_out_as_temporary(graph):
    client = make_client(graph, timeout=0.3)
    try:
        await client.find_chat(TOPIC, graph.alice["userPrincipalName"])  # token first
        graph.hang_next(seconds=1.5, kind="list_user_chats")
        with pytest.raises(TemporaryFailure, match="timed out"):
            await client.find_chat(TOPIC, graph.alice["userPrincipalName"])
    finally:
        await client.close()


# -- meeting bridges (onlineMeetings createOrGet) ---------------------------------------------

async def test_meeting_by_upn_or_object_id_is_one_meeting_per_external_id(graph, client):
    graph.grant_meeting_policy(graph.bob)
    first = await client.create_or_get_meeting("Bob.Jones@contoso.example", "firebell-INC-7-x",
                                                "INC-7 bridge: checkout down")
    assert first.created and first.join_url.startswith("https://teams.microsoft.com/l/meetup-join/")
    again = await client.create_or_get_meeting(graph.bob["id"], "firebell-INC-7-x", "other")
    assert (again.join_url, again.created) == (first.join_url, False)
    other = await client.create_or_get_meeting(graph.bob["id"], "firebell-INC-8-x", "INC-8")
    assert other.join_url != first.join_url
    # The UPN was looked up once; createOrGet always got the object id.
    assert {r.params["userId"] for r in graph.requests_of("create_or_get_meeting")} == \
        {graph.bob["id"]}
    assert len(graph.meetings_of(graph.bob)) == 2


async def test_meeting_failures_name_what_to_fix(graph, client):
    with pytest.raises(PermanentFailure) as denied:
        await client.create_or_get_meeting(graph.alice["id"], "firebell-INC-7-x", "INC-7")
    assert "No application access policy" in str(denied.value)
    assert "OnlineMeetings.ReadWrite.All" in str(denied.value)
    assert "Grant-CsApplicationAccessPolicy" in str(denied.value)
    with pytest.raises(PermanentFailure) as unknown:
        await client.create_or_get_meeting("ghost@contoso.example", "firebell-INC-7-x", "INC-7")
    assert "FIREBELL_MEETING_ORGANIZER ghost@contoso.example is not a user" in str(unknown.value)
    graph.grant_meeting_policy(graph.alice)
    graph.fail_next(1, status=503, kind="create_or_get_meeting")
    with pytest.raises(TemporaryFailure):
        await client.create_or_get_meeting(graph.alice["id"], "firebell-INC-7-x", "INC-7")
    assert (await client.create_or_get_meeting(graph.alice["id"], "firebell-INC-7-x",
                                               "INC-7")).created
