"""Nobody let in: botbuilder's real JWT validation against a stand-in Bot Framework identity
(OpenID metadata and keys served locally, tokens signed with its own keys), the serviceUrl
allow-list, signing keys that never hold the process up, the tenant allow-list, rosters that
speak for their own tenant only, and who may do what."""
import asyncio
import time
from dataclasses import replace

import pytest
import requests
from sqlalchemy import select, update

from bot.adapter import BotSettings
from bot.app_token import READY_WAIT
from bot.signing_keys import KEY_WAIT
from storage import people
from storage.schema import conversations, outbox
from tests.conftest import fixture_bytes
from tests.fakes.bot_auth import FakeBotFrameworkIdentity
from tests.fakes.bot_connector import FakeBotConnector
from tests.harness import (CHANNELS, HEADERS, TEAM, TENANT, Harness, card_text, make_settings,
                           roster)

APP_ID = "7c1f2a55-0f00-4b00-8e00-00000000f1b3"
ENDPOINT_KEYS = ("TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL", "TO_BOT_FROM_CHANNEL_TOKEN_ISSUER",
                 "TO_BOT_FROM_EMULATOR_OPENID_METADATA_URL", "TO_CHANNEL_FROM_BOT_LOGIN_URL",
                 "TO_CHANNEL_FROM_BOT_OAUTH_SCOPE", "OAUTH_URL", "CALLER_ID",
                 "VALIDATE_AUTHORITY")


# How the Bot Framework login endpoint behaves from Firebell's start on: an indirect parameter
# of `secured`. MSAL asks the login endpoint for its discovery document before each token, and
# only the bot's replies go through MSAL (Firebell's outbox posts to the token URL directly), so
# a fault on that document reaches the replies' token alone, from the first fetch on.
LOGIN_ENDPOINT = {
    "slow": lambda connector: connector.hang_next(100, seconds=8.0, kind="oidc_discovery"),
    "down": lambda connector: connector.fail_next(100, status=503, kind="oidc_discovery"),
}


@pytest.fixture
async def secured(database_url, monkeypatch, request):
    connector = FakeBotConnector(tls=True, require_auth=True, app_id=APP_ID)
    identity = FakeBotFrameworkIdentity(app_id=APP_ID)
    await connector.start()
    await identity.start()
    connector.set_roster(TEAM, roster())
    if getattr(request, "param", None):
        LOGIN_ENDPOINT[request.param](connector)
    # botbuilder's replies (requests) and Firebell's outbox (httpx) must trust the test CA.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", connector.ca_pem_path)
    monkeypatch.setenv("SSL_CERT_FILE", connector.ca_pem_path)
    config = identity.settings(connector=connector)
    bot = BotSettings(app_id=APP_ID, app_password=config["APP_PASSWORD"],
                      endpoints={k: config[k] for k in ENDPOINT_KEYS})
    # The stand-in connector is on 127.0.0.1: the allow-list must name it.
    h = Harness(make_settings(database_url, bot=bot, service_url_hosts=("127.0.0.1",)),
                connector, authorize=lambda a: identity.auth_header(service_url=a["serviceUrl"]))
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
    assert "now minor" in (await h.say("incident level 1 minor because a false alarm",
                                       who="sarah"))["text"]


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
    await jira.go_down()
    settings = make_settings(database_url, integrations=Integrations(
        jira_url=jira.base_url, jira_email=jira.email, jira_api_token="jira-token-do-not-log",
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


@pytest.fixture
async def outsider(secured):
    """A Bot Connector stand-in trusted for TLS like the real one, reached as `localhost`:
    a host the allow-list (127.0.0.1) does not name. Nothing may ever reach it."""
    async with FakeBotConnector(tls=True, ca=secured.connector.ca, app_id=APP_ID) as fake:
        fake.service_url = f"https://localhost:{fake.port}/"
        yield fake


async def test_a_signed_activity_for_a_service_url_outside_the_allow_list_is_refused(
        secured, outsider):
    h = secured
    activity = h.channel_message("incident declare checkout is down")
    activity["serviceUrl"] = outsider.service_url
    # Validly signed, and the token's serviceurl claim matches: botbuilder lets it through.
    status, body = await h.send(activity, headers={
        "Authorization": h.identity.auth_header(service_url=outsider.service_url)})
    assert status == 403, body
    assert "FIREBELL_SERVICE_URL_HOSTS" in body["error"]
    await h.settle()
    assert outsider.requests == []
    assert await h.incidents() == []
    async with h.ctx.db.read() as conn:
        urls = (await conn.execute(select(conversations.c.service_url))).scalars().all()
    assert outsider.service_url not in urls
    # Unauthenticated, the same activity is still a 401: authentication comes first.
    status, _ = await h.send(activity, headers={})
    assert status == 401


async def test_stored_conversations_pointing_elsewhere_park_the_job_instead_of_calling(
        secured, outsider):
    h = secured
    await h.subscribe("payments")
    async with h.ctx.db.write() as conn:  # a reference stored before the allow-list existed
        await conn.execute(update(conversations).where(
            conversations.c.id == CHANNELS["payments"]).values(service_url=outsider.service_url))
    assert (await h.pagerduty("01-payment-gateway-triggered.json")).status == 200
    await h.settle()
    async with h.ctx.db.read() as conn:
        job = (await conn.execute(select(outbox).where(outbox.c.kind == "post_card"))
               ).mappings().one()
    assert job["status"] == "failed" and job["attempts"] == 1  # parked, not retried
    assert "FIREBELL_SERVICE_URL_HOSTS" in job["last_error"]
    assert outsider.requests == []


async def test_a_slow_key_endpoint_holds_up_only_the_request_that_needs_a_key(secured):
    """One token with an unknown kid while the OpenID endpoints take 8 s to answer: /healthz
    and a signed PagerDuty webhook still answer at once. They are sent from threads, like a
    load balancer's probe: a client on Firebell's own (blocked) loop could not even time it."""
    h = secured
    h.identity.slow(8.0)
    h.identity.forget_cached_metadata()  # as at start, or a day later: the keys must be fetched
    fetches = len(h.identity.requests_of("openid_metadata"))
    stranger = h.identity.new_key(publish=False)
    activity = h.channel_message("incident declare checkout is down")
    header = h.identity.auth_header(service_url=activity["serviceUrl"], key=stranger)

    def fetch_started() -> None:
        deadline = time.monotonic() + 5
        while len(h.identity.requests_of("openid_metadata")) == fetches:
            assert time.monotonic() < deadline, "the unknown kid started no key fetch"
            time.sleep(0.005)

    def timed(call) -> tuple[int, float]:
        fetch_started()
        started = time.monotonic()
        status = call().status_code
        return status, time.monotonic() - started

    name = "01-payment-gateway-triggered.json"
    webhook = lambda: requests.post(f"{h.url}/webhooks/pagerduty", data=fixture_bytes(name),
                                    headers=HEADERS[name], timeout=30)
    started = time.monotonic()
    waiting = asyncio.create_task(h.send(activity, headers={"Authorization": header}))
    health, delivery = await asyncio.gather(
        asyncio.to_thread(timed, lambda: requests.get(f"{h.url}/healthz", timeout=30)),
        asyncio.to_thread(timed, webhook))
    status, _ = await waiting
    waited = time.monotonic() - started
    h.identity.slow(0)
    # "At once" = far inside the 8 s the key fetch takes (slack for a loaded, shared machine).
    assert health[0] == 200 and health[1] < 1.0, health
    assert delivery[0] == 200 and delivery[1] < 1.0, delivery
    assert status == 401
    assert waited < KEY_WAIT + 1.5  # refused after the bounded wait, not after the fetch


async def test_a_failed_key_fetch_is_not_retried_on_every_request(secured):
    h = secured
    h.identity.forget_cached_metadata()
    h.identity.fail_next(100, status=503, kind="openid_metadata")
    fetches = len(h.identity.requests_of("openid_metadata"))
    for _ in range(4):
        status, _ = await h.send(h.channel_message("incident list"))
        assert status == 401
    h.identity.clear_faults()
    assert len(h.identity.requests_of("openid_metadata")) == fetches + 1  # then it backs off
    assert not h.connector.requests_of("reply")


def mid_fetch(h) -> list:
    """The bot's token fetches (MSAL's first request of each) the login endpoint has not
    answered yet."""
    return [r for r in h.connector.requests_of("oidc_discovery") if r.status is None]


@pytest.mark.parametrize("secured", ["slow"], indirect=True)
async def test_a_slow_login_endpoint_holds_up_only_the_reply_that_needs_a_token(secured):
    """No token for the bot's replies yet, and the login endpoint takes 8 s to answer: while a
    turn waits to reply, /healthz and a signed PagerDuty webhook still answer at once (probed
    from threads, as above). The turn gives up on its reply after a bounded wait; once the slow
    answer is in, replies go out with that token, and nothing fetched another."""
    h = secured

    def fetch_in_flight() -> None:
        deadline = time.monotonic() + 5
        while not mid_fetch(h):
            assert time.monotonic() < deadline, "no token fetch is under way"
            time.sleep(0.005)

    def timed(call) -> tuple[int, float]:
        fetch_in_flight()
        started = time.monotonic()
        status = call().status_code
        return status, time.monotonic() - started

    name = "01-payment-gateway-triggered.json"
    webhook = lambda: requests.post(f"{h.url}/webhooks/pagerduty", data=fixture_bytes(name),
                                    headers=HEADERS[name], timeout=30)
    started = time.monotonic()
    waiting = asyncio.create_task(h.send(h.channel_message("incident list")))
    health, delivery = await asyncio.gather(
        asyncio.to_thread(timed, lambda: requests.get(f"{h.url}/healthz", timeout=30)),
        asyncio.to_thread(timed, webhook))
    status, _ = await waiting
    waited = time.monotonic() - started
    # "At once" = far inside the 8 s the login takes (slack for a loaded, shared machine).
    assert health[0] == 200 and health[1] < 1.0, health
    assert delivery[0] == 200 and delivery[1] < 1.0, delivery
    assert status in (200, 201)  # the turn ran; its reply alone could not go out
    assert waited < READY_WAIT + 1.5  # gave up after the bounded wait, not after the fetch
    assert not h.connector.requests_of("reply")

    h.connector.clear_faults()
    await h.connector.wait_for(lambda: not mid_fetch(h), timeout=15)  # the slow answer
    await h.say("incident list")  # a reply is posted, signed with the token that came in
    assert len(h.connector.requests_of("oidc_discovery")) == 1


async def test_replies_reuse_the_bots_token(secured):
    """One token for many replies (botbuilder fetched one per turn): the next fetch is due only
    close to its expiry (tests/bot/test_app_token.py turns that clock)."""
    h = secured
    await h.subscribe("checkout")
    await h.settle()
    tokens = len(h.connector.requests_of("token"))
    for text in ("incident declare checkout is down", "incident list", "incident show 1",
                 "incident ack 1", "incident list"):
        await h.say(text)
    await h.settle()
    assert len(h.connector.requests_of("reply")) >= 5
    assert len(h.connector.requests_of("token")) == tokens
    assert len(h.connector.requests_of("oidc_discovery")) == 1  # the fetch at start-up


@pytest.mark.parametrize("secured", ["down"], indirect=True)
async def test_a_failed_token_fetch_is_retried_with_back_off_not_on_every_reply(secured,
                                                                                caplog):
    h = secured
    for _ in range(4):
        started = time.monotonic()
        status, _ = await h.send(h.channel_message("incident list"))
        assert status in (200, 201)
        assert time.monotonic() - started < 1.0  # nothing to wait for: fails fast
    assert len(h.connector.requests_of("oidc_discovery")) == 1  # at start; then backs off
    assert not h.connector.requests_of("reply")
    at_start = "\n".join(r.getMessage() for r in caplog.get_records("setup"))
    assert "503" in at_start and "next try in 10 s" in at_start


async def test_a_roster_speaks_for_its_own_tenant_only(harness):
    """A roster fetched in tenant A maps Mallory's AAD id to the incident commander's e-mail
    (and claims tenant B for her). In tenant B she is still nobody."""
    h = harness
    await h.subscribe("checkout")
    await h.say("incident declare checkout is down")
    elsewhere, their_team = "0000-elsewhere-tenant", "19:elsewhere-team@thread.tacv2"
    commander = "sarah.kim@shopfront.example"
    h.connector.set_roster(their_team, [{
        "id": "29:mallory", "name": "Mallory", "aadObjectId": "aad-mallory", "email": commander,
        "userPrincipalName": commander, "tenantId": TENANT}])
    install = h.install()
    install["conversation"].update(id=their_team, tenantId=elsewhere)
    install["channelData"].update(tenant={"id": elsewhere}, team={"id": their_team},
                                  channel={"id": their_team, "name": "General"})
    assert (await h.send(install))[0] in (200, 201)
    await h.settle()
    assert h.connector.requests_of("members")[-1].params["conversationId"] == their_team

    message = h.channel_message("incident level 1 minor")
    message["from"] = {"id": "29:mallory", "name": "Mallory", "aadObjectId": "aad-mallory"}
    before = len(h.connector.requests_of("reply"))
    assert (await h.send(message))[0] in (200, 201)
    await h.connector.wait_for(lambda: len(h.connector.requests_of("reply")) > before)
    reply = h.connector.requests_of("reply")[-1].body
    assert "now minor" not in reply["text"]
    assert (await h.incident(1)).level != "minor"
    async with h.ctx.db.read() as conn:  # stored under the conversation's tenant, not hers
        assert (await people.by_aad(conn, elsewhere, "aad-mallory"))["email"] == commander
        assert await people.by_aad(conn, TENANT, "aad-mallory") is None


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
