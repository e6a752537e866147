"""maintenance windows and routing rules

A new table, `maintenance_windows` (typed with `incident maintenance`, or an occurrence of the
catalog's recurring `maintenance:` once it starts), and `incidents.maintenance_id`: the window an
incident was stored in without being announced. A plain column with an index, no foreign key:
SQLite adds one only by rebuilding `incidents`, which would drop its full-text search triggers.
Routing: `incidents.routed` ("recorded": kept off Teams by a routing rule, listed in the digest)
and `subscriptions.min_level` (`incident subscribe <team> level>=<level>`).

Revision ID: 0015_maintenance_routing
Revises: 0014_private_incidents
"""
import sqlalchemy as sa
from alembic import op

import storage.schema

revision = "0015_maintenance_routing"
down_revision = "0014_private_incidents"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Utc = storage.schema.UtcDateTime


def upgrade() -> None:
    op.create_table(
        "maintenance_windows",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("target_kind", sa.String(length=20), nullable=False),
        sa.Column("target", sa.String(length=200), nullable=False),
        sa.Column("starts_at", Utc(), nullable=False),
        sa.Column("ends_at", Utc(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("recurring_key", sa.String(length=200), nullable=True),
        sa.Column("ended_by", sa.String(length=200), nullable=True),
        sa.Column("closed_out_at", Utc(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_maintenance_windows")),
        sa.UniqueConstraint("recurring_key", name=op.f("uq_maintenance_windows_recurring_key")),
    )
    op.create_index(op.f("ix_maintenance_windows_open"), "maintenance_windows",
                    ["closed_out_at", "ends_at"])
    op.add_column("incidents", sa.Column("maintenance_id", Id, nullable=True))
    op.create_index(op.f("ix_incidents_maintenance"), "incidents", ["maintenance_id"])
    op.add_column("incidents", sa.Column("routed", sa.String(length=20), nullable=True))
    op.add_column("subscriptions", sa.Column("min_level", sa.String(length=40), nullable=True))


def downgrade() -> None:
    op.drop_column("subscriptions", "min_level")
    op.drop_column("incidents", "routed")
    op.drop_index(op.f("ix_incidents_maintenance"), table_name="incidents")
    op.drop_column("incidents", "maintenance_id")
    op.drop_index(op.f("ix_maintenance_windows_open"), table_name="maintenance_windows")
    op.drop_table("maintenance_windows")
