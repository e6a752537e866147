"""The help card: every command, grouped the way an on-call engineer reaches for them.

Placeholders are written ‹INC-n›, not <INC-n>: FactSet text is Markdown, and Teams (like the Playground)
drops anything that looks like an HTML tag, so `incident ack <INC-n>` would show as `incident ack`."""
from __future__ import annotations

from typing import Any

from cards.common import block, card, execute

COMMANDS = (
    ("Declare and act", (
        ("incident declare ‹title› [service=…] [level=…]", "Declare an incident (no title: a form)"),
        ("incident ack ‹INC-n›", "Acknowledge"),
        ("incident resolve ‹INC-n›", "Resolve"),
        ("incident close ‹INC-n›", "Close (after the postmortem, where the level needs one)"),
        ("incident level ‹INC-n› ‹level› [because ‹reason›]",
         "Change the level. Lowering (to a level later in the list below) a resolved "
         "incident, or one whose postmortem has started, needs a reason"),
        ("incident assign ‹INC-n› @person", "Make someone the incident commander"),
        ("incident note ‹INC-n› ‹text›", "Add a note to the timeline"),
    )),
    ("Look", (
        ("incident list [open|all] [team]", "Incidents, newest first"),
        ("incident show ‹INC-n›", "One incident with its timeline"),
        ("incident oncall [team|service]", "Who is on call and on standby now"),
        ("incident search ‹words›", "Search past incidents and postmortems"),
        ("incident stats [team] [period]", "Counts, MTTA, MTTR, impact"),
        ("incident report weekly|monthly|history [team]", "Digests on demand"),
    )),
    ("Follow-ups", (
        ("incident rca ‹INC-n›", "Open the RCA form of the postmortem"),
        ("incident waive ‹INC-n› ‹reason›", "Waive the postmortem (incident commanders, admins)"),
        ("incident postmortem ‹INC-n› new-link", "A new secret link to the postmortem page"),
        ("incident retry ‹INC-n›", "Retry follow-ups that failed (JIRA, war room, e-mail…)"),
        ("incident link ‹INC-child› ‹INC-parent›", "Link an incident to its root"),
        ("incident unlink ‹INC-n›", "Undo a link: not related"),
    )),
    ("Set-up", (
        ("incident subscribe ‹team|default›", "Send this team's incidents to this channel"),
        ("incident help", "This card"),
    )),
)


def help_card(levels: tuple[str, ...] | list[str], note: str | None = None) -> dict[str, Any]:
    body: list[dict] = [block("🔥 **Firebell** — incidents in Teams", size="Large",
                              weight="Bolder")]
    if note:
        body.append(block(note, color="Attention"))
    body.append(block("Type commands with or without the leading slash; in a channel, "
                      "@mention Firebell first. Incident ids: INC-7, inc-7 or 7.", isSubtle=True))
    for group, rows in COMMANDS:
        body.append(block(f"**{group}**", spacing="Medium"))
        body.append({"type": "FactSet", "facts": [{"title": cmd, "value": what}
                                                  for cmd, what in rows]})
    body.append(block("Levels: " + ", ".join(levels) + " (most to least severe)", isSubtle=True))
    body.append(block("Anyone may acknowledge and add notes; changing what an incident means "
                      "(level, status, links, commander, postmortem) is for its responders.",
                      isSubtle=True))
    return card(body, [execute("Declare an incident", "declare_form", {})])
