"""Nobody let in: botbuilder's real JWT validation against a stand-in Bot Framework identity
(OpenID metadata and keys served locally, tokens signed with its own keys), the tenant
allow-list, and who may do what."""
from dataclasses import replace

import pytest

from bot.adapter import BotSettings
from tests.fakes.bot_auth import FakeBotFrameworkIdentity
from tests.fakes.bot_connector import FakeBotConnector
from tests.harness import TEAM, Harness, card_text, make_settings, roster

APP_ID = "7c1f2a55-0f00-4b00-8e00-00000000f1b3"
ENDPOINT_KEYS = ("TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL", "TO_BOT_FROM_CHANNEL_TOKEN_ISSUER",
                 "TO_BOT_FROM_EMULATOR_OPENID_METADATA_URL", "TO_CHANNEL_FROM_BOT_LOGIN_URL",
                 "TO_CHANNEL_FROM_BOT_OAUTH_SCOPE", "OAUTH_URL", "CALLER_ID",
                 "VALIDATE_AUTHORITY")


@pytest.fixture
async def secured(database_url, monkeypatch):
    connector = FakeBotConnector(tls=True, require_auth=True, app_id=APP_ID)
    identity = FakeBotFrameworkIdentity(app_id=APP_ID)
    await connector.start()
    await identity.start()
    connector.set_roster(TEAM, roster())
    # botbuilder's replies (requests) and Firebell's outbox (httpx) must trust the test CA.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", connector.ca_pem_path)
    monkeypatch.setenv("SSL_CERT_FILE", connector.ca_pem_path)
    config = identity.settings(connector=connector)
    bot = BotSettings(app_id=APP_ID, app_password=config["APP_PASSWORD"],
                      endpoints={k: config[k] for k in ENDPOINT_KEYS})
    h = Harness(make_settings(database_url, bot=bot), connector,
                authorize=lambda a: identity.auth_header(service_url=a["serviceUrl"]))
    await h.start()
    h.identity = identity
    yield h
    await h.stop()
    await identity.stop()
    await connector.stop()


async def test_valid_token_runs_the_turn_and_replies_with_the_bots_own_token(secured):
    h = secured
    await h.subscribe("checkout")
    reply = await h.say("incident declare checkout is down")
    assert "INC-1" in card_text(reply["attachments"][0]["content"])
    # The reply went out with a token from the (stand-in) Bot Framework token service.
    assert all(r.headers.get("Authorization", "").startswith("Bearer ")
               for r in h.connector.requests_of("reply"))
    await h.settle()
    assert len(await h.incidents()) == 1


@pytest.mark.parametrize("case", ["none", "expired", "audience", "issuer", "serviceurl",
                                  "unknown_key", "forged", "garbage", "basic"])
async def test_every_bad_token_is_401_and_nothing_happens(secured, case):
    h = secured
    activity = h.channel_message("incident declare sneaky outage")
    sign = h.identity.sign
    url = activity["serviceUrl"]
    header = {
        "none": None,
        "expired": f"Bearer {sign(service_url=url, expired=True)}",
        "audience": f"Bearer {sign(service_url=url, audience='someone-else')}",
        "issuer": f"Bearer {sign(service_url=url, issuer='https://evil.example')}",
        "serviceurl": f"Bearer {sign(service_url='https://elsewhere.example/')}",
        "unknown_key": f"Bearer {sign(service_url=url, key=h.identity.new_key(publish=False))}",
        "forged": f"Bearer {sign(service_url=url, key=h.identity.new_key(publish=False), kid=h.identity.default_key.kid)}",
        "garbage": "Bearer not-a-jwt",
        "basic": "Basic dXNlcjpwYXNz",
    }[case]
    status, _ = await h.send(activity, headers={"Authorization": header} if header else {})
    assert status == 401
    assert await h.incidents() == []
    assert not h.connector.requests_of("reply")


async def test_other_tenants_are_refused_politely(database_url, connector):
    settings = make_settings(database_url, allowed_tenants=frozenset({"our-tenant"}))
    h = await Harness(settings, connector, tenant="their-tenant").start()
    try:
        reply = await h.say("incident declare checkout is down")
        assert "serves another organisation" in reply["text"]
        assert await h.incidents() == []
    finally:
        await h.stop()


async def test_outsiders_may_ack_but_not_resolve_and_the_card_stays(harness):
    h = harness
    await h.subscribe("checkout")
    await h.say("incident declare checkout is down")
    await h.settle()
    posted_updates = len(h.connector.updates)
    reply = await h.say("incident resolve INC-1", who="guest")
    assert "only the Checkout team" in reply["text"]
    status, body = await h.send(h.card_click("resolve", {"incident": "INC-1", "version": 2},
                                             who="guest"))
    assert body["type"] == "application/vnd.microsoft.activity.message"
    assert "only the Checkout team" in body["value"]
    await h.settle()
    assert (await h.incident(1)).status == "open"
    assert len(h.connector.updates) == posted_updates  # the card was not touched
    reply = await h.say("incident ack INC-1", who="guest")
    assert "acknowledged by Guest User" in reply["text"]
    # A payments engineer is not a checkout responder either; an incident commander is.
    assert "only the Checkout team" in (await h.say("incident level 1 minor", who="mei"))["text"]
    assert "now minor" in (await h.say("incident level 1 minor", who="sarah"))["text"]


async def test_someone_the_roster_does_not_know_yet(harness):
    h = harness
    await h.subscribe("checkout")
    await h.say("incident declare checkout is down")
    stranger = h.channel_message("incident resolve INC-1")
    stranger["from"] = {"id": "29:new", "name": "New Hire", "aadObjectId": "aad-new"}
    before = len(h.connector.requests_of("members"))
    status, _ = await h.send(stranger)
    await h.connector.wait_for(lambda: any("don't know who you are yet" in (r.body or {}).get(
        "text", "") for r in h.connector.requests_of("reply")))
    await h.settle()
    # The roster is fetched in the background, not on the request's path.
    assert len(h.connector.requests_of("members")) > before
    assert (await h.incident(1)).status == "open"


async def test_admins_may_do_anything(database_url, connector):
    settings = make_settings(database_url)
    settings = replace(settings, policy=replace(settings.policy,
                                                admins=frozenset({"guest@elsewhere.example"})))
    h = await Harness(settings, connector).start()
    try:
        await h.subscribe("checkout", who="guest")
        await h.say("incident declare checkout is down")
        assert "resolved by Guest User" in (await h.say("incident resolve 1", who="guest"))["text"]
    finally:
        await h.stop()


async def test_secrets_never_reach_the_logs(database_url, connector, caplog):
    """Failures are logged with what went wrong, never with a credential in them."""
    import logging
    from app import Integrations
    from tests.fakes.jira import FakeJira
    caplog.set_level(logging.DEBUG)
    jira = FakeJira(api_token="jira-token-do-not-log")
    await jira.start()
    for team in ("PAY", "CHK"):
        jira.add_project(team)
    await jira.down()
    settings = make_settings(database_url, integrations=Integrations(
        jira_url=jira.url, jira_email=jira.email, jira_api_token="jira-token-do-not-log",
        smtp_host="127.0.0.1", smtp_port=1, smtp_password="smtp-password-do-not-log",
        smtp_starttls=False, pagerduty_api_token="pd-token-do-not-log",
        pagerduty_api_url="http://127.0.0.1:1", pagerduty_from_email="x@shopfront.example"))
    h = await Harness(settings, connector).start()
    try:
        await h.subscribe("payments")
        await h.pagerduty("01-payment-gateway-triggered.json")
        await h.pagerduty("02-checkout-api-triggered.json",
                          headers={"X-PagerDuty-Signature": "v1=" + "ab" * 32})
        await h.say("incident ack 1", channel="payments", who="mei")
        await h.settle(timeout=15)
    finally:
        await h.stop()
        await jira.stop()
    logged = "\n".join(r.getMessage() + str(r.__dict__) for r in caplog.records)
    assert "failed" in logged  # JIRA, SMTP and PagerDuty were all unreachable
    for secret in ("jira-token-do-not-log", "smtp-password-do-not-log", "pd-token-do-not-log",
                   "whsec-test-secret"):
        assert secret not in logged


async def test_malformed_activities_are_400_and_the_rest_still_need_a_token(secured, caplog):
    """The body is parsed and checked before authentication (as the 415/413/400 answers always
    were), so a 100k-deep document or `"from": 5` is a 400 where it was a 500; every activity
    that gets as far as botbuilder is still authenticated."""
    import json
    h = secured

    async def post(body: bytes, headers: dict[str, str]) -> int:
        async with h.http.post(f"{h.url}/api/messages", data=body,
                               headers={"Content-Type": "application/json", **headers}) as resp:
            return resp.status

    activity = h.channel_message("incident declare sneaky outage")
    deep = b'{"type": "message", "value": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    wrong = json.dumps({**activity, "from": 5}).encode()
    for body in (deep, wrong):
        assert await post(body, {}) == 400
        assert await post(body, {"Authorization": h.authorize(activity)}) == 400
    assert await post(json.dumps(activity).encode(), {}) == 401
    assert await h.incidents() == [] and not h.connector.requests_of("reply")
    assert "Traceback" not in caplog.text
