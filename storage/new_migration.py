"""Write a new Alembic revision from the difference between storage/schema.py and the current
migrations: `python -m storage.new_migration "add postmortems"`. Review the file it writes."""
import sys
import tempfile

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine

from storage.db import MIGRATIONS


def main(message: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        engine = create_engine(f"sqlite:///{tmp}/schema.db")
        with engine.begin() as conn:
            cfg = Config()
            cfg.set_main_option("script_location", str(MIGRATIONS))
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
            command.revision(cfg, message=message, autogenerate=True)


if __name__ == "__main__":
    main(" ".join(sys.argv[1:]) or "schema change")
