"""Self-tests for FakeGraph with real HTTP clients (httpx, and MSAL for the token)."""

from __future__ import annotations

import httpx
import msal
import pytest

from tests.fakes.graph import FakeGraph, app_bind, member_payload

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
BOT_MANIFEST_ID = "f1re6e11-0000-4000-8000-000000000001"


@pytest.fixture
async def graph():
    async with FakeGraph() as fake:
        fake.alice = fake.add_user("Alice Smith")
        fake.bob = fake.add_user("Bob Jones", upn="Bob.Jones@contoso.example")
        fake.carol = fake.add_user("Carol King")
        fake.bot_app = fake.add_teams_app(BOT_MANIFEST_ID, "Firebell")
        yield fake


async def get_token(http: httpx.AsyncClient, graph: FakeGraph, **overrides) -> httpx.Response:
    form = {
        "grant_type": "client_credentials",
        "client_id": graph.client_id,
        "client_secret": graph.client_secret,
        "scope": GRAPH_SCOPE,
    }
    form.update(overrides)
    tenant = form.pop("tenant", graph.tenant_id)
    return await http.post(f"{graph.base_url}/{tenant}/oauth2/v2.0/token", data=form)


@pytest.fixture
async def api(graph):
    """An httpx client already holding a Graph token, rooted at GRAPH_BASE_URL."""
    async with httpx.AsyncClient(timeout=5) as plain:
        token = (await get_token(plain, graph)).json()["access_token"]
    async with httpx.AsyncClient(
        base_url=graph.graph_url, headers={"Authorization": f"Bearer {token}"}, timeout=5
    ) as client:
        yield client


def war_room(graph: FakeGraph, topic: str = "INC-42 checkout down", *users) -> dict:
    users = users or (graph.alice, graph.bob, graph.carol)
    return {
        "chatType": "group",
        "topic": topic,
        "members": [member_payload(u["id"]) for u in users],
    }


# ---- token endpoint ---------------------------------------------------------------------


async def test_client_credentials_token_and_aad_errors(graph):
    async with httpx.AsyncClient(timeout=5) as http:
        ok = await get_token(http, graph)
        assert ok.status_code == 200
        assert set(ok.json()) >= {"access_token", "expires_in", "token_type"}
        assert ok.json()["token_type"] == "Bearer"

        wrong_secret = await get_token(http, graph, client_secret="nope")
        assert wrong_secret.status_code == 401
        assert wrong_secret.json()["error"] == "invalid_client"
        assert wrong_secret.json()["error_codes"] == [7000215]
        assert (await get_token(http, graph, client_id="someone-else")).status_code == 400
        bad_scope = await get_token(http, graph, scope="https://graph.microsoft.com/Chat.Create")
        assert bad_scope.json()["error"] == "invalid_scope"
        assert (await get_token(http, graph, tenant="other-tenant")).status_code == 400
        assert (await get_token(http, graph, grant_type="password")).json()["error"] == "unsupported_grant_type"


async def test_msal_gets_a_token_over_tls(monkeypatch):
    """What Firebell needs if it uses MSAL: https authority + trusted CA +
    instance_discovery=False (otherwise MSAL calls login.microsoftonline.com)."""
    async with FakeGraph(tls=True) as graph:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", graph.ca_pem_path)
        app = msal.ConfidentialClientApplication(
            graph.client_id,
            client_credential=graph.client_secret,
            authority=f"{graph.base_url}/{graph.tenant_id}",
            instance_discovery=False,
        )
        result = app.acquire_token_for_client(scopes=[GRAPH_SCOPE])
        assert "access_token" in result, result
        async with httpx.AsyncClient(verify=graph.client_ssl_context()) as http:
            graph.add_user("Dana White", id="dana")
            me = await http.get(
                f"{graph.graph_url}/users/dana",
                headers={"Authorization": f"Bearer {result['access_token']}"},
            )
        assert me.status_code == 200 and me.json()["displayName"] == "Dana White"


async def test_graph_requires_a_live_graph_token(graph, api):
    async with httpx.AsyncClient(base_url=graph.graph_url) as anonymous:
        missing = await anonymous.get(f"/users/{graph.alice['id']}")
        forged = await anonymous.get(
            f"/users/{graph.alice['id']}", headers={"Authorization": "Bearer forged"}
        )
        wrong_audience_token = (
            await get_token(anonymous, graph, scope="https://api.botframework.com/.default")
        ).json()["access_token"]
        wrong_audience = await anonymous.get(
            f"/users/{graph.alice['id']}", headers={"Authorization": f"Bearer {wrong_audience_token}"}
        )
    for response in (missing, forged, wrong_audience):
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "InvalidAuthenticationToken"
    assert "audience" in wrong_audience.json()["error"]["message"]

    assert (await api.get(f"/users/{graph.alice['id']}")).status_code == 200
    graph.expire_tokens()
    expired = await api.get(f"/users/{graph.alice['id']}")
    assert expired.status_code == 401 and "expired" in expired.json()["error"]["message"]


# ---- chats ---------------------------------------------------------------------------------


async def test_create_war_room_chat_add_member_and_find_it_by_topic(graph, api):
    created = await api.post("/chats", json=war_room(graph))
    assert created.status_code == 201
    chat = created.json()
    assert chat["id"].startswith("19:") and chat["id"].endswith("@thread.v2")
    assert chat["topic"] == "INC-42 checkout down" and chat["chatType"] == "group"
    assert chat["webUrl"].startswith("https://teams.microsoft.com/l/chat/19%3A")
    assert "createdDateTime" in chat

    fetched = await api.get(f"/chats/{chat['id']}")  # unencoded ':' '@' are fine too
    assert fetched.json()["id"] == chat["id"]

    dana = graph.add_user("Dana White")
    added = await api.post(f"/chats/{chat['id']}/members", json=member_payload(dana["userPrincipalName"]))
    assert added.status_code == 201 and added.json()["userId"] == dana["id"]
    again = await api.post(f"/chats/{chat['id']}/members", json=member_payload(dana["id"]))
    assert again.status_code == 201
    members = (await api.get(f"/chats/{chat['id']}/members")).json()["value"]
    assert [m["displayName"] for m in members] == ["Alice Smith", "Bob Jones", "Carol King", "Dana White"]
    assert graph.member_ids(chat["id"])[-1] == dana["id"]

    found = await api.get(
        f"/users/{graph.alice['id']}/chats",
        params={"$filter": "topic eq 'INC-42 checkout down'", "$expand": "members"},
    )
    assert [c["id"] for c in found.json()["value"]] == [chat["id"]]
    assert len(found.json()["value"][0]["members"]) == 4
    none = await api.get(f"/users/{graph.alice['id']}/chats", params={"$filter": "topic eq 'INC-43'"})
    assert none.json()["value"] == []
    # Dana was added later, and the UPN works as the user segment as well.
    by_upn = await api.get(f"/users/{dana['userPrincipalName']}/chats")
    assert [c["id"] for c in by_upn.json()["value"]] == [chat["id"]]


async def test_chat_filters_quoting_and_paging(graph, api):
    for topic in ("INC-1 a", "INC-2 o'brien's db", "INC-3 c"):
        assert (await api.post("/chats", json=war_room(graph, topic))).status_code == 201
    quoted = await api.get(
        f"/users/{graph.bob['id']}/chats",
        params={"$filter": "topic eq 'INC-2 o''brien''s db' and chatType eq 'group'"},
    )
    assert [c["topic"] for c in quoted.json()["value"]] == ["INC-2 o'brien's db"]
    by_member = await api.get(
        f"/users/{graph.bob['id']}/chats",
        params={"$filter": "members/any(o: o/displayName eq 'Carol King')"},
    )
    assert len(by_member.json()["value"]) == 3

    unsupported = await api.get(
        f"/users/{graph.bob['id']}/chats", params={"$filter": "startswith(topic, 'INC')"}
    )
    assert unsupported.status_code == 400 and unsupported.json()["error"]["code"] == "BadRequest"
    assert (await api.get(f"/users/{graph.bob['id']}/chats", params={"$top": "51"})).status_code == 400

    page = (await api.get(f"/users/{graph.bob['id']}/chats", params={"$top": "2"})).json()
    topics = [c["topic"] for c in page["value"]]
    while "@odata.nextLink" in page:
        page = (await api.get(page["@odata.nextLink"])).json()
        topics += [c["topic"] for c in page["value"]]
    assert topics == ["INC-1 a", "INC-2 o'brien's db", "INC-3 c"]


async def test_create_chat_validation(graph, api):
    two = war_room(graph, "too small", graph.alice, graph.bob)
    assert (await api.post("/chats", json=two)).status_code == 400

    ghost = war_room(graph)
    ghost["members"][2] = member_payload("ghost@contoso.example")
    missing_user = await api.post("/chats", json=ghost)
    assert missing_user.status_code == 404 and missing_user.json()["error"]["code"] == "NotFound"

    no_owner = war_room(graph)
    for member in no_owner["members"]:
        member["roles"] = ["guest"]
    assert (await api.post("/chats", json=no_owner)).status_code == 400

    bad_role = war_room(graph)
    bad_role["members"][0]["roles"] = ["admin"]
    assert (await api.post("/chats", json=bad_role)).status_code == 400

    bad_bind = war_room(graph)
    bad_bind["members"][0]["user@odata.bind"] = graph.alice["id"]
    assert (await api.post("/chats", json=bad_bind)).status_code == 400

    duplicate = war_room(graph, "dup", graph.alice, graph.alice, graph.bob)
    assert (await api.post("/chats", json=duplicate)).status_code == 400
    assert graph.chats == {}

    one_on_one = {"chatType": "oneOnOne", "members": [member_payload(graph.alice["id"]), member_payload(graph.bob["userPrincipalName"])]}
    first = (await api.post("/chats", json=one_on_one)).json()
    second = (await api.post("/chats", json=one_on_one)).json()
    assert first["id"] == second["id"] and first["id"].endswith("@unq.gbl.spaces")
    with_topic = dict(one_on_one, topic="nope")
    assert (await api.post("/chats", json=with_topic)).status_code == 400


async def test_install_bot_in_chat_and_query_installed_apps(graph, api):
    chat = (await api.post("/chats", json=war_room(graph))).json()
    url = f"/chats/{chat['id']}/installedApps"
    installed = await api.post(url, json={"teamsApp@odata.bind": app_bind(graph.bot_app["id"])})
    assert installed.status_code == 201 and installed.content == b""
    twice = await api.post(url, json={"teamsApp@odata.bind": app_bind(graph.bot_app["id"])})
    assert twice.status_code == 409
    unknown = await api.post(url, json={"teamsApp@odata.bind": app_bind("nope")})
    assert unknown.status_code == 404

    listed = await api.get(
        url,
        params={"$expand": "teamsApp,teamsAppDefinition", "$filter": f"teamsApp/externalId eq '{BOT_MANIFEST_ID}'"},
    )
    [app] = listed.json()["value"]
    assert app["teamsApp"]["externalId"] == BOT_MANIFEST_ID
    assert app["teamsAppDefinition"]["teamsAppId"] == graph.bot_app["id"]
    plain = (await api.get(url)).json()["value"]
    assert set(plain[0]) == {"id"}  # without $expand only the installation id
    assert (await api.get(url, params={"$filter": "teamsApp/externalId eq 'other'"})).json()["value"] == []

    with_app = await api.get(
        f"/users/{graph.carol['id']}/chats",
        params={"$filter": f"installedApps/any(a:a/teamsApp/id eq '{graph.bot_app['id']}')"},
    )
    assert [c["id"] for c in with_app.json()["value"]] == [chat["id"]]
    assert graph.app_ids(chat["id"]) == [graph.bot_app["id"]]


async def test_users_by_id_or_upn(graph, api):
    by_id = await api.get(f"/users/{graph.bob['id']}")
    by_upn = await api.get("/users/bob.jones@CONTOSO.example")
    assert by_id.json()["userPrincipalName"] == by_upn.json()["userPrincipalName"] == "Bob.Jones@contoso.example"
    assert set(by_id.json()) >= {"id", "displayName", "mail", "userPrincipalName"}
    missing = await api.get("/users/nobody@contoso.example")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "Request_ResourceNotFound"


# ---- faults ---------------------------------------------------------------------------------


async def test_injected_429_503_and_hang(graph, api):
    graph.fail_next(1, status=429, retry_after=7, kind="create_chat")
    graph.fail_next(1, status=503, kind="create_chat")
    throttled = await api.post("/chats", json=war_room(graph))
    assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "7"
    assert throttled.json()["error"]["code"] == "TooManyRequests"
    assert (await api.post("/chats", json=war_room(graph))).status_code == 503
    assert graph.chats == {}
    assert (await api.get(f"/users/{graph.alice['id']}")).status_code == 200  # other kinds unaffected

    graph.hang_next(1, seconds=0.5, kind="get_user")
    with pytest.raises(httpx.ReadTimeout):
        await api.get(f"/users/{graph.alice['id']}", timeout=0.1)


async def test_lost_answer_creates_the_chat_but_the_client_never_hears(graph, api):
    graph.lose_answer_next(1, kind="create_chat")
    with pytest.raises(httpx.RemoteProtocolError):
        await api.post("/chats", json=war_room(graph, "INC-7"))
    assert len(graph.chats_with_topic("INC-7")) == 1
    # The recovery a client should do: look the chat up before creating it again.
    found = await api.get(f"/users/{graph.alice['id']}/chats", params={"$filter": "topic eq 'INC-7'"})
    assert len(found.json()["value"]) == 1
    assert graph.requests_of("create_chat")[0].status is None


async def test_down_mode_refuses_connections_then_comes_back_on_the_same_port(graph, api):
    base = graph.base_url
    await graph.go_down()
    with pytest.raises(httpx.ConnectError):
        await api.get(f"/users/{graph.alice['id']}")
    await graph.come_back()
    assert graph.base_url == base
    assert (await api.get(f"/users/{graph.alice['id']}")).status_code == 200  # token still valid
    assert [r.status for r in graph.requests_of("get_user")] == [200]  # the refused one never arrived
