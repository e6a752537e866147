"""Who may do what. Anyone in a subscribed channel may see an incident, acknowledge it (that
stops the page) and add notes. Everything that changes what an incident *means* — its level,
status, links, commander, postmortem and where it is routed — is for its responders: the owning
team's members, the service's on-call, its assignees and commander, the company's incident
commanders, and configured admins. No action grants its actor more rights: acknowledging makes
the acker commander only if they already were a responder. Waiving a postmortem, and routing the
default channel, are for incident commanders and admins alone. Every refusal says who may and
why."""
from __future__ import annotations

from typing import Iterable

from incidents.catalog import Catalog
from incidents.model import Actor, Incident

RESPONDER_ACTIONS = {
    "resolve": "resolve", "close": "close", "level": "change the level of",
    "assign": "assign the commander of", "link": "link", "unlink": "unlink",
    "rca_save": "edit the RCA of", "postmortem_link": "renew the postmortem link of",
    # Running it: who does what, what stakeholders are told, where responders meet.
    "role": "assign roles on", "update": "post stakeholder updates for",
    "bridge": "open a meeting bridge for",
    "page": "page someone for",
}
CONFIGURE_COMMANDERS = ("list incident commanders under a team's `incident_commanders:` in the "
                        "catalog, or set FIREBELL_ADMINS")


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


def is_responder(actor: Actor, incident: Incident, catalog: Catalog,
                 admins: Iterable[str]) -> bool:
    email = (actor.email or "").lower()
    return bool(email) and (email in set(admins) or email in responders(incident, catalog))


def may_act(action: str, actor: Actor, incident: Incident, catalog: Catalog,
            admins: Iterable[str]) -> bool:
    if action not in RESPONDER_ACTIONS or actor.via != "teams":
        return True
    return is_responder(actor, incident, catalog, admins)


def commander_after_ack(actor: Actor, incident: Incident, catalog: Catalog,
                        admins: Iterable[str]) -> str | None:
    """Who commands the incident once `actor` acknowledged it. The first responder to
    acknowledge takes command; anyone else's acknowledgement stops the page and leaves the
    commander as it was (else clicking Acknowledge would make anyone a responder)."""
    if incident.commander or not is_responder(actor, incident, catalog, admins):
        return incident.commander
    return actor.email


def is_commander_or_admin(actor: Actor, catalog: Catalog, admins: Iterable[str]) -> bool:
    email = (actor.email or "").lower()
    return bool(email) and (email in set(admins) or email in catalog.incident_commanders())


def subscribe_refusal(actor: Actor, team: str, catalog: Catalog,
                      admins: Iterable[str]) -> str | None:
    """Why `actor` may not route `team`'s incidents to a channel (None: they may). A team's
    members, incident commanders and admins may route a team; the default channel (incidents
    of no team) is nobody's team, so only incident commanders and admins may route it."""
    admins = set(admins)
    if not actor.email:
        return _unknown(actor, f"route {'the default incidents' if team == 'default' else team}"
                               " to a channel")
    if is_commander_or_admin(actor, catalog, admins):
        return None
    if team == "default":
        if not admins and not catalog.incident_commanders():
            return ("Nobody may route the default incidents yet: no incident commander or admin "
                    f"is configured. To allow it, {CONFIGURE_COMMANDERS}.")
        return (f"Sorry {actor.label}, only {_commanders(catalog)} and admins may route the "
                "default incidents (those of no team) to a channel: they belong to no team, "
                "so no team's members may.")
    found = catalog.team(team)
    if found is not None and actor.email.lower() in found.members:
        return None
    return (f"Sorry {actor.label}, only members of {found.name if found else team} "
            f"({_commanders(catalog)} and admins too) may route its incidents to a channel.")


def refusal(action: str, actor: Actor, incident: Incident, catalog: Catalog) -> str:
    what = f"{RESPONDER_ACTIONS[action]} {incident.ref}"
    if not actor.email:
        return _unknown(actor, what)
    team = catalog.team(incident.team)
    who = f"the {team.name} team" if team else "its responders"
    return (f"Sorry {actor.label}, only {who}, {incident.ref}'s on-call and commander, "
            f"{_commanders(catalog)} and admins may {what}: {_WHY.get(action, _MEANING)}. "
            "Anyone may acknowledge it or add a note; acknowledging does not make "
            "you a responder.")


_MEANING = "that changes what the incident means"
_WHY = {"page": "a page wakes someone up"}


def waive_refusal(actor: Actor, incident: Incident, catalog: Catalog,
                  admins: Iterable[str]) -> str:
    return _commanders_only(
        actor, catalog, admins, f"waive {incident.ref}'s postmortem",
        "the postmortem is how the company learns from an incident at its level, so skipping "
        "it is their call, not the team's.")


def status_refusal(actor: Actor, catalog: Catalog, admins: Iterable[str]) -> str:
    return _commanders_only(
        actor, catalog, admins, "see Firebell's status",
        "it names settings and shows every team's failed follow-ups. `incident show INC-n` "
        "shows one incident's.")


def _commanders_only(actor: Actor, catalog: Catalog, admins: Iterable[str], what: str,
                     why: str) -> str:
    """The refusal of an act for catalog incident commanders and admins only."""
    if not actor.email:
        return _unknown(actor, what)
    if not set(admins) and not catalog.incident_commanders():
        return (f"Nobody may {what} yet: no incident commander or admin is configured. "
                f"To allow it, {CONFIGURE_COMMANDERS}.")
    return f"Sorry {actor.label}, only {_commanders(catalog)} and admins may {what}: {why}"


def _commanders(catalog: Catalog) -> str:
    names = [catalog.display_name(e) or e for e in catalog.incident_commanders()]
    if not names:
        return "the incident commanders"
    return "the incident commanders (" + ", ".join(names[:5]) + \
        (" …" if len(names) > 5 else "") + ")"


def _unknown(actor: Actor, what: str) -> str:
    return (f"Sorry, I don't know who you are yet, so I can't let you {what}. Firebell learns "
            "the team roster when it is added to a team; try again in a minute.")


def stakeholders_refusal(actor: Actor, scope: str, catalog: Catalog,
                         admins: Iterable[str]) -> str | None:
    """Why `actor` may not send stakeholder updates of `scope` (a team key, or "all") to a
    channel (None: they may). As routing a team's incidents: its members, incident commanders
    and admins; every team's ("all") only incident commanders and admins."""
    what = ("every team's stakeholder updates" if scope == "all"
            else f"{catalog.team_name(scope)}'s stakeholder updates")
    if not actor.email:
        return _unknown(actor, f"send {what} to a channel")
    if is_commander_or_admin(actor, catalog, admins):
        return None
    team = catalog.team(scope)
    if team is not None and actor.email.lower() in team.members:
        return None
    if scope == "all" and not set(admins) and not catalog.incident_commanders():
        return (f"Nobody may send {what} to a channel yet: no incident commander or admin is "
                f"configured. To allow it, {CONFIGURE_COMMANDERS}.")
    who = "" if scope == "all" else f"members of {catalog.team_name(scope)}, "
    return f"Sorry {actor.label}, only {who}{_commanders(catalog)} and admins may send {what} " \
           "to a channel."


def page_refusal(actor: Actor, who: str, responders_of_target: set[str], catalog: Catalog,
                 admins: Iterable[str]) -> str | None:
    """Why `actor` may not page `who` without naming an incident (None: they may). A page wakes
    someone up: those who respond for the target may (its team's members and on-call; for a
    person, anyone who responds for something), and incident commanders and admins."""
    what = f"page {who}"
    if not actor.email:
        return _unknown(actor, what)
    email = actor.email.lower()
    if is_commander_or_admin(actor, catalog, admins) or email in responders_of_target:
        return None
    return (f"Sorry {actor.label}, only those who respond for {who} (its team's members and "
            f"on-call), {_commanders(catalog)} and admins may {what}: a page wakes someone up. "
            "Name an incident you respond to (`incident page <whom> INC-n`) to page for it.")


def maintenance_responders(catalog: Catalog, target_kind: str, target: str) -> set[str]:
    """Who responds for a maintenance window's target: the team's members and incident
    commanders and the on-call of its services (for a service, its owning team's)."""
    team_key = target
    services = [s for s in catalog.services.values() if s.owner_team == target]
    if target_kind == "service":
        service = catalog.service(target)
        services, team_key = [service] if service else [], service.owner_team if service else None
    people = {p for s in services for p in (s.primary, s.standby) if p}
    team = catalog.team(team_key)
    if team:
        people |= set(team.members) | set(team.incident_commanders)
    return people


def maintenance_refusal(actor: Actor, label: str, target_kind: str, target: str,
                        catalog: Catalog, admins: Iterable[str]) -> str | None:
    """Why `actor` may not start or end maintenance of `label` (None: they may). Silencing a
    service or team is its responders' call (and incident commanders' and admins')."""
    what = f"put {label} in maintenance or end it"
    if not actor.email:
        return _unknown(actor, what)
    email = actor.email.lower()
    if is_commander_or_admin(actor, catalog, admins) or \
            email in maintenance_responders(catalog, target_kind, target):
        return None
    whose = "its owning team's members and on-call" if target_kind == "service" \
        else "its members and its services' on-call"
    return (f"Sorry {actor.label}, only those who respond for {label} ({whose}), "
            f"{_commanders(catalog)} and admins may {what}: it silences their alerts.")
