"""Similar past incidents, shown on the card of a new incident (IncidentView.similar)."""
from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from handlers.context import Context
from incidents.model import Incident
from storage import incidents as store
from storage import search as index


async def similar_incidents(ctx: Context, conn: AsyncConnection,
                            incident: Incident) -> list[Incident]:
    """Top 3 past incidents on the same service whose text reads most like this one, for the
    card of an open root incident (so the team sees last time's RCA while it still matters)."""
    if not incident.is_open or incident.parent_id is not None:
        return []
    ids = await index.similar(conn, incident_id=incident.id, service=incident.service,
                              title=incident.title)
    found = await store.get_many(conn, ids)
    return [found[i] for i in ids if i in found]
