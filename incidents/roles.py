"""Incident roles besides the commander: who talks to stakeholders (`communications`), who keeps
the timeline (`scribe`), and whatever else the catalog lists under `roles:`. The commander stays
the incident's own field (`incident assign`); `commander` as a role name means that field.

Naming someone to a role changes who runs the incident, so it is a responder's act
(incidents/permissions.py); the person must be someone the catalog knows."""
from __future__ import annotations

import re
from typing import Any

COMMANDER = "commander"
BUILT_IN = ("communications", "scribe")
_NAME = re.compile(r"^[a-z][a-z0-9-]{0,39}$")
_COMMANDER_WORDS = {COMMANDER, "incident-commander", "ic"}


def parse_roles(raw: Any, problems: list[str]) -> tuple[str, ...]:
    """`roles:` in the catalog: a list of role names (lower case, digits and dashes), added to
    the built-in ones. Problems are appended, one line each."""
    if raw is None:
        return BUILT_IN
    if not isinstance(raw, list):
        problems.append("roles: expected a list of role names, e.g. [customer-liaison]")
        return BUILT_IN
    roles = list(BUILT_IN)
    for i, item in enumerate(raw):
        name = str(item).strip().lower() if isinstance(item, (str, int)) else ""
        if not _NAME.match(name):
            problems.append(f"roles[{i}]: {item!r} is not a role name (lower case letters, "
                            "digits and dashes, at most 40, e.g. customer-liaison)")
        elif name in _COMMANDER_WORDS:
            problems.append(f"roles[{i}]: {name!r} is the incident commander, which every "
                            "incident has already (`incident assign`): leave it out")
        elif name not in roles:
            roles.append(name)
    return tuple(roles)


def normalise(word: str | None, roles: tuple[str, ...]) -> str | None:
    """A role from user input ("Scribe", "customer liaison", "IC" -> commander); None if the
    catalog has no such role."""
    w = re.sub(r"[\s_]+", "-", (word or "").strip().lower())
    if w in _COMMANDER_WORDS:
        return COMMANDER
    return w if w in roles else None


def title(role: str) -> str:
    """"customer-liaison" -> "Customer liaison" (how the card and the timeline name it)."""
    if role == COMMANDER:
        return "Incident commander"
    return role.replace("-", " ").capitalize()
