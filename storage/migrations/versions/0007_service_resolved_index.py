"""incidents by service and resolution time: correlation's per-service look-up of incidents
resolved since a new one started is an index seek, not a scan of the whole time window

Revision ID: 0007_service_resolved_index
Revises: 0006_oncall_now
"""
from alembic import op

revision = "0007_service_resolved_index"
down_revision = "0006_oncall_now"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_incidents_service_resolved", "incidents", ["service", "resolved_at"])


def downgrade() -> None:
    op.drop_index("ix_incidents_service_resolved", table_name="incidents")
