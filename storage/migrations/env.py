"""Alembic environment. Firebell migrates on a connection it passes in (`firebell migrate`, and
every start: storage.db.Database.migrate); `alembic …` on the command line (alembic.ini at the
repository root) connects by itself, to DATABASE_URL as Firebell would read it."""
import asyncio

from alembic import context
from sqlalchemy.ext.asyncio import create_async_engine

from storage.db import JSON_OPTIONS, normalise_url
from storage.schema import metadata


def include_object(obj, name, type_, reflected, compare_to):
    # Full-text search tables and triggers are written by hand in their migration.
    return not (type_ == "table" and reflected and compare_to is None and name.startswith("search"))


def run_on(connection) -> None:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True,
                      include_object=include_object)
    with context.begin_transaction():
        context.run_migrations()


async def run_from_command_line() -> None:
    from app import database_url_from_environment  # the one reader of the environment
    url = context.config.get_main_option("sqlalchemy.url") or database_url_from_environment()
    engine = create_async_engine(normalise_url(url), **JSON_OPTIONS)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(run_on)
    finally:
        await engine.dispose()


connection = context.config.attributes.get("connection")
if connection is not None:
    run_on(connection)
elif context.is_offline_mode():
    raise SystemExit("Firebell's migrations need a database connection: drop --sql.")
else:
    asyncio.run(run_from_command_line())
