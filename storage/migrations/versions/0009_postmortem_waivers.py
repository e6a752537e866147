"""postmortems stay required once needed; only a recorded waiver lifts the requirement

`incidents.postmortem_required` is sticky: set whenever a root incident is at a level that needs
a postmortem, never cleared by a lower level. Incidents stored before this revision start with
it unset: the rule then falls back to their current level (as before) until their next change,
which sets it from the level they had before that change.

`postmortems.waived_at/waived_by/waiver_reason` record `incident waive INC-n <reason>` (status
"waived", so reminders and overdue lists, which look at drafts, leave it alone).

Revision ID: 0009_postmortem_waivers
Revises: 0008_search_skips_child_links
"""
from alembic import op
import sqlalchemy as sa

import storage.schema

revision = "0009_postmortem_waivers"
down_revision = "0008_search_skips_child_links"
branch_labels = None
depends_on = None


# Plain ALTER TABLE ADD/DROP COLUMN, not batch mode: a batch on SQLite may rebuild the table,
# and rebuilding `incidents` or `postmortems` would drop their full-text search triggers.

def upgrade() -> None:
    op.add_column("incidents", sa.Column("postmortem_required", sa.Boolean(), nullable=False,
                                         server_default=sa.false()))
    op.add_column("postmortems", sa.Column("waived_at", storage.schema.UtcDateTime(),
                                           nullable=True))
    op.add_column("postmortems", sa.Column("waived_by", sa.String(length=300), nullable=True))
    op.add_column("postmortems", sa.Column("waiver_reason", sa.Text(), nullable=True))


def downgrade() -> None:
    for column in ("waiver_reason", "waived_by", "waived_at"):
        op.drop_column("postmortems", column)
    op.drop_column("incidents", "postmortem_required")
