"""FakeJira with the real ``jira`` library, configured as Firebell configures it: the two JQL shapes
Firebell sends and what Jira refuses in them, a loud 400 for any other, Jira's create errors and
link directions. What the library itself does (no retries with ``max_retries=0``, no re-POST of a
lost answer) is pinned through Firebell's tracker in tests/integrations/test_jira_client.py."""
from __future__ import annotations

import asyncio
from typing import Any

import pytest
from jira import JIRA, JIRAError

from tests.fakes.jira import FakeJira


@pytest.fixture
async def fake():
    async with FakeJira() as jira_fake:
        jira_fake.add_project("CHK")
        yield jira_fake


async def call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    return await asyncio.to_thread(fn, *args, **kwargs)


async def client(fake: FakeJira, token: str | None = None) -> JIRA:
    return await call(JIRA, server=fake.base_url, basic_auth=(fake.email, token or fake.api_token),
                      max_retries=0, timeout=5)


async def search(jira: JIRA, jql: str) -> list[str]:
    page = await call(jira.enhanced_search_issues, jql, fields=["summary"], json_result=True)
    return [issue["key"] for issue in page["issues"]]


async def refusal(jira: JIRA, jql: str) -> list[str]:
    with pytest.raises(JIRAError) as refused:
        await call(jira.enhanced_search_issues, jql, fields=["summary"], json_result=True)
    assert refused.value.status_code == 400
    return refused.value.response.json()["errorMessages"]


async def test_wrong_credentials_get_clouds_plain_text_401(fake):
    with pytest.raises(JIRAError) as refused:
        await client(fake, token="wrong")
    assert refused.value.status_code == 401 and "must be authenticated" in refused.value.text
    assert fake.requests[0].kind == "server_info"


async def test_the_label_shape_quotes_like_firebell_and_lists_oldest_first(fake):
    jira = await client(fake)
    odd = 'firebell-INC-7 "quoted" \\ label'
    for summary in ("first", "second"):
        fake.add_issue("CHK", summary, labels=[odd])
    fake.add_issue("CHK", "other", labels=["firebell-INC-8"])
    quoted = odd.replace("\\", "\\\\").replace('"', '\\"')
    jql = f'project = "CHK" AND labels = "{quoted}" ORDER BY created ASC'
    assert await search(jira, jql) == ["CHK-1", "CHK-2"]
    assert await refusal(jira, jql.replace('"CHK"', '"NOPE"')) == [
        "The value 'NOPE' does not exist for the field 'project'."]


async def test_the_key_shape_names_every_missing_key(fake):
    jira = await client(fake)
    for n in range(3):
        fake.add_issue("CHK", f"task {n}")
    assert await search(jira, "key in (CHK-3, CHK-1)") == ["CHK-3", "CHK-1"]
    assert await refusal(jira, "key in (CHK-1, CHK-404, CHK-405)") == [
        "An issue with key 'CHK-404' does not exist for field 'key'.",
        "An issue with key 'CHK-405' does not exist for field 'key'."]


@pytest.mark.parametrize("jql", ['labels = "x"', "key in (CHK-1) ORDER BY key", 'summary ~ "disk"',
                                 'project = CHK AND labels = "x" ORDER BY created ASC'])
async def test_any_other_jql_is_a_loud_400(fake, jql):
    fake.add_issue("CHK", "task", labels=["x"])
    (message,) = await refusal(await client(fake), jql)
    assert message.startswith("FakeJira understands only the JQL Firebell sends") and jql in message


async def test_fields_and_query_options_firebell_does_not_ask_for_are_a_loud_400(fake):
    jira = await client(fake)
    fake.add_issue("CHK", "task")
    with pytest.raises(JIRAError) as refused:
        await call(jira.enhanced_search_issues, "key in (CHK-1)", fields=["assignee"],
                   json_result=True)
    assert refused.value.status_code == 400 and "not ['assignee']" in refused.value.text
    with pytest.raises(JIRAError) as expanded:
        await call(jira.enhanced_search_issues, "key in (CHK-1)", fields=["summary"],
                   expand="changelog", json_result=True)
    assert expanded.value.status_code == 400 and "'expand'" in expanded.value.text


async def test_create_names_every_field_error_at_once(fake):
    jira = await client(fake)
    bad = {"project": {"key": "NOPE"}, "issuetype": {"name": "Task"}, "summary": "",
           "labels": ["has space"], "assignee": {"accountId": "acc-nobody"},
           "duedate": "soon", "customfield_1": 3}
    with pytest.raises(JIRAError) as refused:
        await call(jira.create_issue, fields=bad, prefetch=False)
    assert refused.value.status_code == 400
    assert set(refused.value.response.json()["errors"]) == {
        "project", "summary", "labels", "assignee", "duedate", "customfield_1"}
    assert fake.issues == {}


async def test_links_read_from_both_ends_and_are_made_once(fake):
    jira = await client(fake)
    task, incident = fake.add_issue("CHK", "task"), fake.add_issue("CHK", "incident")
    for _ in range(2):
        await call(jira.create_issue_link, "Relates", inwardIssue=task.key,
                   outwardIssue=incident.key)
    page = await call(jira.enhanced_search_issues, f"key in ({task.key}, {incident.key})",
                      fields=["issuelinks"], json_result=True)
    links = {i["key"]: i["fields"]["issuelinks"] for i in page["issues"]}
    assert links[task.key] == [{"type": {"name": "Relates"}, "outwardIssue": {"key": incident.key}}]
    assert links[incident.key] == [{"type": {"name": "Relates"}, "inwardIssue": {"key": task.key}}]
    assert len(fake.links) == 1 and len(fake.requests_of("link_types")) == 2
    with pytest.raises(JIRAError) as gone:
        await call(jira.create_issue_link, "Relates", inwardIssue=task.key, outwardIssue="CHK-999")
    assert gone.value.status_code == 404


async def test_user_search_by_email_hides_private_addresses_and_skips_inactive_users(fake):
    ana = fake.add_user("ana@example.com", display_name="Ana Lopez")
    bo = fake.add_user("bo@example.com", email_visible=False)
    fake.add_user("gone@example.com", active=False)
    jira = await client(fake)
    assert [u.emailAddress for u in await call(jira.search_users, query="ana@example.com")] == [
        "ana@example.com"]
    (hidden,) = await call(jira.search_users, query="bo@example.com", maxResults=10)
    assert hidden.accountId == bo and not hasattr(hidden, "emailAddress")
    assert await call(jira.search_users, query="gone@example.com") == []
    assert [u.accountId for u in await call(jira.search_users, query="lopez")] == [ana]
