"""Which incidents are cascade children of another team's root: those get the compact card
(cards/cascade.py) in their own team's channel instead of the full one, which lives with the
root's team."""
from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from cards.cascade import CascadeView, cascade_child_card
from handlers.context import Context
from incidents.correlation import CASCADE
from incidents.model import Incident
from storage import incidents as store


async def other_teams_root(conn: AsyncConnection, incident: Incident) -> Incident | None:
    """The root, when `incident` is a cascade child whose owning team differs from the root's
    (cascades are one level deep: the parent is the root)."""
    if incident.link_kind != CASCADE or incident.parent_id is None:
        return None
    root = await store.get(conn, incident.parent_id)
    if root is None or root.team == incident.team:
        return None
    return root


def compact_card(ctx: Context, child: Incident, root: Incident) -> dict:
    team = ctx.catalog.team(root.team)
    return cascade_child_card(CascadeView(child, root, team.name if team else root.team))
