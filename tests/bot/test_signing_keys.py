"""bot/signing_keys.py against a stand-in Bot Framework identity, on a clock the test turns:
keys served from the cache, refreshed behind it, unknown kids and failures rate-limited."""
import time

import pytest

from bot.signing_keys import (BACKOFF_FIRST, REFRESH_EVERY, UNKNOWN_KID_EVERY, SigningKeys)
from tests.fakes.bot_auth import FakeBotFrameworkIdentity


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def identity():
    async with FakeBotFrameworkIdentity() as fake:
        yield fake


def fetches(identity) -> int:
    return len(identity.requests_of("keys"))


async def test_keys_come_from_the_cache_and_a_day_old_cache_refreshes_behind(identity):
    clock = Clock()
    keys = SigningKeys(identity.metadata_url, clock=clock)
    kid = identity.default_key.kid
    assert (await keys.get(kid)).endorsements == identity.default_key.endorsements
    await keys.get(kid)
    assert fetches(identity) == 1

    clock.now += REFRESH_EVERY + 1
    identity.slow(0.5)
    started = time.monotonic()
    assert await keys.get(kid)  # the old key, at once
    assert time.monotonic() - started < 0.25  # well inside the 0.5 s the fetch takes
    await identity.wait_for(lambda: fetches(identity) == 2)
    identity.slow(0)


async def test_an_unknown_kid_refetches_at_most_every_few_minutes(identity):
    clock = Clock()
    keys = SigningKeys(identity.metadata_url, clock=clock)
    await keys.get(identity.default_key.kid)
    rotated = identity.new_key()  # published after the fetch
    for _ in range(3):
        with pytest.raises(PermissionError, match="not among the Bot Framework's published"):
            await keys.get(rotated.kid)
    assert fetches(identity) == 1
    clock.now += UNKNOWN_KID_EVERY + 1
    assert await keys.get(rotated.kid)
    assert fetches(identity) == 2


async def test_failed_fetches_back_off_doubling(identity):
    clock = Clock()
    keys = SigningKeys(identity.metadata_url, clock=clock)
    identity.fail_next(2, status=503, kind="openid_metadata")
    metadata = lambda: len(identity.requests_of("openid_metadata"))  # noqa: E731
    kid = identity.default_key.kid
    for expected_fetches, advance in ((1, 0), (1, BACKOFF_FIRST - 1), (2, 2),
                                      (2, 2 * BACKOFF_FIRST - 1)):
        clock.now += advance
        with pytest.raises(PermissionError):
            await keys.get(kid)
        assert metadata() == expected_fetches
    clock.now += 2
    assert await keys.get(kid)
    assert metadata() == 3
