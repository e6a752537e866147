"""Who may do what. Anyone may declare, acknowledge, add notes and look; changing an incident's
outcome (resolve, close, level, commander, links, the RCA) is for its responders: the owning
team's members, the service's on-call, its assignees and commanders, the company's incident
commanders, and configured admins."""
from __future__ import annotations

from typing import Iterable

from incidents.catalog import Catalog
from incidents.model import Actor, Incident

RESPONDER_ACTIONS = {
    "resolve": "resolve", "close": "close", "level": "change the level of",
    "assign": "assign the commander of", "link": "link", "unlink": "unlink",
    "rca_save": "edit the RCA of", "postmortem_link": "renew the postmortem link of",
}


def responders(incident: Incident, catalog: Catalog) -> set[str]:
    people: set[str] = set(catalog.incident_commanders())
    team = catalog.team(incident.team)
    if team:
        people |= set(team.members) | set(team.incident_commanders)
    service = catalog.service(incident.service)
    if service:
        people |= {p for p in (service.primary, service.standby) if p}
    if incident.commander and "@" in incident.commander:
        people.add(incident.commander.lower())
    by_name = {p.name.lower(): p.email for p in catalog.people.values()}
    people |= {by_name[a.lower()] for a in incident.assignees if a.lower() in by_name}
    return people


def may_act(action: str, actor: Actor, incident: Incident, catalog: Catalog,
            admins: Iterable[str]) -> bool:
    if action not in RESPONDER_ACTIONS or actor.via != "teams":
        return True
    email = (actor.email or "").lower()
    return bool(email) and (email in set(admins) or email in responders(incident, catalog))


def may_subscribe(actor: Actor, team: str, catalog: Catalog, admins: Iterable[str]) -> bool:
    """A channel takes a team's incidents only if a member of that team (or an incident
    commander or admin) says so; the default channel, only commanders and admins (anyone
    while no admin is configured)."""
    admins = set(admins)
    email = (actor.email or "").lower()
    if email and (email in admins or email in catalog.incident_commanders()):
        return True
    if team == "default":
        return not admins
    found = catalog.team(team)
    return bool(email) and found is not None and email in found.members


def refusal(action: str, actor: Actor, incident: Incident, catalog: Catalog) -> str:
    if not actor.email:
        return (f"Sorry, I don't know who you are yet, so I can't let you "
                f"{RESPONDER_ACTIONS[action]} {incident.ref}. Firebell learns the team roster "
                "when it is added to a team; try again in a minute.")
    team = catalog.team(incident.team)
    who = f"the {team.name} team" if team else "its responders"
    return (f"Sorry {actor.label}, only {who}, {incident.ref}'s on-call and commanders, the "
            f"incident commanders and admins may {RESPONDER_ACTIONS[action]} {incident.ref}. "
            "Anyone may acknowledge it or add a note.")
