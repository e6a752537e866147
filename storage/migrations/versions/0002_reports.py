"""reports and search

Tables and indexes for reports (chart images, cached figures of complete months, a covering
index for report scans, resolve/close time indexes), and full-text search over incident
titles, timelines and postmortems, written by hand per dialect:

- SQLite: `search_incidents`, an FTS5 table with one row per incident (rowid = incident id;
  columns service, title, timeline, postmortem), kept in sync by triggers on incidents, timeline
  and postmortems.
- PostgreSQL: `search_incidents(incident_id, service, doc tsvector)` with a GIN index, kept in
  sync by trigger functions; `search_incident_doc(id)` rebuilds one incident's document.

Autogenerate ignores tables whose name starts with "search" (storage/migrations/env.py).
Caution for later SQLite migrations: a batch operation that *recreates* incidents, timeline or
postmortems drops their triggers; such a migration must create the search triggers again.

Revision ID: 0002_reports
Revises: 0001_initial
"""
from alembic import op
import sqlalchemy as sa
import storage.schema


revision = '0002_reports'
down_revision = '0001_initial'
branch_labels = None
depends_on = None

# The postmortem's free-text sections, in the order of the RCA template.
_PM_FIELDS = ("summary", "customer_impact", "detection", "timeline", "root_cause", "trigger",
              "resolution", "went_well", "went_badly", "lessons")


def upgrade() -> None:
    op.create_table('report_charts',
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('png', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', storage.schema.UtcDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_report_charts')),
    sa.UniqueConstraint('digest', name=op.f('uq_report_charts_digest'))
    )
    op.create_table('report_rollups',
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('period', sa.String(length=20), nullable=False),
    sa.Column('start', storage.schema.UtcDateTime(), nullable=False),
    sa.Column('end', storage.schema.UtcDateTime(), nullable=False),
    sa.Column('first_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('last_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('revenue_hash', sa.String(length=64), nullable=False),
    sa.Column('figures', sa.JSON(), nullable=False),
    sa.Column('computed_at', storage.schema.UtcDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('kind', 'period', name=op.f('pk_report_rollups'))
    )
    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.create_index('ix_incidents_closed', ['closed_at'], unique=False)
        batch_op.create_index('ix_incidents_resolved', ['resolved_at'], unique=False)
        batch_op.create_index('ix_incidents_report', ['triggered_at', 'parent_id', 'team',
                                                      'level', 'status', 'service',
                                                      'first_acknowledged_at', 'resolved_at',
                                                      'updated_at'], unique=False)

    with op.batch_alter_table('report_deliveries', schema=None) as batch_op:
        batch_op.create_index('ix_report_deliveries_created', ['created_at'], unique=False)

    if op.get_bind().dialect.name == "sqlite":
        _sqlite_search_up()
    else:
        _postgresql_search_up()


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for trigger in ("search_incidents_ai", "search_incidents_au", "search_incidents_ad",
                        "search_timeline_ai", "search_timeline_ad", "search_postmortems_ai",
                        "search_postmortems_au"):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        op.execute("DROP TABLE IF EXISTS search_incidents")
    else:
        for trigger, table in (("search_incidents_ai", "incidents"),
                               ("search_incidents_au", "incidents"),
                               ("search_timeline_ai", "timeline"),
                               ("search_timeline_ad", "timeline"),
                               ("search_postmortems_aiu", "postmortems")):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger} ON {table}")
        for fn in ("search_on_incident()", "search_on_timeline()", "search_on_timeline_delete()",
                   "search_on_postmortem()", "search_incident_doc(bigint)",
                   "search_bucket(bigint)"):
            op.execute(f"DROP FUNCTION IF EXISTS {fn}")
        op.execute("DROP TABLE IF EXISTS search_incidents")

    with op.batch_alter_table('report_deliveries', schema=None) as batch_op:
        batch_op.drop_index('ix_report_deliveries_created')

    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.drop_index('ix_incidents_report')
        batch_op.drop_index('ix_incidents_resolved')
        batch_op.drop_index('ix_incidents_closed')

    op.drop_table('report_rollups')
    op.drop_table('report_charts')


# -- SQLite: FTS5 ---------------------------------------------------------------------------------

def _sqlite_pm_text(row: str) -> str:
    return " || char(10) || ".join(f"coalesce({row}.{f}, '')" for f in _PM_FIELDS)


def _sqlite_search_up() -> None:
    op.execute("CREATE VIRTUAL TABLE search_incidents USING fts5("
               "service, title, timeline, postmortem, "
               "tokenize = 'porter unicode61 remove_diacritics 2')")
    op.execute("""
        CREATE TRIGGER search_incidents_ai AFTER INSERT ON incidents BEGIN
            INSERT INTO search_incidents(rowid, service, title, timeline, postmortem)
            VALUES (new.id, coalesce(new.service, ''), new.title, '', '');
        END""")
    op.execute("""
        CREATE TRIGGER search_incidents_au AFTER UPDATE OF title, service ON incidents BEGIN
            UPDATE search_incidents SET title = new.title, service = coalesce(new.service, '')
            WHERE rowid = new.id;
        END""")
    op.execute("""
        CREATE TRIGGER search_incidents_ad AFTER DELETE ON incidents BEGIN
            DELETE FROM search_incidents WHERE rowid = old.id;
        END""")
    op.execute("""
        CREATE TRIGGER search_timeline_ai AFTER INSERT ON timeline BEGIN
            UPDATE search_incidents SET timeline = timeline || char(10) || new.text
            WHERE rowid = new.incident_id;
        END""")
    op.execute("""
        CREATE TRIGGER search_timeline_ad AFTER DELETE ON timeline BEGIN
            UPDATE search_incidents SET timeline = coalesce(
                (SELECT group_concat(text, char(10)) FROM timeline
                 WHERE incident_id = old.incident_id), '')
            WHERE rowid = old.incident_id;
        END""")
    fields = ", ".join(_PM_FIELDS)
    for name, event in (("search_postmortems_ai", "INSERT"),
                        ("search_postmortems_au", f"UPDATE OF {fields}")):
        op.execute(f"""
            CREATE TRIGGER {name} AFTER {event} ON postmortems BEGIN
                UPDATE search_incidents SET postmortem = {_sqlite_pm_text('new')}
                WHERE rowid = new.incident_id;
            END""")
    # Incidents stored before this migration.
    op.execute(f"""
        INSERT INTO search_incidents(rowid, service, title, timeline, postmortem)
        SELECT i.id, coalesce(i.service, ''), i.title,
               coalesce((SELECT group_concat(t.text, char(10)) FROM timeline t
                         WHERE t.incident_id = i.id), ''),
               coalesce((SELECT {_sqlite_pm_text('p')} FROM postmortems p
                         WHERE p.incident_id = i.id), '')
        FROM incidents i""")


# -- PostgreSQL: tsvector + GIN -------------------------------------------------------------------

def _postgresql_search_up() -> None:
    pm_text = ", ".join(f"p.{f}" for f in _PM_FIELDS)
    op.execute("""
        CREATE TABLE search_incidents (
            incident_id BIGINT PRIMARY KEY REFERENCES incidents(id) ON DELETE CASCADE,
            service VARCHAR(200),
            doc TSVECTOR NOT NULL
        )""")
    op.execute("CREATE INDEX search_incidents_doc ON search_incidents USING gin (doc)")
    op.execute("CREATE INDEX search_incidents_service ON search_incidents (service, incident_id)")
    # Each document also carries the lexeme "zb<id / 10000>": a search that has looked at the
    # newest incidents and goes further back narrows to the next id buckets inside the GIN
    # index, without visiting the rows of every older match (storage/search.py).
    op.execute("""
        CREATE FUNCTION search_bucket(iid BIGINT) RETURNS TSVECTOR
        LANGUAGE sql IMMUTABLE AS $$ SELECT ('zb' || (iid / 10000))::tsvector $$""")
    # Weights: title A, postmortem B, timeline C (ts_rank favours title matches).
    op.execute(f"""
        CREATE FUNCTION search_incident_doc(iid BIGINT) RETURNS TSVECTOR
        LANGUAGE sql STABLE AS $$
            SELECT search_bucket(iid)
                || setweight(to_tsvector('english', coalesce(i.service, '') || ' ' || i.title), 'A')
                || setweight(to_tsvector('english', coalesce(
                       (SELECT concat_ws(E'\\n', {pm_text}) FROM postmortems p
                        WHERE p.incident_id = iid), '')), 'B')
                || setweight(to_tsvector('english', coalesce(
                       (SELECT string_agg(t.text, E'\\n' ORDER BY t.id) FROM timeline t
                        WHERE t.incident_id = iid), '')), 'C')
            FROM incidents i WHERE i.id = iid
        $$""")
    op.execute("""
        CREATE FUNCTION search_on_incident() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'INSERT' THEN
                INSERT INTO search_incidents (incident_id, service, doc)
                VALUES (NEW.id, NEW.service, search_bucket(NEW.id) || setweight(to_tsvector(
                        'english', coalesce(NEW.service, '') || ' ' || NEW.title), 'A'))
                ON CONFLICT (incident_id) DO NOTHING;
            ELSE
                UPDATE search_incidents SET service = NEW.service,
                       doc = search_incident_doc(NEW.id)
                WHERE incident_id = NEW.id;
            END IF;
            RETURN NULL;
        END $$""")
    op.execute("""
        CREATE FUNCTION search_on_timeline() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            UPDATE search_incidents
            SET doc = doc || setweight(to_tsvector('english', NEW.text), 'C')
            WHERE incident_id = NEW.incident_id;
            RETURN NULL;
        END $$""")
    op.execute("""
        CREATE FUNCTION search_on_timeline_delete() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            UPDATE search_incidents SET doc = search_incident_doc(OLD.incident_id)
            WHERE incident_id = OLD.incident_id;
            RETURN NULL;
        END $$""")
    op.execute("""
        CREATE FUNCTION search_on_postmortem() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            UPDATE search_incidents SET doc = search_incident_doc(NEW.incident_id)
            WHERE incident_id = NEW.incident_id;
            RETURN NULL;
        END $$""")
    op.execute("CREATE TRIGGER search_incidents_ai AFTER INSERT ON incidents "
               "FOR EACH ROW EXECUTE FUNCTION search_on_incident()")
    op.execute("CREATE TRIGGER search_incidents_au AFTER UPDATE OF title, service ON incidents "
               "FOR EACH ROW WHEN (OLD.title IS DISTINCT FROM NEW.title "
               "OR OLD.service IS DISTINCT FROM NEW.service) "
               "EXECUTE FUNCTION search_on_incident()")
    op.execute("CREATE TRIGGER search_timeline_ai AFTER INSERT ON timeline "
               "FOR EACH ROW EXECUTE FUNCTION search_on_timeline()")
    op.execute("CREATE TRIGGER search_timeline_ad AFTER DELETE ON timeline "
               "FOR EACH ROW EXECUTE FUNCTION search_on_timeline_delete()")
    op.execute(f"CREATE TRIGGER search_postmortems_aiu AFTER INSERT OR UPDATE OF "
               f"{', '.join(_PM_FIELDS)} ON postmortems "
               f"FOR EACH ROW EXECUTE FUNCTION search_on_postmortem()")
    # Incidents stored before this migration.
    op.execute("INSERT INTO search_incidents (incident_id, service, doc) "
               "SELECT id, service, search_incident_doc(id) FROM incidents")
