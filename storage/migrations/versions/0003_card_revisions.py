"""card revisions, and coalesced jobs that may be queued while one of their key runs

A card is behind when a refresh was asked after what it last rendered. The unique coalesce index
now covers pending jobs only (claims wait while a job with the same key runs), so a change that
arrives during a card update always gets its own follow-up update.

Revision ID: 0003_card_revisions
Revises: 0002_reports
"""
from alembic import op
import sqlalchemy as sa


revision = "0003_card_revisions"
down_revision = "0002_reports"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("card_messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("wanted_rev", sa.Integer(), nullable=False,
                                      server_default="0"))
        batch_op.add_column(sa.Column("rendered_rev", sa.Integer(), nullable=False,
                                      server_default="0"))
        batch_op.drop_column("rendered_version")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("uq_outbox_pending_coalesce")
        batch_op.create_index("uq_outbox_pending_coalesce", ["coalesce_key"], unique=True,
                              sqlite_where=sa.text("status = 'pending'"),
                              postgresql_where=sa.text("status = 'pending'"))
        batch_op.create_index("ix_outbox_running_coalesce", ["coalesce_key"],
                              sqlite_where=sa.text("status = 'running'"),
                              postgresql_where=sa.text("status = 'running'"))


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_running_coalesce")
        batch_op.drop_index("uq_outbox_pending_coalesce")
        batch_op.create_index("uq_outbox_pending_coalesce", ["coalesce_key"], unique=True,
                              sqlite_where=sa.text("status IN ('pending', 'running')"),
                              postgresql_where=sa.text("status IN ('pending', 'running')"))
    with op.batch_alter_table("card_messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("rendered_version", sa.Integer(), nullable=False,
                                      server_default="0"))
        batch_op.drop_column("rendered_rev")
        batch_op.drop_column("wanted_rev")
