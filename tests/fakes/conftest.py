import httpx
import pytest


@pytest.fixture
async def http():
    """A plain HTTP client, for talking to a stand-in as its real clients' wire would."""
    async with httpx.AsyncClient(timeout=5) as client:
        yield client
