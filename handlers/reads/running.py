"""What the incident card shows about running the incident, loaded from storage: its bridge (a
linked incident shows its root's), who holds which role, the latest stakeholder update and when
the next is due, and what the card's forms offer."""
from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from cards.running import LatestUpdate, Running
from handlers.context import Context
from incidents import permissions
from incidents.model import Incident
from incidents.roles import COMMANDER
from storage import bridges, roles, updates

# The role form offers the incident's responders and whoever holds a role, up to this many
# (`incident role` takes anyone in the catalog).
PEOPLE_ON_THE_FORM = 30


async def running_view(ctx: Context, conn: AsyncConnection, incident: Incident) -> Running:
    root_id = incident.parent_id or incident.id
    bridge = await bridges.get(conn, root_id)
    held = await roles.of(conn, incident.id)
    latest, count = await updates.latest(conn, incident.id)
    name = ctx.catalog.display_name
    due = next_update_due(ctx, incident, latest["posted_at"] if latest else None)
    return Running(
        bridge_url=bridge["join_url"] if bridge else None,
        can_open_bridge=bridge is None and ctx.configured.bridge,
        roles=[(role, name(row["person"]) or row["person"]) for role, row in held.items()],
        latest_update=LatestUpdate(latest["phase"], latest["text"], latest["author"],
                                   latest["posted_at"]) if latest else None,
        update_count=count, next_update_due=due,
        update_overdue=due is not None and due <= ctx.now(),
        role_choices=(COMMANDER, *ctx.catalog.roles),
        people=_people(ctx, incident, [row["person"] for row in held.values()]))


def next_update_due(ctx: Context, incident: Incident, last_update=None):
    """When stakeholders expect the next update of an open root incident whose level has a
    cadence: a cadence after the last update, or after the trigger."""
    every = ctx.catalog.levels.update_every.get(incident.level)
    if every is None or not incident.is_open or incident.parent_id is not None:
        return None
    return (last_update or incident.triggered_at) + every


def _people(ctx: Context, incident: Incident, holders: list[str]) -> list[tuple[str, str]]:
    emails = [*holders, *permissions.responders(incident, ctx.catalog)]
    known = [p for p in (ctx.catalog.person(e) for e in dict.fromkeys(emails)) if p]
    known.sort(key=lambda p: p.name.lower())
    return [(p.email, p.name) for p in known[:PEOPLE_ON_THE_FORM]]
