"""private incidents: a flag on the incident and the people who may see it

`incidents.private` (false for every existing incident) and `incident_members` (the declarer and
the service's responders of a private incident). A column added, a table created: nothing
existing is rebuilt, so the search triggers of 0002_reports stay.

Revision ID: 0014_private_incidents
Revises: 0012_cards_b
"""
import sqlalchemy as sa
from alembic import op

import storage.schema

revision = "0014_private_incidents"
down_revision = "0012_cards_b"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Utc = storage.schema.UtcDateTime


def upgrade() -> None:
    op.add_column("incidents", sa.Column("private", sa.Boolean(), nullable=False,
                                         server_default=sa.false()))
    op.create_table(
        "incident_members",
        sa.Column("incident_id", Id, nullable=False),
        sa.Column("email", sa.String(length=200), nullable=False),
        sa.Column("added_at", Utc(), nullable=False),
        sa.ForeignKeyConstraint(["incident_id"], ["incidents.id"],
                                name=op.f("fk_incident_members_incident_id_incidents")),
        sa.PrimaryKeyConstraint("incident_id", "email", name=op.f("pk_incident_members")),
    )
    op.create_index(op.f("ix_incident_members_email"), "incident_members", ["email"])


def downgrade() -> None:
    op.drop_index(op.f("ix_incident_members_email"), table_name="incident_members")
    op.drop_table("incident_members")
    op.drop_column("incidents", "private")
