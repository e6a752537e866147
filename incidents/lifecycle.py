"""The incident lifecycle: Open -> Resolved -> Closed, and back to Open on a reopen.

Acknowledgement is not a status: an Open incident is acknowledged or not (PagerDuty's
triggered/acknowledged both mean Open). Closed is Firebell's own: the incident is over and,
where its level needs one, the postmortem is done.
"""
from __future__ import annotations

from dataclasses import dataclass

OPEN = "open"
RESOLVED = "resolved"
CLOSED = "closed"

# (from, action) -> to. Anything not listed is illegal and gets a sentence from _REFUSALS.
_TRANSITIONS = {
    (OPEN, "acknowledge"): OPEN,
    (OPEN, "resolve"): RESOLVED,
    (RESOLVED, "reopen"): OPEN,
    (CLOSED, "reopen"): OPEN,
    (RESOLVED, "close"): CLOSED,
}

_REFUSALS = {
    (RESOLVED, "acknowledge"): "{ref} is already resolved; there is nothing left to acknowledge.",
    (CLOSED, "acknowledge"): "{ref} is closed; there is nothing left to acknowledge.",
    (RESOLVED, "resolve"): "{ref} is already resolved.",
    (CLOSED, "resolve"): "{ref} is closed.",
    (OPEN, "close"): "{ref} is still open: resolve it first, then close it.",
    (CLOSED, "close"): "{ref} is already closed.",
    (OPEN, "reopen"): "{ref} is already open.",
}


class IllegalTransition(ValueError):
    pass


@dataclass(frozen=True)
class Transition:
    before: str
    after: str
    action: str


def transition(ref: str, status: str, action: str) -> Transition:
    after = _TRANSITIONS.get((status, action))
    if after is None:
        msg = _REFUSALS.get((status, action), "{ref} cannot be {action}d while it is {status}.")
        raise IllegalTransition(msg.format(ref=ref, action=action, status=status))
    return Transition(status, after, action)


def label(status: str) -> str:
    return status.capitalize()
