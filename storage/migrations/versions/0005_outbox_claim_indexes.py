"""outbox claim indexes: due jobs by status, kind and time; lapsed leases

Revision ID: 0005_outbox_claim_indexes
Revises: 0004_service_dependencies
"""
from alembic import op
import sqlalchemy as sa

revision = "0005_outbox_claim_indexes"
down_revision = "0004_service_dependencies"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_due")
        batch_op.create_index("ix_outbox_due", ["status", "kind", "run_after"], unique=False)
        batch_op.create_index("ix_outbox_leases", ["claimed_until"], unique=False,
                              sqlite_where=sa.text("status = 'running'"),
                              postgresql_where=sa.text("status = 'running'"))


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_leases")
        batch_op.drop_index("ix_outbox_due")
        batch_op.create_index("ix_outbox_due", ["status", "run_after"], unique=False)
