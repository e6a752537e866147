"""Paging from Teams, as rules: whom `incident page <team|service|@person>` names, which
PagerDuty service, escalation policy or user that means, who may send it, and how a page's
state reads on the incident card.

A team is paged through its `escalation_policy_id` (on the incident's PagerDuty service, or the
team's own); a service through its own escalation policy in PagerDuty (its
`pagerduty_service_id`); a person by assigning them (their `pagerduty_user_id`), on the
incident's service or one of their team's. PagerDuty takes assignees or an escalation policy,
never both."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from incidents.catalog import Catalog, Service

TEAM, SERVICE, PERSON = "team", "service", "person"
REQUESTED, TRIGGERED, ACKNOWLEDGED, RESOLVED = "requested", "triggered", "acknowledged", \
    "resolved"
REF = re.compile(r"^(?:inc-?|#)(\d{1,12})$", re.IGNORECASE)  # INC-7, inc-7, #7 (not a bare 7)
MESSAGE_LIMIT = 500
_MOST_WORDS = 4   # "@Noah Bergström", "Data Platform": names run to a few words


class NoPageTarget(ValueError):
    """Why the words name nobody Firebell can page; says what to type or set instead."""


@dataclass(frozen=True)
class PageTarget:
    kind: str                          # team | service | person
    key: str                           # team key, service name or e-mail
    label: str                         # how cards and replies name it
    service_id: str                    # the PagerDuty service the incident is made on
    escalation_policy_id: str | None = None
    assignee_id: str | None = None


@dataclass(frozen=True)
class Named:
    """What `incident page` was asked to page, before the catalog is asked how."""
    kind: str
    key: str
    label: str


def split_words(text: str) -> tuple[list[str], int | None, str]:
    """`checkout INC-7 the db is on fire` -> (["checkout"], 7, "the db is on fire"): the words
    before the incident id, the id, the message after it. Without an id, every word comes
    back first and the message is found once the catalog has said where the name ends."""
    words = text.split()
    for i, word in enumerate(words):
        found = REF.match(word)
        if found:
            return words[:i], int(found.group(1)), " ".join(words[i + 1:])
    return words, None, ""


def name_target(catalog: Catalog, words: list[str], *, whole: bool) -> tuple[Named, list[str]]:
    """Who the leading words name (the longest match wins), and the words left over. `whole`:
    every word must be part of the name (an incident id followed it)."""
    if not words:
        raise NoPageTarget("Whom should I page? Name a team, a service or @someone.")
    person = words[0].startswith("@")
    for n in range(min(len(words), _MOST_WORDS), 0, -1):
        if whole and n != len(words):
            continue
        found = _named(catalog, " ".join(words[:n]).lstrip("@"), person)
        if found:
            return found, words[n:]
    asked = " ".join(words if whole else words[:_MOST_WORDS]).lstrip("@")
    raise NoPageTarget(_unknown(catalog, asked, person))


def _named(catalog: Catalog, text: str, person: bool) -> Named | None:
    if person:
        p = catalog.find_person(text)
        return Named(PERSON, p.email, p.name) if p else None
    service = catalog.service(text)
    if service:
        return Named(SERVICE, service.name, service.name)
    team = catalog.find_team(text)
    return Named(TEAM, team.key, team.name) if team else None


def _unknown(catalog: Catalog, text: str, person: bool) -> str:
    if person:
        return (f"I can't find `{text[:60]}` in the catalog's people: mention someone Firebell "
                "knows (@name) or use their e-mail address.")
    return (f"`{text[:60]}` is neither a team nor a service in the catalog (and a person needs "
            f"an @). Teams: {', '.join(catalog.teams)}. Services: {', '.join(catalog.services)}.")


def page_target(catalog: Catalog, named: Named, incident_service: str | None) -> PageTarget:
    """The PagerDuty side of a page, or NoPageTarget saying which catalog key is missing."""
    if named.kind == SERVICE:
        service = catalog.service(named.key)
        if not service.pagerduty_service_id:
            raise NoPageTarget(f"{service.name} has no `pagerduty_service_id` in the catalog, "
                               "so Firebell cannot page it.")
        return PageTarget(SERVICE, named.key, named.label, service.pagerduty_service_id)
    if named.kind == TEAM:
        return _team_target(catalog, named, incident_service)
    return _person_target(catalog, named, incident_service)


def _team_target(catalog: Catalog, named: Named, incident_service: str | None) -> PageTarget:
    team = catalog.team(named.key)
    own = [s for s in _paged_services(catalog) if s.owner_team == team.key]
    incident = catalog.service(incident_service)
    if team.escalation_policy_id:
        # Its policy pages the team, whichever service the PagerDuty incident is on.
        on = incident if incident and incident.pagerduty_service_id else next(iter(own), None)
    else:
        on = incident if incident in own else next(iter(own), None)
    if on is None:
        raise NoPageTarget(f"{team.name} has no `escalation_policy_id` and no service with a "
                           "`pagerduty_service_id` in the catalog, so Firebell cannot page it.")
    return PageTarget(TEAM, team.key, team.name, on.pagerduty_service_id,
                      escalation_policy_id=team.escalation_policy_id)


def _person_target(catalog: Catalog, named: Named, incident_service: str | None) -> PageTarget:
    person = catalog.person(named.key)
    if not person.pagerduty_user_id:
        raise NoPageTarget(f"{person.name} has no `pagerduty_user_id` in the catalog's people, "
                           "so Firebell cannot page them.")
    candidates = [catalog.service(incident_service)] + [
        s for s in _paged_services(catalog)
        if person.email in _team_members(catalog, s.owner_team)
        or person.email in (s.primary, s.standby)]
    on = next((s for s in candidates if s and s.pagerduty_service_id), None)
    if on is None:
        raise NoPageTarget(f"Which PagerDuty service should page {person.name}? Name the "
                           "incident (`INC-n`): its service carries the page.")
    return PageTarget(PERSON, person.email, person.name, on.pagerduty_service_id,
                      assignee_id=person.pagerduty_user_id)


def _paged_services(catalog: Catalog) -> list[Service]:
    return [s for s in catalog.services.values() if s.pagerduty_service_id]


def _team_members(catalog: Catalog, key: str | None) -> tuple[str, ...]:
    team = catalog.team(key)
    return team.members if team else ()


def responders_of_target(catalog: Catalog, named: Named) -> set[str]:
    """Who may page `named` when no incident is named: those who respond for it (its team's
    members, its services' on-call), and for a person, anyone who responds for something.
    Incident commanders and admins are added by the caller's rule."""
    services: Iterable[Service]
    if named.kind == TEAM:
        services = [s for s in catalog.services.values() if s.owner_team == named.key]
        teams = [catalog.team(named.key)]
    elif named.kind == SERVICE:
        services = [catalog.service(named.key)]
        teams = [catalog.team(catalog.service(named.key).owner_team)]
    else:
        services, teams = catalog.services.values(), list(catalog.teams.values())
    people = {p for s in services for p in (s.primary, s.standby) if p}
    for team in teams:
        if team:
            people |= set(team.members) | set(team.incident_commanders)
    return people


# -- how a page reads on the card ---------------------------------------------------------------

def page_state(page: Mapping[str, Any]) -> str:
    """"PagerDuty #1234 · acknowledged by Ana Costa", "requested by Priya Raman", ..."""
    number = f"PagerDuty #{page['pd_number']} · " if page.get("pd_number") else ""
    status = page["status"]
    if status == REQUESTED:
        return f"requested by {page['requested_by']}, not in PagerDuty yet"
    if status == ACKNOWLEDGED:
        return f"{number}acknowledged by {page.get('acknowledged_by') or 'someone'}"
    if status == RESOLVED:
        return f"{number}resolved in PagerDuty"
    who = ", ".join(page.get("assignees") or [])
    return f"{number}not acknowledged yet" + (f" (with {who})" if who else "")
