"""who PagerDuty says is on call, synced periodically

Revision ID: 0006_oncall_now
Revises: 0005_outbox_claim_indexes
"""
from alembic import op
import sqlalchemy as sa

import storage.schema

revision = "0006_oncall_now"
down_revision = "0005_outbox_claim_indexes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "oncall_now",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("email", sa.String(length=300), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=True),
        sa.Column("fetched_at", storage.schema.UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_oncall_now")),
    )


def downgrade() -> None:
    op.drop_table("oncall_now")
