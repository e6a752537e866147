"""search: a root's "INC-n linked as duplicate" lines stay out of its search document

In an alert storm a root gains thousands of children, each leaving a `child_linked` line on
the root's timeline. Every such line re-wrote the root's whole search document (FTS5 row /
tsvector), so linking the n-th child cost O(n) and a storm's correlation went quadratic. The
children are searchable themselves (their own timelines say what they are linked to), so the
root's document skips these lines. Documents written before this migration keep theirs until
the incident's document is next rebuilt.

Revision ID: 0008_search_skips_child_links
Revises: 0007_service_resolved_index
"""
from alembic import op

revision = "0008_search_skips_child_links"
down_revision = "0007_service_resolved_index"
branch_labels = None
depends_on = None

SKIPPED = "'child_linked'"
# The postmortem's free-text sections, as in 0002_reports (a migration keeps its own copy).
PM_FIELDS = ("summary", "customer_impact", "detection", "timeline", "root_cause", "trigger",
             "resolution", "went_well", "went_badly", "lessons")


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _postgresql(f"t.kind <> {SKIPPED}", f"WHEN (NEW.kind <> {SKIPPED})")
    else:
        _sqlite(f"WHEN new.kind <> {SKIPPED}", f"AND kind <> {SKIPPED}")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _postgresql("true", "")
    else:
        _sqlite("", "")


def _sqlite(when: str, keep: str) -> None:
    op.execute("DROP TRIGGER search_timeline_ai")
    op.execute("DROP TRIGGER search_timeline_ad")
    op.execute(f"""
        CREATE TRIGGER search_timeline_ai AFTER INSERT ON timeline {when} BEGIN
            UPDATE search_incidents SET timeline = timeline || char(10) || new.text
            WHERE rowid = new.incident_id;
        END""")
    op.execute(f"""
        CREATE TRIGGER search_timeline_ad AFTER DELETE ON timeline BEGIN
            UPDATE search_incidents SET timeline = coalesce(
                (SELECT group_concat(text, char(10)) FROM timeline
                 WHERE incident_id = old.incident_id {keep}), '')
            WHERE rowid = old.incident_id;
        END""")


def _postgresql(keep: str, when: str) -> None:
    pm_text = ", ".join(f"p.{f}" for f in PM_FIELDS)
    op.execute(f"""
        CREATE OR REPLACE FUNCTION search_incident_doc(iid BIGINT) RETURNS TSVECTOR
        LANGUAGE sql STABLE AS $$
            SELECT search_bucket(iid)
                || setweight(to_tsvector('english', coalesce(i.service, '') || ' ' || i.title), 'A')
                || setweight(to_tsvector('english', coalesce(
                       (SELECT concat_ws(E'\\n', {pm_text}) FROM postmortems p
                        WHERE p.incident_id = iid), '')), 'B')
                || setweight(to_tsvector('english', coalesce(
                       (SELECT string_agg(t.text, E'\\n' ORDER BY t.id) FROM timeline t
                        WHERE t.incident_id = iid AND {keep}), '')), 'C')
            FROM incidents i WHERE i.id = iid
        $$""")
    op.execute("DROP TRIGGER search_timeline_ai ON timeline")
    op.execute(f"CREATE TRIGGER search_timeline_ai AFTER INSERT ON timeline FOR EACH ROW {when} "
               "EXECUTE FUNCTION search_on_timeline()")
