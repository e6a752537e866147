"""Migration 0010_roster_per_tenant keeps the roster rows it finds, on SQLite and PostgreSQL:
each under the tenant it recorded ('' where none), and can be undone."""
from datetime import datetime, timezone

from alembic import command
from alembic.config import Config
from sqlalchemy import insert, select

from storage import people
from storage.db import MIGRATIONS, Database
from storage.schema import teams_users

BEFORE = "0009_postmortem_waivers"


def _to(revision: str, downgrade: bool = False):
    def run(sync_conn) -> None:
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        cfg.attributes["connection"] = sync_conn
        (command.downgrade if downgrade else command.upgrade)(cfg, revision)
    return run


async def test_existing_roster_rows_survive_under_their_tenant(database_url):
    db = Database(database_url)
    now = datetime.now(timezone.utc)
    try:
        await db.migrate()
        async with db.write() as conn:
            await conn.run_sync(_to(BEFORE, downgrade=True))
            await conn.execute(insert(teams_users), [
                dict(aad_object_id="aad-priya", email="priya.raman@shopfront.example",
                     name="Priya Raman", tenant_id="tenant-a", updated_at=now),
                dict(aad_object_id="aad-old", email="old@shopfront.example", name="Old",
                     tenant_id=None, updated_at=now)])
        await db.migrate()
        async with db.read() as conn:
            assert (await people.by_aad(conn, "tenant-a", "aad-priya"))["email"] == \
                "priya.raman@shopfront.example"
            assert (await people.by_aad(conn, "", "aad-old"))["email"] == "old@shopfront.example"
            assert await people.by_aad(conn, "tenant-b", "aad-priya") is None
        async with db.write() as conn:  # the same person in a second tenant: a row of its own
            await people.remember_members(db, conn, "tenant-b", [
                {"aadObjectId": "aad-priya", "email": "priya@elsewhere.example"}], now)
        async with db.read() as conn:
            rows = (await conn.execute(select(teams_users.c.tenant_id, teams_users.c.email)
                                       .where(teams_users.c.aad_object_id == "aad-priya"))).all()
        assert sorted(rows) == [("tenant-a", "priya.raman@shopfront.example"),
                                ("tenant-b", "priya@elsewhere.example")]
        async with db.write() as conn:  # undone: one row per AAD id again, then redone
            await conn.run_sync(_to(BEFORE, downgrade=True))
            await conn.run_sync(_to("head"))
    finally:
        await db.close()
