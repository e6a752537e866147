"""PagerDutyClient against FakePagerDuty (real HTTP on 127.0.0.1)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from integrations.errors import PermanentFailure, TemporaryFailure
from integrations.pagerduty import OnCall, PagerDutyClient, Service, ServiceDependency
from tests.fakes.pagerduty import ACCEPT_V2, FakePagerDuty


@pytest.fixture
async def pd():
    async with FakePagerDuty() as fake:
        fake.ana = fake.add_user("Ana Lopez", "ana@example.com")
        fake.ben = fake.add_user("Ben Okafor", "ben@example.com")
        fake.checkout = fake.add_service("Checkout")
        yield fake


@pytest.fixture
async def client(pd):
    client = PagerDutyClient(api_url=pd.base_url, token=pd.token, from_email="ana@example.com", timeout=2)
    yield client
    await client.close()


async def test_acknowledge_then_again_is_idempotent(pd, client):
    incident = pd.add_incident("DB down", pd.checkout)
    first = await client.set_status(incident, "acknowledged")
    assert (first.status, first.changed) == ("acknowledged", True)
    assert pd.incidents[incident].acknowledgements[0][1] == pd.ana  # acted as From
    put = pd.requests_of("update_incident")[0]
    assert put.headers["Authorization"] == f"Token token={pd.token}"
    assert put.headers["Accept"] == ACCEPT_V2 and put.headers["From"] == "ana@example.com"
    assert put.body == {"incident": {"type": "incident_reference", "status": "acknowledged"}}

    again = await client.set_status(incident, "acknowledged")
    assert (again.status, again.changed) == ("acknowledged", False)
    assert len(pd.requests_of("update_incident")) == 1


async def test_resolve_and_acknowledging_a_resolved_incident_both_succeed(pd, client):
    incident = pd.add_incident("DB down", pd.checkout)
    assert (await client.set_status(incident, "resolved")).changed
    assert pd.incidents[incident].status == "resolved"
    late_ack = await client.set_status(incident, "acknowledged")
    assert (late_ack.status, late_ack.changed) == ("resolved", False)
    assert not (await client.set_status(incident, "resolved")).changed


async def test_resolved_between_look_and_write_counts_as_done(pd, client):
    incident = pd.add_incident("DB down", pd.checkout)
    # PagerDuty answers 400 "Incident Already Resolved" (code 1001) to the write.
    pd.respond_next(400, kind="update_incident",
                    body={"error": {"message": "Incident Already Resolved", "code": 1001}})
    result = await client.set_status(incident, "acknowledged")
    assert (result.status, result.changed) == ("resolved", False)


async def test_lost_answer_then_retry_is_harmless(pd, client):
    incident = pd.add_incident("DB down", pd.checkout)
    pd.lose_answer_next(kind="update_incident")
    with pytest.raises(TemporaryFailure):
        await client.set_status(incident, "resolved")
    retried = await client.set_status(incident, "resolved")
    assert (retried.status, retried.changed) == ("resolved", False)
    assert len(pd.requests_of("update_incident")) == 1


async def test_setup_errors_are_permanent_and_say_what_to_fix(pd):
    incident = pd.add_incident("DB down", pd.checkout)
    cases = [
        (dict(token="wrong-token", from_email="ana@example.com"), "PAGERDUTY_API_TOKEN"),
        (dict(token=pd.token, from_email="stranger@example.com"), "PAGERDUTY_FROM_EMAIL"),
    ]
    pd.add_read_only_token("ro-token-42")
    cases.append((dict(token="ro-token-42", from_email="ana@example.com"), "read-only"))
    for settings, hint in cases:
        client = PagerDutyClient(api_url=pd.base_url, timeout=2, **settings)
        try:
            with pytest.raises(PermanentFailure, match=hint) as caught:
                await client.set_status(incident, "acknowledged")
        finally:
            await client.close()
        assert settings["token"] not in str(caught.value)
    client = PagerDutyClient(api_url=pd.base_url, token=pd.token, from_email="ana@example.com")
    try:
        with pytest.raises(PermanentFailure, match="incident PNOPE not found"):
            await client.set_status("PNOPE", "resolved")
    finally:
        await client.close()


async def test_bad_status_is_a_programming_error(client):
    with pytest.raises(ValueError):
        await client.set_status("P1", "triggered")


async def test_rate_limit_uses_ratelimit_reset_or_retry_after(pd, client):
    incident = pd.add_incident("DB down", pd.checkout)
    pd.rate_limit_next(reset_seconds=12)
    with pytest.raises(TemporaryFailure) as reset:
        await client.set_status(incident, "acknowledged")
    assert reset.value.retry_after == 12
    pd.rate_limit_next(reset_seconds=12, retry_after=3)
    with pytest.raises(TemporaryFailure) as told:
        await client.services()
    assert told.value.retry_after == 3
    pd.fail_next(status=502)
    with pytest.raises(TemporaryFailure):
        await client.services()


async def test_outage_and_hang_are_temporary(pd):
    client = PagerDutyClient(api_url=pd.base_url, token=pd.token, from_email="ana@example.com", timeout=0.3)
    try:
        pd.hang_next(seconds=1.0)
        with pytest.raises(TemporaryFailure, match="timed out"):
            await client.services()
        await pd.go_down()
        with pytest.raises(TemporaryFailure):
            await client.services()
        await pd.come_back()
        assert await client.services() == [Service(pd.checkout, "Checkout")]
    finally:
        await client.close()


async def test_oncall_with_emails_filters_and_paging(pd, client):
    policy = pd.add_escalation_policy("Checkout EP")
    other_policy = pd.add_escalation_policy("Search EP")
    primary = pd.add_schedule("Checkout primary")
    now = datetime.now(timezone.utc).replace(microsecond=0)
    pd.add_oncall(pd.ana, policy, 1, primary, start=now - timedelta(hours=1), end=now + timedelta(hours=7))
    pd.add_oncall(pd.ben, policy, 2)  # always on call through the policy
    for n in range(120):  # enough people to need two pages of 100
        pd.add_oncall(pd.add_user(f"Person {n}", f"p{n}@example.com"), other_policy, 1)

    mine = await client.oncall(escalation_policy_ids=[policy])
    assert mine == [
        OnCall("ana@example.com", "Ana Lopez", 1, primary, policy, now - timedelta(hours=1), now + timedelta(hours=7)),
        OnCall("ben@example.com", "Ben Okafor", 2, None, policy, None, None),
    ]
    query = pd.requests_of("oncalls")[0].query
    assert query.getall("include[]") == ["users"] and query["earliest"] == "true"
    assert query.getall("escalation_policy_ids[]") == [policy]

    assert [o.email for o in await client.oncall(schedule_ids=[primary])] == ["ana@example.com"]
    later = await client.oncall(escalation_policy_ids=[policy], at=now + timedelta(hours=8))
    assert [o.email for o in later] == ["ben@example.com"]

    everyone = await client.oncall()
    assert len(everyone) == 122 and len({o.email for o in everyone}) == 122


async def test_services_and_dependencies(pd, client):
    database = pd.add_service("Database")
    search = pd.add_service("Search")
    for n in range(150):
        pd.add_service(f"Service {n:03d}")
    pd.add_dependency(supporting_service_id=database, dependent_service_id=pd.checkout)
    pd.add_dependency(supporting_service_id=database, dependent_service_id=search)

    services = await client.services()
    assert len(services) == 153 and Service(database, "Database") in services
    assert len(pd.requests_of("services")) == 2

    deps = await client.technical_service_dependencies([pd.checkout, database, search])
    assert deps == [ServiceDependency(pd.checkout, database), ServiceDependency(search, database)]
    with pytest.raises(PermanentFailure, match="service PNOPE not found"):
        await client.technical_service_dependencies(["PNOPE"])


# ---- creating incidents (a page from Teams) ------------------------------------------------------

async def test_create_incident_on_an_escalation_policy_exactly_once_per_incident_key(pd, client):
    policy = pd.add_escalation_policy("Checkout primary")
    made = await client.create_incident(title="INC-7: checkout is down", service_id=pd.checkout,
                                        incident_key="firebell-page-1a2b", details="Paged by Ana",
                                        escalation_policy_id=policy)
    assert made.created and made.status == "triggered" and made.number
    (post,) = pd.requests_of("create_incident")
    assert post.headers["From"] == "ana@example.com"
    assert post.body["incident"]["escalation_policy"] == {
        "id": policy, "type": "escalation_policy_reference"}
    assert "assignments" not in post.body["incident"]
    # Sent again (a retry after a lost answer): PagerDuty refuses the key, the same one comes back.
    again = await client.create_incident(title="INC-7: checkout is down", service_id=pd.checkout,
                                         incident_key="firebell-page-1a2b", details="Paged by Ana",
                                         escalation_policy_id=policy)
    assert (again.id, again.created) == (made.id, False)
    assert len(pd.incidents) == 1
    assert await client.find_incident_by_key("firebell-page-1a2b") == again
    assert await client.find_incident_by_key("firebell-page-none") is None


async def test_create_incident_assigned_to_a_person_and_refusals(pd, client):
    made = await client.create_incident(title="help", service_id=pd.checkout,
                                        incident_key="k-person", details="",
                                        assignee_ids=[pd.ben])
    assert pd.incidents[made.id].assignee_ids == [pd.ben]
    with pytest.raises(PermanentFailure, match="PagerDuty service PNOPE not found|Service not"):
        await client.create_incident(title="x", service_id="PNOPE", incident_key="k2",
                                     details="")
    nobody = PagerDutyClient(api_url=pd.base_url, token=pd.token, from_email="", timeout=2)
    try:
        with pytest.raises(PermanentFailure, match="PAGERDUTY_FROM_EMAIL"):
            await nobody.create_incident(title="x", service_id=pd.checkout, incident_key="k3",
                                         details="")
    finally:
        await nobody.close()
