"""heartbeats (dead-man's switches) and pages sent to PagerDuty from Teams

Two new tables, nothing existing changes: `heartbeats` (last beat, watching since, the open
"No heartbeat from …" incident) and `pagerduty_pages` (each `incident page`: its target, its
PagerDuty incident_key and, once created, the PagerDuty incident and its acknowledgement).

Revision ID: 0016_heartbeats_pages
Revises: 0013_bridge_roles_updates
"""
import sqlalchemy as sa
from alembic import op

import storage.schema

revision = "0016_heartbeats_pages"
down_revision = "0013_bridge_roles_updates"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Utc = storage.schema.UtcDateTime


def upgrade() -> None:
    op.create_table(
        "heartbeats",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("last_beat_at", Utc(), nullable=True),
        sa.Column("beats", sa.BigInteger(), nullable=False),
        sa.Column("watched_since", Utc(), nullable=False),
        sa.Column("swept_at", Utc(), nullable=True),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("incident_id", Id, nullable=True),
        sa.Column("updated_at", Utc(), nullable=False),
        sa.ForeignKeyConstraint(["incident_id"], ["incidents.id"],
                                name=op.f("fk_heartbeats_incident_id_incidents")),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_heartbeats")),
    )
    op.create_table(
        "pagerduty_pages",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("incident_id", Id, nullable=True),
        sa.Column("target_kind", sa.String(length=20), nullable=False),
        sa.Column("target", sa.String(length=300), nullable=False),
        sa.Column("target_label", sa.String(length=300), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("requested_by", sa.String(length=200), nullable=False),
        sa.Column("requested_at", Utc(), nullable=False),
        sa.Column("pd_service_id", sa.String(length=100), nullable=False),
        sa.Column("escalation_policy_id", sa.String(length=100), nullable=True),
        sa.Column("assignee_id", sa.String(length=100), nullable=True),
        sa.Column("incident_key", sa.String(length=255), nullable=False),
        sa.Column("pd_incident_id", sa.String(length=100), nullable=True),
        sa.Column("pd_number", sa.Integer(), nullable=True),
        sa.Column("html_url", sa.String(length=500), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("acknowledged_by", sa.String(length=200), nullable=True),
        sa.Column("acknowledged_at", Utc(), nullable=True),
        sa.Column("resolved_at", Utc(), nullable=True),
        sa.Column("assignees", sa.JSON(), nullable=False),
        sa.Column("last_event_at", Utc(), nullable=True),
        sa.Column("updated_at", Utc(), nullable=False),
        sa.ForeignKeyConstraint(["incident_id"], ["incidents.id"],
                                name=op.f("fk_pagerduty_pages_incident_id_incidents")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pagerduty_pages")),
        sa.UniqueConstraint("incident_key", name=op.f("uq_pagerduty_pages_incident_key")),
        sa.UniqueConstraint("pd_incident_id", name=op.f("uq_pagerduty_pages_pd_incident_id")),
    )
    op.create_index(op.f("ix_pagerduty_pages_incident"), "pagerduty_pages", ["incident_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_pagerduty_pages_incident"), table_name="pagerduty_pages")
    op.drop_table("pagerduty_pages")
    op.drop_table("heartbeats")
