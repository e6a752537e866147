"""JiraTracker with the real `jira` library against FakeJira (real HTTP on 127.0.0.1)."""
from __future__ import annotations

import asyncio
from datetime import date

import pytest

from integrations.errors import PermanentFailure, TemporaryFailure
from integrations.jira_tracker import JiraTracker, TaskStatus
from tests.fakes.jira import FakeJira

LABEL = "firebell-INC-7-postmortem"


@pytest.fixture
async def fake():
    async with FakeJira() as jira_fake:
        jira_fake.add_project("CHK")
        jira_fake.ana = jira_fake.add_user("ana@example.com", display_name="Ana Lopez")
        yield jira_fake


@pytest.fixture
def tracker(fake):
    return JiraTracker(fake.base_url, fake.email, fake.api_token, timeout=2)


async def ensure(tracker: JiraTracker, label: str = LABEL, **extra):
    return await tracker.ensure_task("CHK", "[INC-7] Post-mortem: checkout down",
                                     "Write the post-mortem.", [label, "firebell"], **extra)


async def test_constructor_is_lazy_and_a_task_is_created_once(fake, tracker):
    assert fake.requests == []  # building the tracker made no call
    first = await ensure(tracker, assignee_email="ana@example.com", due_date=date(2030, 1, 2))
    assert (first.key, first.created) == ("CHK-1", True)
    assert first.url == f"{fake.base_url}/browse/CHK-1" == tracker.browse_url("CHK-1")
    issue = fake.issue("CHK-1")
    assert issue.labels == [LABEL, "firebell"] and issue.assignee == fake.ana
    assert issue.duedate == "2030-01-02" and issue.description == "Write the post-mortem."

    again = await ensure(tracker)
    assert (again.key, again.created) == ("CHK-1", False)
    assert len(fake.issues) == 1 and len(fake.requests_of("create")) == 1
    assert len(fake.requests_of("server_info")) == 1  # one client, reused


async def test_lost_answer_then_retry_leaves_exactly_one_issue(fake, tracker):
    fake.lose_answer_next(kind="create")
    with pytest.raises(TemporaryFailure):
        await ensure(tracker)
    assert len(fake.issues) == 1  # created; the answer never came back
    assert len(fake.requests_of("create")) == 1  # and the library did not re-send it

    retried = await ensure(tracker)
    assert (retried.key, retried.created) == ("CHK-1", False)
    assert len(fake.issues) == 1 and len(fake.requests_of("create")) == 1


async def test_unknown_assignee_leaves_the_task_unassigned(fake, tracker):
    ref = await ensure(tracker, assignee_email="nobody@example.com")
    assert ref.created and fake.issue(ref.key).assignee is None


async def test_unassignable_person_gives_an_unassigned_task_not_a_failure(fake, tracker):
    refusal = {"errorMessages": [], "errors": {"assignee": "User 'x' cannot be assigned issues."}}
    fake.respond_next(400, kind="create", body=refusal)
    ref = await ensure(tracker, assignee_email="ana@example.com")
    assert ref.created and fake.issue(ref.key).assignee is None
    creates = fake.requests_of("create")
    assert "assignee" in creates[0].body["fields"] and "assignee" not in creates[1].body["fields"]


async def test_other_create_errors_are_permanent(fake, tracker):
    with pytest.raises(PermanentFailure, match="contains spaces"):
        await ensure(tracker, label="has spaces")
    assert fake.issues == {}


async def test_hidden_email_still_finds_the_single_account(fake, tracker):
    bo = fake.add_user("bo@example.com", email_visible=False)
    ref = await ensure(tracker, assignee_email="bo@example.com")
    assert fake.issue(ref.key).assignee == bo


async def test_link_is_made_once_even_across_retries(fake, tracker):
    incident = fake.add_issue("CHK", "INC-7 checkout down")
    fake.lose_answer_next(kind="link")
    with pytest.raises(TemporaryFailure):
        await ensure(tracker, link_to=incident.key)
    ref = await ensure(tracker, link_to=incident.key)
    assert ref.linked is True and not ref.created
    again = await ensure(tracker, link_to=incident.key)
    assert again.linked is True
    assert [(lk.type_name, lk.inward_key, lk.outward_key) for lk in fake.links] == [
        ("Relates", ref.key, incident.key)]
    assert len(fake.requests_of("link")) == 1  # the third call saw the link and sent none

    dangling = await ensure(tracker, label="firebell-INC-7-action-2", link_to="CHK-999")
    assert dangling.created and dangling.linked is False


async def test_statuses_in_one_search_with_done_and_due_dates(fake, tracker):
    a = fake.add_issue("CHK", "a", duedate="2030-05-01")
    b = fake.add_issue("CHK", "b")
    fake.set_status(b.key, "Done")
    c = fake.add_issue("CHK", "c")
    fake.set_status(c.key, "In Progress")
    found = await tracker.statuses([a.key, b.key, c.key, "chk-404"])
    assert found == {
        a.key: TaskStatus("To Do", False, date(2030, 5, 1)),
        b.key: TaskStatus("Done", True, None),
        c.key: TaskStatus("In Progress", False, None),
    }
    assert await tracker.statuses([]) == {}


async def test_statuses_are_chunked_at_fifty(fake, tracker):
    keys = [fake.add_issue("CHK", f"task {n}").key for n in range(120)]
    found = await tracker.statuses(keys)
    assert set(found) == set(keys)
    searches = fake.requests_of("search")
    assert len(searches) == 3
    assert all(len(r.query["jql"].split(",")) <= 50 for r in searches)


async def test_rate_limit_is_temporary_with_retry_after(fake, tracker):
    fake.fail_next(status=429, retry_after=17, kind="search")
    with pytest.raises(TemporaryFailure) as caught:
        await ensure(tracker)
    assert caught.value.retry_after == 17
    assert len(fake.requests_of("search")) == 1  # not retried (nor slept on) by the library


async def test_unavailable_is_temporary_with_and_without_retry_after(fake, tracker):
    fake.fail_next(status=503, retry_after=30, kind="create")
    with pytest.raises(TemporaryFailure) as with_hint:
        await ensure(tracker)
    assert with_hint.value.retry_after == 30
    fake.fail_next(status=503, kind="create")
    with pytest.raises(TemporaryFailure) as without:
        await ensure(tracker)
    assert without.value.retry_after is None
    assert len(fake.issues) == 0
    assert (await ensure(tracker)).created


async def test_unknown_project_is_permanent(fake, tracker):
    with pytest.raises(PermanentFailure, match="JIRA project NOPE does not exist"):
        await tracker.ensure_task("NOPE", "s", "d", [LABEL])


async def test_wrong_credentials_are_permanent_and_keep_the_token_secret(fake):
    tracker = JiraTracker(fake.base_url, fake.email, "wrong-token-123", timeout=2)
    with pytest.raises(PermanentFailure, match="JIRA_API_TOKEN") as caught:
        await ensure(tracker)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    assert "wrong-token-123" not in str(caught.value)


async def test_jira_down_then_back(fake, tracker):
    await fake.go_down()
    with pytest.raises(TemporaryFailure, match="unreachable"):
        await ensure(tracker)
    await fake.come_back()
    assert (await ensure(tracker)).created


async def test_a_hung_jira_times_out_as_temporary(fake):
    tracker = JiraTracker(fake.base_url, fake.email, fake.api_token, timeout=0.3)
    await tracker.statuses([fake.add_issue("CHK", "warm up").key])
    fake.hang_next(seconds=1.0, kind="search")
    with pytest.raises(TemporaryFailure, match="timed out"):
        await ensure(tracker)


async def test_a_jira_call_in_flight_leaves_the_event_loop_free(fake, tracker):
    """The jira library blocks, so the tracker runs it in a thread: while JIRA has not answered,
    the bot's loop goes on (here: the test sees the held search, and the call is still waiting)."""
    fake.hold_next(kind="search")
    call = asyncio.create_task(ensure(tracker))
    (search,) = await fake.wait_for(lambda: fake.requests_of("search"))
    assert search.status is None and not call.done()
    fake.release_held()
    assert (await call).created
