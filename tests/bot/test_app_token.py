"""bot/app_token.py against a stand-in Azure AD login endpoint (FakeBotConnector's, reached by
MSAL over TLS), on a clock the test turns: one token for every turn's credentials until close to
its expiry, refreshed behind it, never waited for on the loop, failed fetches backing off."""
import asyncio
import time

import pytest
from botframework.connector.auth import PasswordServiceClientCredentialFactory

from bot.app_token import (BACKOFF_FIRST, BACKOFF_MAX, READY_WAIT, REFRESH_BEFORE, USE_MARGIN,
                           AppTokens, NoAppToken)
from tests.fakes.bot_connector import FakeBotConnector


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def login(monkeypatch):
    async with FakeBotConnector(tls=True) as fake:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", fake.ca_pem_path)  # MSAL's requests trust it
        yield fake


def factory(login, clock=time.monotonic) -> AppTokens:
    return AppTokens(PasswordServiceClientCredentialFactory(login.app_id, login.app_password),
                     clock=clock)


async def credentials(login, tokens: AppTokens):
    """What botbuilder asks for each turn's replies."""
    config = login.bot_settings()
    return await tokens.create_credentials(login.app_id, config["TO_CHANNEL_FROM_BOT_OAUTH_SCOPE"],
                                           config["TO_CHANNEL_FROM_BOT_LOGIN_URL"], True)


def fetched(login) -> int:
    return len(login.requests_of("token"))


async def test_one_token_serves_every_turn_until_close_to_expiry_then_is_refreshed_behind(login):
    clock = Clock()
    tokens = factory(login, clock)
    creds = await credentials(login, tokens)
    await creds.ready()
    first = creds.get_access_token()
    for _ in range(20):  # every reply of every turn
        assert (await credentials(login, tokens)).get_access_token() == first
    assert fetched(login) == 1

    clock.now += login.tokens.lifetime - REFRESH_BEFORE - 1
    assert creds.get_access_token() == first and fetched(login) == 1
    clock.now += 2
    login.hang_next(kind="token", seconds=0.5)
    started = time.monotonic()
    assert creds.get_access_token() == first  # at once, while the new one is fetched
    assert time.monotonic() - started < 0.25  # well inside the 0.5 s the fetch hangs
    await login.wait_for(lambda: fetched(login) == 2)
    deadline = time.monotonic() + 5
    while creds.get_access_token() == first:
        assert time.monotonic() < deadline, "the refreshed token never came into use"
        await asyncio.sleep(0.01)
    assert fetched(login) == 2


async def test_no_token_yet_fails_at_once_and_replies_wait_only_briefly(login):
    login.hang_next(kind="token", seconds=8.0)
    creds = await credentials(login, factory(login))
    started = time.monotonic()
    with pytest.raises(NoAppToken, match="still fetching"):
        creds.get_access_token()
    assert time.monotonic() - started < 1.0  # well inside the 8 s the fetch hangs
    await creds.ready()  # the first reply waits for the fetch under way, within bounds
    assert READY_WAIT - 0.5 < time.monotonic() - started < READY_WAIT + 0.5
    started = time.monotonic()
    await creds.ready()  # that fetch is slow: later replies no longer wait for it
    assert time.monotonic() - started < 1.0
    with pytest.raises(NoAppToken):
        creds.get_access_token()
    assert fetched(login) == 1


async def test_failed_fetches_back_off_doubling_up_to_a_cap(login):
    clock = Clock()
    backoffs = [min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** n) for n in range(6)]
    assert backoffs[-1] == backoffs[-2] == BACKOFF_MAX
    login.fail_next(len(backoffs), status=503, kind="token")
    creds = await credentials(login, factory(login, clock))
    for failures, backoff in enumerate(backoffs, start=1):
        await creds.ready()  # this fetch fails (and the waiting reply hears it at once)
        assert fetched(login) == failures
        clock.now += backoff - 1
        with pytest.raises(NoAppToken, match="the last fetch failed"):
            creds.get_access_token()
        assert fetched(login) == failures  # backing off: no fetch for this reply
        clock.now += 1
    await creds.ready()
    assert creds.get_access_token()
    assert fetched(login) == len(backoffs) + 1


async def test_a_token_about_to_expire_is_not_sent(login):
    clock = Clock()
    creds = await credentials(login, factory(login, clock))
    await creds.ready()
    token = creds.get_access_token()
    login.fail_next(100, status=503, kind="token")
    clock.now += login.tokens.lifetime - USE_MARGIN - 1
    assert creds.get_access_token() == token  # the refresh fails behind it
    await login.wait_for(lambda: fetched(login) == 2 and login.requests_of("token")[-1].status)
    clock.now += 2
    with pytest.raises(NoAppToken):
        creds.get_access_token()


async def test_a_quiet_bot_refreshes_its_token_on_time_by_itself(login):
    """No reply asks for a token all night: the loop that served the last turn refreshes it on
    time anyway. (A token living 20 s is due at half its life, and no sooner than BACKOFF_FIRST
    after the last fetch: about 10 s here.)"""
    login.tokens.lifetime = 20
    creds = await credentials(login, factory(login))
    await creds.ready()
    first = creds.get_access_token()
    await login.wait_for(lambda: fetched(login) == 2 and login.requests_of("token")[-1].status,
                         timeout=BACKOFF_FIRST + 5)
    deadline = time.monotonic() + 5
    while creds.get_access_token() == first:
        assert time.monotonic() < deadline, "the refreshed token never came into use"
        await asyncio.sleep(0.01)
    assert fetched(login) == 2
