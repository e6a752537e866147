"""Self-test of FakeJira with the real ``jira`` library (3.10.5) and httpx.

The ``jira`` client is synchronous, so every call goes through
``asyncio.to_thread``: the fake serves from this test's event loop.
The ``test_library_*`` cases are the evidence for the retry/timeout facts in
the docstring of tests/fakes/jira.py.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
import requests
from jira import JIRA, JIRAError

from tests.fakes.jira import FakeJira, JqlError, parse_jql


@pytest.fixture
async def fake() -> Any:
    async with FakeJira() as jira_fake:
        jira_fake.add_project("CHK")
        yield jira_fake


def client(fake: FakeJira, **options: Any) -> JIRA:
    """The configuration recommended in tests/fakes/jira.py, unless overridden."""
    options.setdefault("max_retries", 0)
    options.setdefault("timeout", 5)
    return JIRA(server=fake.url, basic_auth=(fake.email, fake.api_token), **options)


async def call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    return await asyncio.to_thread(fn, *args, **kwargs)


def task_fields(summary: str = "[INC-7] Database down", **extra: Any) -> dict[str, Any]:
    return {"project": {"key": "CHK"}, "summary": summary, "issuetype": {"name": "Task"}, **extra}


# -- what the library sends ---------------------------------------------------


async def test_constructor_only_asks_server_info_and_sees_cloud(fake: FakeJira) -> None:
    jira = await call(client, fake)
    assert jira.deploymentType == "Cloud"
    assert [(r.method, r.path) for r in fake.requests] == [("GET", "/rest/api/2/serverInfo")]
    assert fake.requests[0].headers["Authorization"].startswith("Basic ")


async def test_wrong_credentials_are_refused_with_401(fake: FakeJira) -> None:
    with pytest.raises(JIRAError) as raised:
        await call(JIRA, server=fake.url, basic_auth=(fake.email, "wrong"), max_retries=0, timeout=5)
    assert raised.value.status_code == 401
    assert "must be authenticated" in raised.value.text


async def test_create_issue_then_prefetch_returns_all_fields(fake: FakeJira) -> None:
    ana = fake.add_user("ana@example.com", display_name="Ana Lopez")
    jira = await call(client, fake)
    fields = task_fields(description="Checks failing", labels=["INC-7", "firebell"],
                         assignee={"accountId": ana}, duedate="2030-01-02")
    issue = await call(jira.create_issue, fields=fields)

    assert issue.key == "CHK-1"
    assert issue.fields.summary == "[INC-7] Database down"
    assert issue.fields.status.name == "To Do"
    assert issue.fields.status.statusCategory.key == "new"
    assert issue.fields.assignee.accountId == ana
    assert issue.fields.duedate == "2030-01-02"
    assert issue.fields.labels == ["INC-7", "firebell"]
    assert issue.fields.issuelinks == []
    assert fake.operations() == ["server_info", "create", "get"]
    assert fake.requests_for("create")[0].json == {"fields": fields}
    assert fake.requests_for("create")[0].status == 201

    second = await call(jira.create_issue, fields=task_fields("second"))
    assert second.key == "CHK-2"
    assert fake.issue("CHK-2").summary == "second"


async def test_create_issue_with_plain_string_project_and_type_adds_lookups(fake: FakeJira) -> None:
    jira = await call(client, fake)
    issue = await call(jira.create_issue, project="CHK", issuetype="Task", summary="strings")
    assert issue.key == "CHK-1"
    assert fake.operations() == ["server_info", "project", "project", "create", "get"]
    assert fake.requests_for("create")[0].json["fields"]["project"] == {"id": fake.projects["CHK"].id}


async def test_create_issue_errors_have_jira_shape(fake: FakeJira) -> None:
    jira = await call(client, fake)
    bad = {"project": {"key": "NOPE"}, "summary": "", "issuetype": {"name": "Task"},
           "labels": ["has space"], "customfield_1": 3}
    with pytest.raises(JIRAError) as raised:
        await call(jira.create_issue, fields=bad)
    assert raised.value.status_code == 400
    errors = raised.value.response.json()["errors"]
    assert set(errors) == {"project", "summary", "labels", "customfield_1"}
    assert fake.issues == {}


async def test_search_uses_enhanced_endpoint_and_jql_subset(fake: FakeJira) -> None:
    jira = await call(client, fake)
    await call(jira.create_issue, fields=task_fields(labels=["INC-7"]))
    await call(jira.create_issue, fields=task_fields("Disk full on db-2", labels=["INC-8"]))
    fake.add_project("OPS")
    fake.add_issue("OPS", "[INC-7] follow-up", labels=["INC-7"])

    async def keys(jql: str) -> list[str]:
        return [i.key for i in await call(jira.search_issues, jql)]

    assert await keys('labels = "INC-7"') == ["OPS-1", "CHK-1"]  # newest first
    assert await keys('project = CHK AND labels = "INC-7"') == ["CHK-1"]
    assert await keys("key in (CHK-1, CHK-2) ORDER BY key") == ["CHK-1", "CHK-2"]
    assert await keys('labels = INC-8 AND summary ~ "disk full"') == ["CHK-2"]
    assert await keys('labels = INC-8 AND summary ~ "database"') == []

    search = fake.requests_for("search")[0]
    assert search.path == "/rest/api/2/search/jql"
    assert search.query["jql"] == 'labels = "INC-7"'
    assert search.query.getall("fields") == ["*all"]
    assert search.query["maxResults"] == "50"
    assert fake.operations().count("fields") == 1  # the library caches /field


@pytest.mark.parametrize(
    ("jql", "message"),
    [
        ("labels = a OR labels = b", "only AND-joined"),
        ("project = NOPE", "The value 'NOPE' does not exist for the field 'project'."),
        ("key in (CHK-99)", "An issue with key 'CHK-99' does not exist for field 'key'."),
        ("colour = red", "Field 'colour' does not exist"),
        ("labels ~ x", "The operator '~' is not supported by the 'labels' field."),
    ],
)
async def test_unsupported_or_invalid_jql_is_a_jira_400(fake: FakeJira, jql: str, message: str) -> None:
    jira = await call(client, fake)
    with pytest.raises(JIRAError) as raised:
        await call(jira.search_issues, jql)
    assert raised.value.status_code == 400
    assert message in raised.value.response.json()["errorMessages"][0]


async def test_search_pagination_with_next_page_token(fake: FakeJira) -> None:
    for n in range(105):
        fake.add_issue("CHK", f"issue {n}", labels=["bulk"])
    jira = await call(client, fake)

    first_page = await call(jira.search_issues, "labels = bulk", maxResults=40)
    assert len(first_page) == 40 and first_page.nextPageToken

    everything = await call(jira.search_issues, "labels = bulk", maxResults=False)
    assert len({i.key for i in everything}) == 105
    follow_up = fake.requests_for("search")[-1]
    assert follow_up.query["nextPageToken"] and follow_up.query["maxResults"] == "100"
    assert len(fake.requests_for("search")) == 3  # 1 page of 40, then 100 + 5


async def test_link_direction_and_link_type_lookup(fake: FakeJira) -> None:
    jira = await call(client, fake)
    for summary in ("cause", "symptom", "other"):
        await call(jira.create_issue, fields=task_fields(summary))

    response = await call(jira.create_issue_link, "Blocks", "CHK-1", "CHK-2")
    assert response.status_code == 201
    await call(jira.create_issue_link, "relates to", "CHK-1", "CHK-3")

    cause = await call(jira.issue, "CHK-1")
    symptom = await call(jira.issue, "CHK-2")
    # inwardIssue=CHK-1, outwardIssue=CHK-2, "Blocks" -> CHK-1 blocks CHK-2.
    blocks = next(lk for lk in cause.fields.issuelinks if lk.type.name == "Blocks")
    assert blocks.outwardIssue.key == "CHK-2" and blocks.type.outward == "blocks"
    assert symptom.fields.issuelinks[0].inwardIssue.key == "CHK-1"
    assert symptom.fields.issuelinks[0].inwardIssue.fields.status.name == "To Do"
    assert fake.requests_for("link")[0].json == {
        "type": {"name": "Blocks"}, "inwardIssue": {"key": "CHK-1"},
        "outwardIssue": {"key": "CHK-2"}, "comment": None,
    }
    assert fake.requests_for("link")[1].json["type"] == {"name": "Relates"}  # library mapped the phrase
    assert len(fake.requests_for("link_types")) == 2  # looked up again on every call


async def test_issue_status_and_due_date_set_by_test(fake: FakeJira) -> None:
    jira = await call(client, fake)
    await call(jira.create_issue, fields=task_fields())
    fake.set_status("CHK-1", "Done")
    fake.set_due_date("CHK-1", "2031-05-06")

    issue = await call(jira.issue, "CHK-1")
    assert (issue.fields.status.name, issue.fields.status.statusCategory.key) == ("Done", "done")
    assert issue.fields.resolution.name == "Done"
    assert issue.fields.duedate == "2031-05-06"
    assert [i.key for i in await call(jira.search_issues, "statusCategory = done")] == ["CHK-1"]


async def test_transitions(fake: FakeJira) -> None:
    jira = await call(client, fake)
    await call(jira.create_issue, fields=task_fields())
    names = [t["name"] for t in await call(jira.transitions, "CHK-1")]
    assert names == ["In Progress", "Done"]
    await call(jira.transition_issue, "CHK-1", "Done")
    assert fake.issue("CHK-1").status == "Done"
    assert fake.requests_for("transition")[0].json["transition"] == {"id": "31"}


async def test_user_search_maps_email_to_account_id(fake: FakeJira) -> None:
    ana = fake.add_user("ana@example.com", display_name="Ana Lopez")
    hidden = fake.add_user("bo@example.com", email_visible=False)
    fake.add_user("gone@example.com", active=False)
    jira = await call(client, fake)

    assert [u.accountId for u in await call(jira.search_users, query="ana@example.com")] == [ana]
    found = await call(jira.search_users, query="bo@example.com")
    assert [u.accountId for u in found] == [hidden]
    assert not hasattr(found[0], "emailAddress")  # privacy setting hides it, search still works
    assert await call(jira.search_users, query="gone@example.com") == []
    assert fake.requests_for("user_search")[0].query["query"] == "ana@example.com"


async def test_issue_not_found(fake: FakeJira) -> None:
    jira = await call(client, fake)
    with pytest.raises(JIRAError) as raised:
        await call(jira.issue, "CHK-404")
    assert raised.value.status_code == 404


async def test_without_server_info_the_client_hits_the_removed_search_api(fake: FakeJira) -> None:
    jira = await call(client, fake, get_server_info=False)
    with pytest.raises(JIRAError) as raised:
        await call(jira.search_issues, "labels = x")
    assert raised.value.status_code == 410
    assert fake.requests[-1].path == "/rest/api/2/search"
    assert await call(jira.enhanced_search_issues, "labels = x") is None  # @cloud_api: silently None


async def test_api_v3_search_over_httpx_and_adf_descriptions(fake: FakeJira) -> None:
    fake.add_issue("CHK", "a", description="line one", labels=["x"])
    auth = (fake.email, fake.api_token)
    async with httpx.AsyncClient(base_url=fake.url, auth=auth) as http:
        ids_only = (await http.get("/rest/api/3/search/jql", params={"jql": "labels = x"})).json()
        assert ids_only["issues"][0]["fields"] == {} and ids_only["isLast"] is True
        assert "nextPageToken" not in ids_only
        posted = await http.post("/rest/api/3/search/jql", json={"jql": "labels = x", "fields": ["description"]})
        assert posted.json()["issues"][0]["fields"]["description"]["type"] == "doc"
        plain = await http.post("/rest/api/3/issue", json={"fields": {**task_fields(), "description": "text"}})
        assert plain.status_code == 400 and "Atlassian Document" in plain.json()["errors"]["description"]


def test_parse_jql_subset() -> None:
    query = parse_jql('project = CHK AND labels in ("a b", c) ORDER BY created DESC')
    assert [(c.field, c.operator, c.values) for c in query.clauses] == [
        ("project", "=", ["CHK"]), ("labels", "in", ["a b", "c"])]
    assert (query.order_by, query.descending) == ("created", True)
    with pytest.raises(JqlError):
        parse_jql("")


# -- the library's own retries (evidence for the module docstring) ----------------


async def test_library_retry_behaviour_max_retries_0_surfaces_429_at_once(fake: FakeJira) -> None:
    jira = await call(client, fake, max_retries=0)
    fake.rate_limit_next(retry_after=30, operation="create")
    started = time.monotonic()
    with pytest.raises(JIRAError) as raised:
        await call(jira.create_issue, fields=task_fields())
    assert time.monotonic() - started < 1
    assert raised.value.status_code == 429
    assert raised.value.response.headers["Retry-After"] == "30"
    assert len(fake.requests_for("create")) == 1 and fake.issues == {}


async def test_library_retry_behaviour_default_retries_429_after_sleeping(fake: FakeJira) -> None:
    jira = await call(client, fake, max_retries=1)
    fake.rate_limit_next(retry_after=1, operation="create")
    started = time.monotonic()
    issue = await call(jira.create_issue, fields=task_fields())
    slept = time.monotonic() - started
    assert issue.key == "CHK-1"
    assert [r.status for r in fake.requests_for("create")] == [429, 201]
    assert 1.0 <= slept < 3  # 2 * max(Retry-After, 1) * uniform(0.5, 1), blocking the worker thread


async def test_library_retry_behaviour_503_without_retry_after_is_not_retried(fake: FakeJira) -> None:
    jira = await call(client, fake, max_retries=3)
    fake.unavailable_next(operation="search")
    with pytest.raises(JIRAError) as raised:
        await call(jira.search_issues, "labels = x")
    assert raised.value.status_code == 503
    assert raised.value.text == "Service temporarily unavailable"
    assert len(fake.requests_for("search")) == 1


async def test_library_retry_behaviour_lost_create_answer_is_reposted(fake: FakeJira) -> None:
    # max_retries=0: the caller sees the connection error, and the issue exists.
    jira = await call(client, fake, max_retries=0)
    fake.lose_response_next(operation="create")
    with pytest.raises(requests.ConnectionError):
        await call(jira.create_issue, fields=task_fields())
    assert list(fake.issues) == ["CHK-1"]
    assert fake.requests_for("create")[0].status is None

    # max_retries=1 (delay forced to 0 to keep the test fast): the library POSTs again -> duplicate.
    retrying = await call(client, fake, max_retries=1)
    retrying._session.max_retry_delay = 0
    fake.lose_response_next(operation="create")
    issue = await call(retrying.create_issue, fields=task_fields())
    assert issue.key == "CHK-3" and list(fake.issues) == ["CHK-1", "CHK-2", "CHK-3"]


async def test_library_retry_behaviour_read_timeout_is_not_retried(fake: FakeJira) -> None:
    jira = await call(client, fake, max_retries=3, timeout=0.3)
    await call(jira.create_issue, fields=task_fields())
    fake.hang_next(2, operation="get")
    started = time.monotonic()
    with pytest.raises(requests.ReadTimeout):
        await call(jira.issue, "CHK-1")
    assert time.monotonic() - started < 1.5
    assert len(fake.requests_for("get")) == 2  # prefetch after create, then the timed-out one


async def test_library_retry_behaviour_http_date_retry_after_crashes_the_library(fake: FakeJira) -> None:
    jira = await call(client, fake, max_retries=1)
    fake.respond_next(429, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})
    with pytest.raises(ValueError):
        await call(jira.search_issues, "labels = x")


# -- fault injection and lifecycle ------------------------------------------------


async def test_faults_target_one_operation_and_are_consumed(fake: FakeJira) -> None:
    jira = await call(client, fake)
    fake.rate_limit_next(n=2, operation="search")
    await call(jira.create_issue, fields=task_fields())  # unaffected
    for _ in range(2):
        with pytest.raises(JIRAError):
            await call(jira.search_issues, "labels = x")
    assert await call(jira.search_issues, "labels = x") == []
    assert [r.fault for r in fake.requests_for("search")] == ["respond", "respond", None]
    assert fake.pending_faults == []


async def test_down_refuses_connections_and_come_back_keeps_port_and_state(fake: FakeJira) -> None:
    jira = await call(client, fake)
    await call(jira.create_issue, fields=task_fields())
    url = fake.url
    await fake.down()
    with pytest.raises(requests.ConnectionError):
        await call(jira.issue, "CHK-1")
    await fake.come_back()
    assert fake.url == url
    assert (await call(jira.issue, "CHK-1")).key == "CHK-1"


async def test_several_instances_are_independent() -> None:
    async with FakeJira() as one, FakeJira(email="other@example.com") as two:
        one.add_project("CHK")
        two.add_project("CHK")
        one.add_issue("CHK", "only in one")
        assert one.url != two.url
        jira_two = await call(client, two)
        assert await call(jira_two.search_issues, "project = CHK") == []
        assert two.operations() == ["server_info", "fields", "search"] and one.requests == []
