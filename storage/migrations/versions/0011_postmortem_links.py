"""postmortems: a secret link token each (the page moves to /postmortems/<token>)

The postmortem page was served at /incidents/INC-n/postmortem to anyone who could count. Each
postmortem now has its own random token (192 bits, URL-safe), unique and never empty; the page is
only found by it. Postmortems written before this migration get one here.

On SQLite making the column NOT NULL recreates `postmortems`, which drops its search triggers
(see 0002_reports): they are created again below, unchanged.

Revision ID: 0011_postmortem_links
Revises: 0010_roster_per_tenant
"""
import secrets

import sqlalchemy as sa
from alembic import op

revision = "0011_postmortem_links"
down_revision = "0010_roster_per_tenant"
branch_labels = None
depends_on = None

BATCH = 5000
# The postmortem's free-text sections, as in 0002_reports (a migration keeps its own copy).
PM_FIELDS = ("summary", "customer_impact", "detection", "timeline", "root_cause", "trigger",
             "resolution", "went_well", "went_badly", "lessons")


def upgrade() -> None:
    with op.batch_alter_table("postmortems") as batch_op:
        batch_op.add_column(sa.Column("link_token", sa.String(length=64), nullable=True))
    _give_every_postmortem_a_token()
    with op.batch_alter_table("postmortems") as batch_op:
        batch_op.alter_column("link_token", existing_type=sa.String(length=64), nullable=False)
        batch_op.create_unique_constraint(op.f("uq_postmortems_link_token"), ["link_token"])
    if _sqlite():
        _sqlite_search_triggers()


def downgrade() -> None:
    with op.batch_alter_table("postmortems") as batch_op:
        batch_op.drop_constraint(op.f("uq_postmortems_link_token"), type_="unique")
        batch_op.drop_column("link_token")
    if _sqlite():
        _sqlite_search_triggers()


def _give_every_postmortem_a_token() -> None:
    conn = op.get_bind()
    ids = conn.execute(sa.text("SELECT incident_id FROM postmortems WHERE link_token IS NULL")
                       ).scalars().all()
    update = sa.text("UPDATE postmortems SET link_token = :token WHERE incident_id = :id")
    for start in range(0, len(ids), BATCH):
        conn.execute(update, [{"id": i, "token": secrets.token_urlsafe(24)}
                              for i in ids[start:start + BATCH]])


def _sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def _sqlite_search_triggers() -> None:
    text = " || char(10) || ".join(f"coalesce(new.{f}, '')" for f in PM_FIELDS)
    for name, event in (("search_postmortems_ai", "INSERT"),
                        ("search_postmortems_au", f"UPDATE OF {', '.join(PM_FIELDS)}")):
        op.execute(f"DROP TRIGGER IF EXISTS {name}")
        op.execute(f"""
            CREATE TRIGGER {name} AFTER {event} ON postmortems BEGIN
                UPDATE search_incidents SET postmortem = {text}
                WHERE rowid = new.incident_id;
            END""")
