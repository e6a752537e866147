"""FakePagerDuty over raw HTTP: the wire facts Firebell's client leans on and its own tests
(tests/integrations/test_pagerduty_client.py) do not reach, and a loud 400 for anything else."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import httpx
import pytest

from tests.fakes.pagerduty import ACCEPT_V2, FakePagerDuty

ACK = {"incident": {"type": "incident_reference", "status": "acknowledged"}}
NOW = datetime.now(timezone.utc).replace(microsecond=0)


@pytest.fixture
async def pd():
    async with FakePagerDuty() as fake:
        fake.ana, fake.bo = (fake.add_user(name, f"{name.split()[0].lower()}@example.com")
                             for name in ("Ana Lopez", "Bo Berg"))
        fake.policy = fake.add_escalation_policy("Ops")
        fake.schedule = fake.add_schedule("Ops primary")
        fake.add_oncall(fake.ana, fake.policy, 1, fake.schedule, NOW - timedelta(hours=2),
                        NOW + timedelta(hours=6))
        fake.add_oncall(fake.bo, fake.policy, 1, fake.schedule, NOW + timedelta(hours=6),
                        NOW + timedelta(hours=30))
        fake.add_oncall(fake.bo, fake.policy, 2)  # always on call at level 2, no schedule
        fake.incident = fake.add_incident("Checkout errors", fake.add_service("Checkout"))
        yield fake


@pytest.fixture
async def http(pd):
    headers = {"Authorization": f"Token token={pd.token}", "Accept": ACCEPT_V2}
    async with httpx.AsyncClient(base_url=pd.base_url, headers=headers, timeout=5) as client:
        yield client


def error(response: httpx.Response) -> tuple[int, str, int]:
    body = response.json()["error"]
    return response.status_code, body["message"], body["code"]


async def test_a_write_names_its_user_in_from(pd, http):
    url = f"/incidents/{pd.incident}"
    no_from = await http.put(url, json=ACK)
    assert error(no_from) == (400, "Invalid Input Provided", 2001)
    assert "From" in no_from.json()["error"]["errors"][0]
    bearer = {"Authorization": f"Bearer {pd.token}", "From": "ana@example.com"}
    assert error(await http.put(url, json=ACK, headers=bearer)) == (401, "Authentication failed",
                                                                    2006)
    snoozed = {"incident": {"type": "incident_reference", "status": "snoozed"}}
    from_ana = {"From": "ana@example.com"}
    assert error(await http.put(url, json=snoozed, headers=from_ana))[2] == 1003
    assert pd.incidents[pd.incident].status == "triggered"
    acked = await http.put(url, json=ACK, headers={"From": "bo@example.com"})
    assert acked.json()["incident"]["status"] == "acknowledged"
    assert pd.incidents[pd.incident].acknowledgements[0][1] == pd.bo


async def test_oncall_users_are_references_unless_included_and_earliest_keeps_one(pd, http):
    now = (await http.get("/oncalls", params={"escalation_policy_ids[]": pd.policy})).json()
    assert [(o["escalation_level"], o["user"]["id"]) for o in now["oncalls"]] == [
        (1, pd.ana), (2, pd.bo)]
    assert now["oncalls"][0]["user"]["type"] == "user_reference"
    assert "email" not in now["oncalls"][0]["user"]
    assert now["oncalls"][1]["schedule"] is None and now["oncalls"][1]["end"] is None

    window = {"since": (NOW - timedelta(hours=1)).isoformat(),
              "until": (NOW + timedelta(days=1)).isoformat(), "include[]": "users"}
    every = (await http.get("/oncalls", params=window)).json()["oncalls"]
    assert [(o["escalation_level"], o["user"]["email"]) for o in every] == [
        (1, "ana@example.com"), (1, "bo@example.com"), (2, "bo@example.com")]
    pd.add_oncall(pd.ana, pd.policy, 1, pd.schedule, NOW + timedelta(hours=30),
                  NOW + timedelta(hours=54))
    wider = {**window, "until": (NOW + timedelta(days=2)).isoformat()}
    assert len((await http.get("/oncalls", params=wider)).json()["oncalls"]) == 4
    earliest = (await http.get("/oncalls", params={**wider, "earliest": "true"})).json()["oncalls"]
    assert [(o["escalation_level"], o["user"]["id"]) for o in earliest] == [
        (1, pd.ana), (1, pd.bo), (2, pd.bo)]
    assert earliest[0]["start"] == (NOW - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize("path, params", [
    ("/oncalls", {"schedule_ids": "PNOPE"}),  # PagerDuty ignores it and returns everyone
    ("/oncalls", {"user_ids[]": "PU1"}),
    ("/oncalls", {"include[]": "schedules"}),
    ("/oncalls", {"earliest": "false"}),
    ("/services", {"query": "check"}),
    ("/services", {"total": "true"}),
])
async def test_a_query_firebell_does_not_send_is_a_loud_400(http, path, params):
    refused = await http.get(path, params=params)
    assert error(refused)[0::2] == (400, 2001)


async def test_what_else_firebell_does_not_send_is_refused_too(pd, http):
    more = {"incident": {**ACK["incident"], "resolution": "fixed"}}
    refused = await http.put(f"/incidents/{pd.incident}", json=more,
                             headers={"From": "ana@example.com"})
    assert error(refused) == (400, "Invalid Input Provided", 2001)
    assert error(await http.get("/oncalls", params={"since": "yesterday"}))[0::2] == (400, 2004)
    users = await http.get("/users")
    assert users.status_code == 404 and "FakePagerDuty has no endpoint GET /users" in users.text


async def test_a_rate_limit_says_when_to_come_back_without_retry_after(pd, http):
    pd.rate_limit_next(reset_seconds=7, kind="oncalls")
    limited = await http.get("/oncalls")
    assert error(limited) == (429, "Rate Limit Exceeded", 2020)
    assert limited.headers["ratelimit-reset"] == "7" and "Retry-After" not in limited.headers
    assert (await http.get("/oncalls")).status_code == 200


async def test_create_incident_dedups_open_incidents_by_key_like_pagerduty(pd, http):
    service = next(iter(pd.services))
    new = {"incident": {"type": "incident", "title": "Page Ops", "incident_key": "k1",
                        "service": {"id": service, "type": "service_reference"},
                        "escalation_policy": {"id": pd.policy,
                                              "type": "escalation_policy_reference"}}}
    from_ana = {"From": "ana@example.com"}
    assert error(await http.post("/incidents", json=new))[:2] == (400, "Invalid Input Provided")
    made = await http.post("/incidents", json=new, headers=from_ana)
    assert made.status_code == 201 and made.json()["incident"]["incident_key"] == "k1"
    twice = await http.post("/incidents", json=new, headers=from_ana)
    assert error(twice) == (400, "Arguments Caused Error", 2002)
    assert "matching dedup key already exists" in twice.json()["error"]["errors"][0]
    listed = (await http.get("/incidents", params={"incident_key": "k1"})).json()["incidents"]
    assert [i["id"] for i in listed] == [made.json()["incident"]["id"]]
    # Once resolved, the key opens a new incident.
    pd.incidents[listed[0]["id"]].status = "resolved"
    assert (await http.post("/incidents", json=new, headers=from_ana)).status_code == 201
    both = {"incident": {**new["incident"], "incident_key": "k2",
                         "assignments": [{"assignee": {"id": pd.bo, "type": "user_reference"}}]}}
    assert error(await http.post("/incidents", json=both, headers=from_ana))[2] == 2001
    untitled = {"incident": {**new["incident"], "title": ""}}
    assert error(await http.post("/incidents", json=untitled, headers=from_ana))[2] == 2001
