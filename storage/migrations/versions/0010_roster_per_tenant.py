"""roster per tenant: teams_users keyed by (tenant_id, aad_object_id)

A roster's AAD id -> e-mail mapping was trusted whatever tenant the activity came from, so a
roster fetched in one tenant could make its members someone else in another. Rows are now
keyed by the tenant of the conversation their roster was fetched for. Existing rows stay, under
the tenant they recorded ('' where none was: a tenant no activity names, so they match nothing
until the next roster sync stores them properly).

Revision ID: 0010_roster_per_tenant
Revises: 0009_postmortem_waivers
"""
from alembic import op
import sqlalchemy as sa

revision = "0010_roster_per_tenant"
down_revision = "0009_postmortem_waivers"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("UPDATE teams_users SET tenant_id = '' WHERE tenant_id IS NULL")
    with op.batch_alter_table("teams_users") as batch:
        batch.alter_column("tenant_id", existing_type=sa.String(length=100), nullable=False)
        batch.drop_constraint("pk_teams_users", type_="primary")
        batch.create_primary_key("pk_teams_users", ["tenant_id", "aad_object_id"])


def downgrade() -> None:
    # One row per AAD id again: keep the most recently updated of each.
    op.execute("""
        DELETE FROM teams_users WHERE EXISTS (
            SELECT 1 FROM teams_users newer
            WHERE newer.aad_object_id = teams_users.aad_object_id
              AND (newer.updated_at > teams_users.updated_at
                   OR (newer.updated_at = teams_users.updated_at
                       AND newer.tenant_id > teams_users.tenant_id)))""")
    with op.batch_alter_table("teams_users") as batch:
        batch.drop_constraint("pk_teams_users", type_="primary")
        batch.create_primary_key("pk_teams_users", ["aad_object_id"])
        batch.alter_column("tenant_id", existing_type=sa.String(length=100), nullable=True)
