"""Write a new Alembic revision from the difference between storage/schema.py and the current
migrations: `python -m storage.new_migration 0003_add_x "add x"`. Review the file it writes.
Tables that migrations create by hand (full-text search indexes) are ignored by autogenerate."""
import sys
import tempfile

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine

from storage.db import MIGRATIONS


def main(rev_id: str, message: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        engine = create_engine(f"sqlite:///{tmp}/schema.db")
        with engine.begin() as conn:
            cfg = Config()
            cfg.set_main_option("script_location", str(MIGRATIONS))
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
            command.revision(cfg, message=message, autogenerate=True, rev_id=rev_id)


if __name__ == "__main__":
    if len(sys.argv) < 3:
        raise SystemExit('usage: python -m storage.new_migration 0003_short_name "what changed"')
    main(sys.argv[1], " ".join(sys.argv[2:]))
