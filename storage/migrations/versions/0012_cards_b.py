"""postmortems.timeline_through: the newest incident timeline entry the RCA timeline was offered

The RCA timeline is refilled from the incident timeline each time the form opens. Remembering
which entries it has already been given lets people edit or delete those lines without the
refill bringing them back. Postmortems written before this column have none: their refill adds
the entries whose line is not in the text yet.

A plain ADD COLUMN (nullable): SQLite keeps the table and its search triggers as they are.

Revision ID: 0012_cards_b
Revises: 0016_heartbeats_pages
"""
import sqlalchemy as sa
from alembic import op

revision = "0012_cards_b"
down_revision = "0016_heartbeats_pages"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("postmortems", sa.Column("timeline_through", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("postmortems") as batch_op:
        batch_op.drop_column("timeline_through")
