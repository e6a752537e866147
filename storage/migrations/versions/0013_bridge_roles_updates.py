"""running the incident: meeting bridges, roles, stakeholder updates and their channels, reminders

New tables only (nothing existing is rebuilt, so the search triggers of 0002_reports stay):
`meeting_bridges` (the incident's Teams meeting, keyed by the createOrGet external id),
`incident_roles` (communications, scribe, catalog roles), `status_updates` (what stakeholders were
told), `stakeholder_channels` (`incident subscribe stakeholders <team|all>`) and
`incident_reminders` (missing commander, overdue update: each sent once).

Revision ID: 0013_bridge_roles_updates
Revises: 0011_postmortem_links
"""
from alembic import op
import sqlalchemy as sa
import storage.schema


revision = '0013_bridge_roles_updates'
down_revision = '0011_postmortem_links'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('incident_reminders',
    sa.Column('incident_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('key', sa.String(length=100), nullable=False),
    sa.Column('sent_at', storage.schema.UtcDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], name=op.f('fk_incident_reminders_incident_id_incidents')),
    sa.PrimaryKeyConstraint('incident_id', 'kind', 'key', name=op.f('pk_incident_reminders'))
    )
    op.create_table('incident_roles',
    sa.Column('incident_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('role', sa.String(length=40), nullable=False),
    sa.Column('person', sa.String(length=300), nullable=False),
    sa.Column('assigned_by', sa.String(length=200), nullable=True),
    sa.Column('assigned_at', storage.schema.UtcDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], name=op.f('fk_incident_roles_incident_id_incidents')),
    sa.PrimaryKeyConstraint('incident_id', 'role', name=op.f('pk_incident_roles'))
    )
    op.create_table('meeting_bridges',
    sa.Column('incident_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('external_id', sa.String(length=200), nullable=False),
    sa.Column('meeting_id', sa.String(length=500), nullable=True),
    sa.Column('join_url', sa.String(length=2000), nullable=False),
    sa.Column('organizer', sa.String(length=300), nullable=True),
    sa.Column('created_at', storage.schema.UtcDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], name=op.f('fk_meeting_bridges_incident_id_incidents')),
    sa.PrimaryKeyConstraint('incident_id', name=op.f('pk_meeting_bridges'))
    )
    op.create_table('stakeholder_channels',
    sa.Column('scope', sa.String(length=100), nullable=False),
    sa.Column('conversation_id', sa.String(length=500), nullable=False),
    sa.Column('subscribed_by', sa.String(length=200), nullable=True),
    sa.Column('subscribed_at', storage.schema.UtcDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['conversation_id'], ['conversations.id'], name=op.f('fk_stakeholder_channels_conversation_id_conversations')),
    sa.PrimaryKeyConstraint('scope', 'conversation_id', name=op.f('pk_stakeholder_channels'))
    )
    op.create_table('status_updates',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('incident_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('phase', sa.String(length=20), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('author', sa.String(length=200), nullable=True),
    sa.Column('posted_at', storage.schema.UtcDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], name=op.f('fk_status_updates_incident_id_incidents')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_status_updates'))
    )
    op.create_index('ix_status_updates_incident', 'status_updates', ['incident_id', 'posted_at'])


def downgrade() -> None:
    op.drop_index('ix_status_updates_incident', table_name='status_updates')
    op.drop_table('status_updates')
    op.drop_table('stakeholder_channels')
    op.drop_table('meeting_bridges')
    op.drop_table('incident_roles')
    op.drop_table('incident_reminders')
