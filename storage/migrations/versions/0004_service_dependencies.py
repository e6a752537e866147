"""service dependencies learned from PagerDuty

Revision ID: 0004_service_dependencies
Revises: 0003_card_revisions
"""
from alembic import op
import sqlalchemy as sa

import storage.schema

revision = "0004_service_dependencies"
down_revision = "0003_card_revisions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "service_dependencies",
        sa.Column("caller", sa.String(length=200), nullable=False),
        sa.Column("callee", sa.String(length=200), nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("updated_at", storage.schema.UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("caller", "callee", "source", name=op.f("pk_service_dependencies")),
    )


def downgrade() -> None:
    op.drop_table("service_dependencies")
