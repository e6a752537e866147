"""What `incident status` shows: which outside systems are configured (and what to set where one
is not), the outbox, what failed for good, the last digests. Read from settings and storage
only; no outside call."""
from __future__ import annotations

from cards.common import when
from cards.status import StatusRow, StatusSection
from handlers.context import Context
from incidents import bridge as bridge_rules
from incidents.metrics import duration
from incidents.model import ref
from storage import outbox, reports

# (system, what it does for Firebell, the settings that turn it on)
SYSTEMS = (
    ("graph", "Microsoft Graph", "war rooms",
     "GRAPH_CLIENT_ID, GRAPH_CLIENT_SECRET, GRAPH_TENANT_ID"),
    ("jira", "JIRA", "postmortem and action-item tasks", "JIRA_URL, JIRA_EMAIL, JIRA_API_TOKEN"),
    ("email", "E-mail", "incident e-mails, digests, reminders", "SMTP_HOST"),
    ("pagerduty", "PagerDuty", "two-way acknowledge/resolve, on-call, dependencies",
     "PAGERDUTY_API_TOKEN"),
)


def not_configured(ctx: Context) -> list[str]:
    """One sentence per outside system that is not configured, saying what to set."""
    return [f"{name} is not configured, so no {what}: set {settings}."
            for key, name, what, settings in SYSTEMS if not getattr(ctx.configured, key)]


def integrations(ctx: Context) -> StatusSection:
    rows = [StatusRow(name, f"configured ({what})" if getattr(ctx.configured, key)
                      else f"not configured, so no {what}: set {settings}")
            for key, name, what, settings in SYSTEMS]
    return StatusSection("Outside systems", rows)


def bridges(ctx: Context) -> StatusSection:
    """Meeting bridges need Graph and an organizer: say which is missing."""
    why_not = bridge_rules.not_configured(ctx.configured.graph,
                                          ctx.configured.meeting_organizer)
    state = (f"configured (Teams meetings organized by {ctx.configured.meeting_organizer}; "
             "service-down incidents get one by themselves, `incident bridge INC-n` opens one)"
             if why_not is None else f"not configured, so {why_not}")
    return StatusSection("Meeting bridge", [StatusRow("Teams meeting", state)])


async def outbox_sections(ctx: Context) -> list[StatusSection]:
    async with ctx.db.read() as conn:
        gauges = await outbox.depth(conn, ctx.now())
        parked = await outbox.parked(conn)
    backlog = StatusSection("Outbox", [
        StatusRow("Waiting", str(gauges["pending"])),
        StatusRow("Oldest due for", duration(gauges["oldest_due_seconds"]),
                  problem=gauges["oldest_due_seconds"] > 300),
        StatusRow("Parked (failed for good)", str(gauges["failed"]),
                  problem=gauges["failed"] > 0)])
    rows = [StatusRow(f"{job['kind']}" + (f" · {ref(job['incident_id'])}"
                                          if job["incident_id"] else ""),
                      (job["last_error"] or "no error recorded").splitlines()[0], problem=True)
            for job in parked]
    failures = StatusSection("Parked follow-ups", rows,
                             note=None if rows else "Nothing parked: every follow-up went out. "
                             "`incident retry INC-n` runs an incident's parked ones again.")
    return [backlog, failures]


async def digests(ctx: Context) -> StatusSection:
    async with ctx.db.read() as conn:
        recent = await reports.delivery_history(conn, kinds=["weekly", "monthly"], limit=20)
    rows = []
    for kind in ("weekly", "monthly"):
        last = next((r for r in recent if r["kind"] == kind), None)
        rows.append(StatusRow(f"Last {kind}", f"{last['period']} to {last['target']}, "
                              f"{when(last['created_at'])}" if last else "none yet"))
    return StatusSection("Digests", rows)
