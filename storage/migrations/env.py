"""Alembic environment: Firebell runs migrations itself at start-up (storage.db.Database.migrate)
on a connection it passes in; `alembic` on the command line is only used to write new revisions."""
from alembic import context

from storage.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise SystemExit("Firebell applies migrations at start-up; run `python app.py`.")


def include_object(obj, name, type_, reflected, compare_to):
    # Full-text search tables and triggers are written by hand in their migration.
    return not (type_ == "table" and reflected and compare_to is None and name.startswith("search"))


context.configure(connection=connection, target_metadata=metadata, render_as_batch=True,
                  include_object=include_object)
with context.begin_transaction():
    context.run_migrations()
