"""Tables. SQLAlchemy Core, one metadata; Alembic migrations in storage/migrations create them.

Times are stored as UTC without a zone (SQLite has no zone type) and always come back as aware
UTC datetimes: `UtcDateTime` says so in the type, so no caller ever sees a naive time.
"""
from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import (JSON, BigInteger, Boolean, Column, Date, DateTime, ForeignKey, Index, Integer,
                        LargeBinary,
                        MetaData, String, Table, Text, UniqueConstraint, false, text)
from sqlalchemy.types import TypeDecorator

metadata = MetaData(naming_convention={
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
})

# BigInteger ids on PostgreSQL, INTEGER PRIMARY KEY (rowid alias) on SQLite.
Id = BigInteger().with_variant(Integer(), "sqlite")


class UtcDateTime(TypeDecorator):
    impl = DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect):
        return value.replace(tzinfo=timezone.utc) if value is not None else None


incidents = Table(
    "incidents", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),  # INC-<id>
    Column("source", String(20), nullable=False),             # pagerduty | alertmanager | teams
    Column("external_id", String(1000)),                     # PagerDuty incident id / groupKey
    Column("title", Text, nullable=False),
    Column("service", String(200)),
    Column("team", String(100)),
    Column("level", String(40), nullable=False),
    Column("status", String(20), nullable=False),
    Column("triggered_at", UtcDateTime, nullable=False),
    Column("acknowledged_at", UtcDateTime),
    Column("acknowledged_by", String(200)),
    Column("first_acknowledged_at", UtcDateTime),
    Column("resolved_at", UtcDateTime),
    Column("closed_at", UtcDateTime),
    Column("commander", String(200)),
    Column("declared_by", String(200)),
    Column("priority", String(50)),
    Column("urgency", String(20)),
    Column("pd_number", Integer),
    Column("html_url", String(500)),
    Column("incident_key", String(255)),
    Column("conference_url", String(1000)),
    Column("conference_number", String(100)),
    Column("assignees", JSON, nullable=False, default=list),
    Column("details", JSON, nullable=False, default=dict),   # labels, alert states
    Column("fingerprint", String(64), nullable=False),
    Column("last_event_at", UtcDateTime),                   # newest status event applied
    # Correlation: parent link (duplicate / cascade), recurrence, and who decided.
    Column("correlated", Boolean, nullable=False, default=False),
    Column("parent_id", Id, ForeignKey("incidents.id")),
    Column("link_kind", String(20)),                         # duplicate | cascade
    Column("link_by", String(20)),                           # auto | human
    Column("link_reason", Text),
    Column("no_auto_link", Boolean, nullable=False, default=False),  # a human said "not related"
    Column("recurrence_of", Id, ForeignKey("incidents.id")),
    Column("duplicate_window_until", UtcDateTime),
    # Sticky: set once the incident, as a root, was at a level that needs a postmortem; a later
    # lower level does not clear it (only a waiver on its postmortem lifts the requirement).
    Column("postmortem_required", Boolean, nullable=False, default=False,
           server_default=false()),
    # The maintenance window it was stored in, unannounced (maintenance_windows.id; no foreign
    # key: SQLite adds one only by rebuilding the table, which drops its search triggers).
    Column("maintenance_id", Id),
    # "recorded": a routing rule (or the channel's level filter) kept it off Teams; the weekly
    # digest lists it. Cleared when it is announced after all (its level rose).
    Column("routed", String(20)),
    Column("version", Integer, nullable=False, default=1),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    # Private: seen only by its members (incident_members) and admins; never in a channel.
    Column("private", Boolean, nullable=False, default=False, server_default=false()),
    UniqueConstraint("source", "external_id"),
)
Index("ix_incidents_open_fingerprint", incidents.c.fingerprint, incidents.c.triggered_at,
      sqlite_where=text("status = 'open'"), postgresql_where=text("status = 'open'"))
Index("ix_incidents_open_service", incidents.c.service, incidents.c.triggered_at,
      sqlite_where=text("status = 'open'"), postgresql_where=text("status = 'open'"))
Index("ix_incidents_fingerprint_resolved", incidents.c.fingerprint, incidents.c.resolved_at)
# Correlation's "first incident on this upstream service resolved since the new one started".
Index("ix_incidents_service_resolved", incidents.c.service, incidents.c.resolved_at)
Index("ix_incidents_parent", incidents.c.parent_id)
Index("ix_incidents_maintenance", incidents.c.maintenance_id)
Index("ix_incidents_triggered", incidents.c.triggered_at)
Index("ix_incidents_status_team", incidents.c.status, incidents.c.team)

timeline = Table(
    "timeline", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("incident_id", Id, ForeignKey("incidents.id"), nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Column("kind", String(40), nullable=False),
    Column("actor", String(200)),                            # a person's name/e-mail, or None
    Column("via", String(20), nullable=False),               # teams | pagerduty | alertmanager | firebell
    Column("text", Text, nullable=False),
    Column("data", JSON),
)
Index("ix_timeline_incident", timeline.c.incident_id, timeline.c.id)

# Natural ids of inbound events already handled (webhook event ids, activity ids): every
# inbound event is idempotent on its natural id (docs/ARCHITECTURE.md).
inbound_events = Table(
    "inbound_events", metadata,
    Column("key", String(300), primary_key=True),
    Column("received_at", UtcDateTime, nullable=False),
    Column("incident_id", Id),
)
Index("ix_inbound_events_received", inbound_events.c.received_at)

conversations = Table(
    "conversations", metadata,
    Column("id", String(500), primary_key=True),             # Teams conversation id
    Column("kind", String(20), nullable=False),              # channel | personal | groupChat
    Column("service_url", String(500), nullable=False),
    Column("tenant_id", String(100)),
    Column("team_id", String(500)),
    Column("name", String(300)),
    Column("reference", JSON, nullable=False),               # ConversationReference, serialised
    Column("updated_at", UtcDateTime, nullable=False),
)

# Which channel serves which catalog team ("default" = the fallback channel).
subscriptions = Table(
    "subscriptions", metadata,
    Column("team", String(100), primary_key=True),
    Column("conversation_id", String(500), ForeignKey("conversations.id"), nullable=False),
    Column("subscribed_by", String(200)),
    Column("subscribed_at", UtcDateTime, nullable=False),
    # `incident subscribe <team> level>=<level>`: less severe incidents are only recorded.
    Column("min_level", String(40)),
)

# Each incident card posted in a conversation, so every change updates the same message.
card_messages = Table(
    "card_messages", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("incident_id", Id, ForeignKey("incidents.id"), nullable=False),
    Column("conversation_id", String(500), nullable=False),  # the channel / chat
    Column("thread_id", String(600)),                        # reply thread it was posted in
    Column("activity_id", String(200)),                      # null until posted
    # Each request to refresh the card bumps wanted_rev; a post or update records the
    # wanted_rev it rendered. rendered_rev < wanted_rev: the card is behind, update it again.
    Column("wanted_rev", Integer, nullable=False, default=0),
    Column("rendered_rev", Integer, nullable=False, default=0),
    Column("posted_at", UtcDateTime),
    Column("updated_at", UtcDateTime),
    UniqueConstraint("incident_id", "conversation_id"),
)

# The outbox: every side effect is a row before it is a call (docs/ARCHITECTURE.md).
outbox = Table(
    "outbox", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("kind", String(40), nullable=False),
    Column("incident_id", Id),
    Column("payload", JSON, nullable=False, default=dict),
    Column("status", String(20), nullable=False),            # pending|running|done|failed|cancelled
    Column("once_key", String(300)),                         # at most one such job, ever
    Column("coalesce_key", String(300)),                     # at most one such job pending
    Column("conversation_id", String(500)),                  # Teams rate limits apply
    Column("attempts", Integer, nullable=False, default=0),
    Column("run_after", UtcDateTime, nullable=False),
    Column("claimed_by", String(100)),
    Column("claimed_until", UtcDateTime),
    Column("last_error", Text),
    Column("result", JSON),                                  # outside ids the call returned
    Column("created_at", UtcDateTime, nullable=False),
    Column("finished_at", UtcDateTime),
    UniqueConstraint("once_key"),
)
Index("ix_outbox_due", outbox.c.status, outbox.c.kind, outbox.c.run_after)
Index("ix_outbox_leases", outbox.c.claimed_until,
      sqlite_where=text("status = 'running'"), postgresql_where=text("status = 'running'"))
Index("ix_outbox_incident", outbox.c.incident_id)
# One pending job per coalesce key; claims also wait while one with that key is running, so the
# jobs of one key never overlap (a card's updates land in order) yet a change that arrives
# during a run always gets a job of its own.
Index("uq_outbox_pending_coalesce", outbox.c.coalesce_key, unique=True,
      sqlite_where=text("status = 'pending'"), postgresql_where=text("status = 'pending'"))
Index("ix_outbox_running_coalesce", outbox.c.coalesce_key,
      sqlite_where=text("status = 'running'"), postgresql_where=text("status = 'running'"))

# Sends per Teams conversation, shared by every replica, to stay inside Teams' rate limits.
conversation_sends = Table(
    "conversation_sends", metadata,
    Column("conversation_id", String(500), primary_key=True),
    Column("recent", JSON, nullable=False, default=list),    # epoch seconds, last 30 s
    Column("hour_start", UtcDateTime),
    Column("hour_count", Integer, nullable=False, default=0),
    Column("blocked_until", UtcDateTime),                   # a 429's Retry-After
)

# Leases for periodic work that must run on one replica at a time.
leases = Table(
    "leases", metadata,
    Column("name", String(100), primary_key=True),
    Column("holder", String(100), nullable=False),
    Column("until", UtcDateTime, nullable=False),
)

# The Teams roster, cached when the bot is installed or members change (never fetched on a
# request's path): maps the AAD object id in an activity to a person's e-mail.
# The roster cache, per tenant: an e-mail a roster maps an AAD id to is trusted only for
# activities from the tenant of the conversation that roster was fetched for ('' = none known).
teams_users = Table(
    "teams_users", metadata,
    Column("tenant_id", String(100), primary_key=True),
    Column("aad_object_id", String(100), primary_key=True),
    Column("teams_user_id", String(300)),                    # 29:... id in this tenant
    Column("name", String(300)),
    Column("email", String(300)),
    Column("upn", String(300)),
    Column("updated_at", UtcDateTime, nullable=False),
)
Index("ix_teams_users_email", teams_users.c.email)

# -- follow-ups: postmortems, action items, war rooms -------------------------------------------

postmortems = Table(
    "postmortems", metadata,
    Column("incident_id", Id, ForeignKey("incidents.id"), primary_key=True),
    Column("status", String(20), nullable=False),            # draft | complete | waived
    Column("owner", String(300)),                            # e-mail of who writes the RCA
    Column("summary", Text), Column("customer_impact", Text),
    Column("impact_minutes", Integer),                       # overrides trigger -> resolve
    Column("detection", Text), Column("timeline", Text), Column("root_cause", Text),
    # The newest incident timeline entry the RCA timeline was given (its refill adds later ones).
    Column("timeline_through", BigInteger),
    Column("trigger", Text), Column("resolution", Text), Column("went_well", Text),
    Column("went_badly", Text), Column("lessons", Text),
    Column("jira_key", String(50)),
    Column("due_at", UtcDateTime),                           # N business days after resolve
    Column("last_reminded_at", UtcDateTime),
    Column("reminders", Integer, nullable=False, default=0),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("completed_at", UtcDateTime),
    # `incident waive`: an incident commander or admin lifted the requirement (status "waived").
    Column("waived_at", UtcDateTime),
    Column("waived_by", String(300)),                        # e-mail of who waived it
    Column("waiver_reason", Text),
    # The secret in the postmortem page's address (/postmortems/<token>): whoever holds the
    # link may read it, nobody can guess it from the incident id. Rotated by a responder.
    Column("link_token", String(64), nullable=False, unique=True),
)
Index("ix_postmortems_due", postmortems.c.status, postmortems.c.due_at)

action_items = Table(
    "action_items", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("incident_id", Id, ForeignKey("incidents.id"), nullable=False),
    Column("position", Integer, nullable=False),             # order on the RCA form
    Column("title", Text, nullable=False),
    Column("owner", String(300)),
    Column("due_date", Date),
    Column("jira_key", String(50)),
    Column("jira_status", String(100)),
    Column("jira_done", Boolean, nullable=False, default=False),
    Column("last_reminded_at", UtcDateTime),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)
Index("ix_action_items_incident", action_items.c.incident_id, action_items.c.position)
Index("ix_action_items_open_due", action_items.c.jira_done, action_items.c.due_date)

war_rooms = Table(
    "war_rooms", metadata,
    Column("incident_id", Id, ForeignKey("incidents.id"), primary_key=True),
    Column("chat_id", String(300)),
    Column("web_url", String(1000)),
    Column("topic", String(300), nullable=False),
    Column("members", JSON, nullable=False, default=list),
    Column("created_at", UtcDateTime, nullable=False),
)

# -- reports: every scheduled delivery, unique per (kind, period, target) ------------------------

report_deliveries = Table(
    "report_deliveries", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("kind", String(40), nullable=False),              # weekly | monthly | reminder | ...
    Column("period", String(40), nullable=False),            # 2025-W11, 2025-03, ...
    Column("target", String(300), nullable=False),           # team key, "company", an address
    Column("status", String(20), nullable=False),            # pending | sent | failed
    Column("created_at", UtcDateTime, nullable=False),
    Column("sent_at", UtcDateTime),
    Column("detail", JSON),
    UniqueConstraint("kind", "period", "target"),
)
Index("ix_report_deliveries_created", report_deliveries.c.created_at)

# Report metrics filter on when incidents were resolved and closed, not only triggered.
Index("ix_incidents_resolved", incidents.c.resolved_at)
Index("ix_incidents_closed", incidents.c.closed_at)

# Chart images shown in report cards: Teams fetches them from PUBLIC_BASE_URL/charts/<key>.png,
# so any replica can serve them. The key is random (not guessable from the figures); `digest`
# (sha256 of the PNG) lets the same chart be stored once.
report_charts = Table(
    "report_charts", metadata,
    Column("key", String(64), primary_key=True),
    Column("digest", String(64), nullable=False),
    Column("png", LargeBinary, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    UniqueConstraint("digest"),
)
# Figures of a *complete* period (a month of the six-month trend), so a monthly report computes
# only its own month. Valid while no incident triggered in the period, nor its postmortem, has
# changed since `computed_at` and the revenue figures are the same (storage/reports.py checks).
report_rollups = Table(
    "report_rollups", metadata,
    Column("kind", String(10), primary_key=True),            # month
    Column("period", String(20), primary_key=True),          # 2025-03
    Column("start", UtcDateTime, nullable=False),
    Column("end", UtcDateTime, nullable=False),
    Column("first_id", Id),                                  # incident ids in the period
    Column("last_id", Id),
    Column("revenue_hash", String(64), nullable=False),
    Column("figures", JSON, nullable=False),
    Column("computed_at", UtcDateTime, nullable=False),
)

# Report queries scan incidents by trigger time; this index holds every column they read, so
# they never touch the (wide) table rows. updated_at tells when a cached period went stale.
Index("ix_incidents_report", incidents.c.triggered_at, incidents.c.parent_id, incidents.c.team,
      incidents.c.level, incidents.c.status, incidents.c.service,
      incidents.c.first_acknowledged_at, incidents.c.resolved_at, incidents.c.updated_at)

# Full-text search (search_incidents: an FTS5 table on SQLite, a tsvector table on PostgreSQL)
# is created by hand in migration 0002_reports and kept in sync by triggers; see storage/search.py.

# Dependencies learned outside the catalog (PagerDuty's technical service dependencies), shared
# by every replica and merged with the catalog's `calls` edges.
service_dependencies = Table(
    "service_dependencies", metadata,
    Column("caller", String(200), primary_key=True),          # depends on ...
    Column("callee", String(200), primary_key=True),          # ... this one
    Column("source", String(20), primary_key=True),           # pagerduty
    Column("updated_at", UtcDateTime, nullable=False),
)

# Who PagerDuty says is on call, refreshed by a periodic sync (never fetched on a request's
# path): "policy:<escalation policy id>:<level>" or "schedule:<schedule id>" -> person.
oncall_now = Table(
    "oncall_now", metadata,
    Column("key", String(200), primary_key=True),
    Column("email", String(300), nullable=False),
    Column("name", String(300)),
    Column("fetched_at", UtcDateTime, nullable=False),
)

# -- running the incident: meeting bridge, roles, stakeholder updates (issue #15) ---------------

# The incident's Teams meeting (Graph onlineMeetings createOrGet, keyed on `external_id`, so a
# retry gets the same meeting back instead of a second one).
meeting_bridges = Table(
    "meeting_bridges", metadata,
    Column("incident_id", Id, ForeignKey("incidents.id"), primary_key=True),
    Column("external_id", String(200), nullable=False),
    Column("meeting_id", String(500)),
    Column("join_url", String(2000), nullable=False),
    Column("organizer", String(300)),
    Column("created_at", UtcDateTime, nullable=False),
)

# Who holds which role besides the commander (incidents/roles.py): one person per role.
incident_roles = Table(
    "incident_roles", metadata,
    Column("incident_id", Id, ForeignKey("incidents.id"), primary_key=True),
    Column("role", String(40), primary_key=True),
    Column("person", String(300), nullable=False),           # e-mail of a catalog person
    Column("assigned_by", String(200)),
    Column("assigned_at", UtcDateTime, nullable=False),
)

# What stakeholders were told, in order (`incident update INC-n <phase> <text>`).
status_updates = Table(
    "status_updates", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("incident_id", Id, ForeignKey("incidents.id"), nullable=False),
    Column("phase", String(20), nullable=False),             # investigating|identified|...
    Column("text", Text, nullable=False),
    Column("author", String(200)),
    Column("posted_at", UtcDateTime, nullable=False),
)
Index("ix_status_updates_incident", status_updates.c.incident_id, status_updates.c.posted_at)

# Channels that get stakeholder updates: `incident subscribe stakeholders <team|all>`.
stakeholder_channels = Table(
    "stakeholder_channels", metadata,
    Column("scope", String(100), primary_key=True),          # a team key, or "all"
    Column("conversation_id", String(500), ForeignKey("conversations.id"), primary_key=True),
    Column("subscribed_by", String(200)),
    Column("subscribed_at", UtcDateTime, nullable=False),
    # `incident subscribe <team> level>=<level>`: less severe incidents are only recorded.
    Column("min_level", String(40)),
)

# Reminders about a running incident already sent, so each goes out once across replicas: the
# missing commander (key ""), an overdue stakeholder update (key: the update it follows and
# which cadence spell).
incident_reminders = Table(
    "incident_reminders", metadata,
    Column("incident_id", Id, ForeignKey("incidents.id"), primary_key=True),
    Column("kind", String(40), primary_key=True),            # commander | update
    Column("key", String(100), primary_key=True),
    Column("sent_at", UtcDateTime, nullable=False),
)

# Heartbeats (dead-man's switches, declared in the catalog's `heartbeats:`): when each last beat,
# since when Firebell has been watching it (a sweep after a long gap starts watching again), and
# the open incident of its current silence, if any.
heartbeats = Table(
    "heartbeats", metadata,
    Column("name", String(100), primary_key=True),
    Column("last_beat_at", UtcDateTime),
    Column("beats", BigInteger, nullable=False, default=0),
    Column("watched_since", UtcDateTime, nullable=False),
    Column("swept_at", UtcDateTime),                         # the sweep's last look
    Column("state", String(20), nullable=False),             # waiting | up | missing
    Column("incident_id", Id, ForeignKey("incidents.id")),   # "No heartbeat from …", while open
    Column("updated_at", UtcDateTime, nullable=False),
)

# Pages sent from Teams (`incident page`): each a PagerDuty incident created through the outbox
# under its own incident_key (PagerDuty refuses a second open incident with that key), linked
# to the Firebell incident it was for; PagerDuty's webhooks about it update its state here.
pagerduty_pages = Table(
    "pagerduty_pages", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("incident_id", Id, ForeignKey("incidents.id")),   # None: paged without an incident
    Column("target_kind", String(20), nullable=False),       # team | service | person
    Column("target", String(300), nullable=False),           # team key, service name, e-mail
    Column("target_label", String(300), nullable=False),     # how cards name it
    Column("title", Text, nullable=False),                   # the PagerDuty incident's title
    Column("message", Text),
    Column("requested_by", String(200), nullable=False),
    Column("requested_at", UtcDateTime, nullable=False),
    Column("pd_service_id", String(100), nullable=False),
    Column("escalation_policy_id", String(100)),
    Column("assignee_id", String(100)),                      # a person's PagerDuty user id
    Column("incident_key", String(255), nullable=False, unique=True),
    Column("pd_incident_id", String(100), unique=True),      # once PagerDuty made it
    Column("pd_number", Integer),
    Column("html_url", String(500)),
    Column("status", String(20), nullable=False),  # requested, triggered, acknowledged, resolved
    Column("acknowledged_by", String(200)),
    Column("acknowledged_at", UtcDateTime),
    Column("resolved_at", UtcDateTime),
    Column("assignees", JSON, nullable=False, default=list),
    Column("last_event_at", UtcDateTime),                    # newest PagerDuty event applied
    Column("updated_at", UtcDateTime, nullable=False),
)
Index("ix_pagerduty_pages_incident", pagerduty_pages.c.incident_id)

# Who may see a private incident: its declarer and its service's responders (e-mails, lower case).
incident_members = Table(
    "incident_members", metadata,
    Column("incident_id", Id, ForeignKey("incidents.id"), primary_key=True),
    Column("email", String(200), primary_key=True),
    Column("added_at", UtcDateTime, nullable=False),
)
Index("ix_incident_members_email", incident_members.c.email)

# Maintenance windows (`incident maintenance`, and the catalog's recurring `maintenance:` once an
# occurrence starts): while one is on, its service's or team's alerts are stored unannounced.
# `closed_out_at` is set once, by whoever posts the summary when it ends.
maintenance_windows = Table(
    "maintenance_windows", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),  # MW-<id>
    Column("target_kind", String(20), nullable=False),       # service | team
    Column("target", String(200), nullable=False),
    Column("starts_at", UtcDateTime, nullable=False),
    Column("ends_at", UtcDateTime, nullable=False),
    Column("reason", Text),
    Column("created_by", String(200), nullable=False),       # an e-mail, or "catalog"
    Column("recurring_key", String(200), unique=True),       # "<name>@<start>" for the catalog's
    Column("ended_by", String(200)),                         # who ended it early
    Column("closed_out_at", UtcDateTime),
)
Index("ix_maintenance_windows_open", maintenance_windows.c.closed_out_at,
      maintenance_windows.c.ends_at)
