"""Shared fixtures. Every test runs against a real database: a fresh SQLite file by default, or
PostgreSQL when DATABASE_URL points at one (a throwaway database on that server, emptied
between tests)."""
from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from storage.db import normalise_url
from storage.schema import metadata

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
FIXTURES = SHARED / "fixtures" / "pagerduty"
CATALOG = REPO / "config" / "catalog.yaml"

_PG_URL = os.environ.get("DATABASE_URL", "")
USING_POSTGRES = _PG_URL.startswith(("postgres://", "postgresql"))


def fixture_bytes(name: str) -> bytes:
    """Shared webhook fixtures, read as bytes: their signatures cover the exact bytes."""
    return (FIXTURES / name).read_bytes()


@pytest.fixture(scope="session")
def postgres_server_url():
    """A throwaway database on the configured PostgreSQL server, for the whole session."""
    if not USING_POSTGRES:
        yield None
        return
    base = normalise_url(_PG_URL)
    name = f"firebell_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    server = base.rsplit("/", 1)[0]

    async def admin(sql: str) -> None:
        engine = create_async_engine(f"{server}/postgres", isolation_level="AUTOCOMMIT")
        async with engine.connect() as conn:
            await conn.execute(text(sql))
        await engine.dispose()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    yield f"{server}/{name}"
    asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
async def database_url(tmp_path, postgres_server_url):
    """A database URL with an empty Firebell schema-to-be (migrations run at app start)."""
    if postgres_server_url is None:
        yield f"sqlite:///{tmp_path / 'firebell.db'}"
        return
    engine = create_async_engine(postgres_server_url, isolation_level="AUTOCOMMIT")
    async with engine.connect() as conn:
        tables = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
        exists = (await conn.execute(text("SELECT to_regclass('incidents')"))).scalar()
        if exists:
            await conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    await engine.dispose()
    yield postgres_server_url


@pytest.fixture
async def connector():
    from tests.fakes.bot_connector import FakeBotConnector
    from tests.harness import TEAM, roster

    async with FakeBotConnector() as fake:
        fake.set_roster(TEAM, roster())
        yield fake


@pytest.fixture
async def harness(database_url, connector):
    from tests.harness import Harness, make_settings

    h = await Harness(make_settings(database_url), connector).start()
    yield h
    await h.stop()
