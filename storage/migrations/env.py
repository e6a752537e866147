"""Alembic environment: Firebell runs migrations itself at start-up (storage.db.Database.migrate)
on a connection it passes in; `alembic` on the command line is only used to write new revisions."""
from alembic import context

from storage.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise SystemExit("Firebell applies migrations at start-up; run `python app.py`.")
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
