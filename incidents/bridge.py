"""Meeting bridges: which incidents get a Teams meeting on their own, and the key that makes
the meeting one per incident. Graph's createOrGet returns the meeting already made for an
external id, so a retried job, or two replicas racing, get the same meeting back."""
from __future__ import annotations

from hashlib import sha256

from incidents.levels import SERVICE_DOWN
from incidents.model import Incident

SUBJECT_LIMIT = 200
NO_ORGANIZER = ("no meeting bridge: set FIREBELL_MEETING_ORGANIZER (the object id or UPN of "
                "the user whose Teams meetings the bridges are; Graph needs OnlineMeetings."
                "ReadWrite.All and an application access policy granted to that user)")
NO_GRAPH = ("no meeting bridge: Microsoft Graph is not configured (GRAPH_CLIENT_ID, "
            "GRAPH_CLIENT_SECRET, GRAPH_TENANT_ID), and FIREBELL_MEETING_ORGANIZER names whose "
            "Teams meetings the bridges are")


def not_configured(graph: bool, organizer: str) -> str | None:
    """What to set for meeting bridges to work; None when they do."""
    if not graph:
        return NO_GRAPH
    return None if organizer else NO_ORGANIZER


def opens_automatically(level: str) -> bool:
    """A service-down incident gets its bridge without anyone asking (`incident bridge INC-n`
    opens one for any other)."""
    return level == SERVICE_DOWN


def installation_key(public_base_url: str) -> str:
    """Stable for one Firebell installation, different between two (a test and a production
    install share INC numbers and may share the organizer)."""
    return sha256(public_base_url.rstrip("/").lower().encode()).hexdigest()[:10]


def external_id(incident: Incident, installation: str) -> str:
    """`firebell-INC-7-<installation>-<created>`: the incident's creation time tells a new INC-7
    (after the database was reset) from the old one."""
    return f"firebell-{incident.ref}-{installation}-{incident.created_at:%Y%m%d%H%M%S}"


def subject(incident: Incident) -> str:
    text = f"{incident.ref} bridge: {incident.title}"
    return text if len(text) <= SUBJECT_LIMIT else text[:SUBJECT_LIMIT - 1] + "…"
