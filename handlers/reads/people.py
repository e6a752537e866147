"""People to pick as an action item's owner: the RCA form's choices (the incident's team, its
responders and its role holders) and the typeahead behind them (Teams' `application/search`
invoke for the dataset `people`), answered from the Teams roster and the catalog."""
from __future__ import annotations

from typing import Iterable

from sqlalchemy.ext.asyncio import AsyncConnection

from handlers.context import Context
from incidents import permissions
from incidents.model import Incident
from storage import people as roster
from storage import roles

MAX_CHOICES = 15  # Teams shows at most 15 typeahead options
FORM_CHOICES = 10  # in the form itself, per action item (the card must stay under 28 KB)


async def owner_choices(ctx: Context, conn: AsyncConnection, incident: Incident,
                        also: Iterable[str | None] = ()) -> list[tuple[str, str]]:
    """(e-mail, name) of the people an action item of this incident is likely owned by: its
    role holders, the team, the other responders, and owners already chosen (`also`)."""
    held = [r["person"] for r in (await roles.of(conn, incident.id)).values()]
    team = ctx.catalog.team(incident.team)
    members = list(team.members) + list(team.incident_commanders) if team else []
    emails = [incident.commander, *held, *members,
              *sorted(permissions.responders(incident, ctx.catalog))]
    out: dict[str, str] = {}
    for email in [*also, *emails]:  # owners chosen before always stay selectable
        if email and "@" in email and email.lower() not in out:
            out[email.lower()] = ctx.catalog.display_name(email.lower()) or email.lower()
    return list(out.items())[:max(FORM_CHOICES, len(set(a for a in also if a)))]


async def search_people(ctx: Context, conn: AsyncConnection, tenant_id: str, query: str, *,
                        skip: int = 0, top: int = MAX_CHOICES) -> list[tuple[str, str]]:
    """(e-mail, name) of catalog people and roster members whose name or e-mail contains every
    word of `query`, catalog people first (they own services and rotations), by name."""
    words = query.lower().split()[:5]
    top = max(1, min(top, MAX_CHOICES))
    found: dict[str, str] = {}
    for person in sorted(ctx.catalog.people.values(), key=lambda p: p.name.lower()):
        text = f"{person.name} {person.email}".lower()
        if all(w in text for w in words):
            found.setdefault(person.email.lower(), person.name)
    for row in await roster.search(conn, tenant_id, words, limit=skip + top):
        found.setdefault(row["email"], row["name"] or row["email"])
    return list(found.items())[skip:skip + top]
