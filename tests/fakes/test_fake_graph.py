"""FakeGraph refuses what Graph refuses (tokens, chat shapes, app installs) and, loudly, what
Firebell does not send. The happy paths run through Firebell's own client in
tests/integrations/test_graph_client.py."""
from __future__ import annotations

import httpx
import pytest

from tests.fakes.graph import GRAPH, MEMBER_TYPE, FakeGraph


@pytest.fixture
async def graph():
    async with FakeGraph() as fake:
        fake.alice, fake.bob, fake.carol = (fake.add_user(n) for n in
                                            ("Alice Smith", "Bob Jones", "Carol King"))
        yield fake


def token_form(graph: FakeGraph, **overrides) -> dict:
    return {"grant_type": "client_credentials", "client_id": graph.client_id,
            "client_secret": graph.client_secret, "scope": f"{GRAPH}/.default", **overrides}


@pytest.fixture
async def api(graph):
    """An httpx client holding a Graph token, rooted at GRAPH_BASE_URL."""
    async with httpx.AsyncClient(timeout=5) as plain:
        token = (await plain.post(f"{graph.base_url}/{graph.tenant_id}/oauth2/v2.0/token",
                                  data=token_form(graph))).json()["access_token"]
    async with httpx.AsyncClient(base_url=graph.graph_url, timeout=5,
                                 headers={"Authorization": f"Bearer {token}"}) as client:
        yield client


def member(user: dict, role: str = "owner") -> dict:
    return {"@odata.type": MEMBER_TYPE, "roles": [role],
            "user@odata.bind": f"{GRAPH}/v1.0/users('{user['userPrincipalName']}')"}


def war_room(*users: dict, topic: str = "INC-42 checkout down", **extra) -> dict:
    return {"chatType": "group", "topic": topic, "members": [member(u) for u in users], **extra}


async def test_tokens_are_for_client_credentials_and_graph_wants_its_own(graph):
    async with httpx.AsyncClient(timeout=5) as http:
        url = f"{graph.base_url}/{graph.tenant_id}/oauth2/v2.0/token"
        password = await http.post(url, data=token_form(graph, grant_type="password"))
        assert password.status_code == 400 and password.json()["error"] == "invalid_request"
        foreign = (await http.post(url, data=token_form(
            graph, scope="https://api.botframework.com/.default"))).json()["access_token"]
        me = f"{graph.graph_url}/users/{graph.alice['id']}"
        for header in (None, "Bearer forged", f"Bearer {foreign}"):
            refused = await http.get(me, headers={"Authorization": header} if header else {})
            assert refused.status_code == 401
            assert refused.json()["error"]["code"] == "InvalidAuthenticationToken"
        assert "audience" in refused.json()["error"]["message"]


async def test_chat_shapes_graph_refuses(graph, api):
    a, b, c = graph.alice, graph.bob, graph.carol
    assert (await api.post("/chats", json=war_room(a, b))).status_code == 400  # too small
    assert (await api.post("/chats", json=war_room(a, a, b))).status_code == 400  # duplicate
    guests = war_room(a, b, c)
    for m in guests["members"]:
        m["roles"] = ["guest"]
    assert (await api.post("/chats", json=guests)).status_code == 400  # nobody owns it
    ghost = war_room(a, b, {"userPrincipalName": "ghost@contoso.example"})
    missing = await api.post("/chats", json=ghost)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "NotFound"
    assert graph.chats == {}
    made = await api.post("/chats", json=war_room(a, b, c))
    assert made.status_code == 201 and made.json()["id"].endswith("@thread.v2")


async def test_what_firebell_does_not_send_is_a_loud_400(graph, api):
    chats_of_bob = f"/users/{graph.bob['id']}/chats"
    for params in ({"$filter": "chatType eq 'group'"}, {"$filter": "startswith(topic, 'INC')"},
                   {"$expand": "members"}, {"$top": "51"}):
        refused = await api.get(chats_of_bob, params=params)
        assert refused.status_code == 400, params
        assert refused.json()["error"]["code"] == "BadRequest"
    one_on_one = {"chatType": "oneOnOne", "members": [member(graph.alice), member(graph.bob)]}
    assert (await api.post("/chats", json=one_on_one)).status_code == 400
    with_apps = war_room(graph.alice, graph.bob, graph.carol, installedApps=[])
    assert (await api.post("/chats", json=with_apps)).status_code == 400
    assert graph.chats == {}


async def test_an_app_is_installed_once_and_must_be_in_the_catalog(graph, api):
    app = graph.add_teams_app("f1re6e11-0000-4000-8000-000000000001", "Firebell")
    chat = (await api.post("/chats", json=war_room(graph.alice, graph.bob, graph.carol))).json()
    url = f"/chats/{chat['id']}/installedApps"
    bind = {"teamsApp@odata.bind": f"{GRAPH}/v1.0/appCatalogs/teamsApps/{app['id']}"}
    assert (await api.post(url, json=bind)).status_code == 201
    assert (await api.post(url, json=bind)).status_code == 409
    unknown = {"teamsApp@odata.bind": f"{GRAPH}/v1.0/appCatalogs/teamsApps/nope"}
    assert (await api.post(url, json=unknown)).status_code == 404
    listed = await api.get(url, params={"$expand": "teamsApp",
                                        "$filter": f"teamsApp/id eq '{app['id']}'"})
    assert [a["teamsApp"]["externalId"] for a in listed.json()["value"]] == [app["externalId"]]
    assert graph.app_ids(chat["id"]) == [app["id"]]


async def test_create_or_get_meeting_as_graph_answers_it(graph, api):
    url = f"/users/{graph.alice['id']}/onlineMeetings/createOrGet"
    body = {"externalId": "firebell-INC-7-abc", "subject": "INC-7 bridge"}
    denied = await api.post(url, json=body)
    assert denied.status_code == 403
    assert denied.json()["error"] == {**denied.json()["error"], "code": "General",
                                      "message": "No application access policy found for "
                                                 "this app."}
    graph.grant_meeting_policy(graph.alice)
    created = await api.post(url, json=body)
    assert created.status_code == 201 and created.json()["externalId"] == body["externalId"]
    again = await api.post(url, json={**body, "subject": "changed"})
    assert again.status_code == 200 and again.json() == created.json()
    # Same external id, another organizer: another meeting (tenant, user, externalId is the key).
    graph.grant_meeting_policy(graph.bob)
    bobs = await api.post(f"/users/{graph.bob['id']}/onlineMeetings/createOrGet", json=body)
    assert bobs.status_code == 201 and bobs.json()["joinWebUrl"] != created.json()["joinWebUrl"]


@pytest.mark.parametrize("path_user, body, status", [
    ("upn", {"externalId": "x"}, 404),               # application tokens name users by object id
    ("id", {"subject": "no external id"}, 400),
    ("id", {"externalId": "x", "lobbyBypassSettings": {}}, 400),  # not something Firebell sends
])
async def test_create_or_get_meeting_refuses_what_graph_refuses(graph, api, path_user, body,
                                                                status):
    graph.grant_meeting_policy(graph.alice)
    who = graph.alice["userPrincipalName"] if path_user == "upn" else graph.alice["id"]
    answer = await api.post(f"/users/{who}/onlineMeetings/createOrGet", json=body)
    assert answer.status_code == status
    assert graph.meetings == {}
