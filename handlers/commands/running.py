"""Running an incident: `incident bridge` (a Teams meeting), `incident role` (who does what) and
`incident update` (what stakeholders are told), typed or from the card's "More". Each is a
responder's act (incidents/permissions.py): it changes who runs the incident, what the company
hears about it, or opens a meeting in its name."""
from __future__ import annotations

import re
from typing import Any

from handlers.commands.acting import act_on_incident, with_card
from handlers.commands.parsing import ParseError, ref_and_text, ref_only
from handlers.commands.registry import Where, command, incident_from_card
from handlers.commands.reply import Reply
from handlers.context import Context
from handlers.effects import meeting_bridge
from handlers.incident.roles import assign_role, holds
from handlers.incident.updates import post_update
from incidents import roles as role_rules
from incidents import updates as update_rules
from incidents.model import Actor, Incident
from storage import bridges
from storage import incidents as store


# -- incident bridge ------------------------------------------------------------------------------

@command("bridge", usage="incident bridge ‹INC-n›",
         summary="Open a Teams meeting for the incident (service-down gets one by itself); "
                 "Join bridge on its card", parse=ref_only,
         card_verbs={"open_bridge": incident_from_card})
async def open_bridge(ctx: Context, actor: Actor, args: dict[str, Any], where: Where) -> Reply:
    why_not = meeting_bridge.why_not_configured(ctx)

    async def act(conn, incident):
        if why_not:
            return Reply.refuse(f"{incident.ref} gets {why_not}. `incident status` lists what "
                                "is set up.")
        root = await store.get(conn, incident.parent_id) if incident.parent_id else incident
        linked = f"{incident.ref} is linked to {root.ref}, so it shares {root.ref}'s bridge. " \
            if root.id != incident.id else ""
        found = await bridges.get(conn, root.id)
        if found:
            return await with_card(ctx, conn, incident, f"{linked}📞 {root.ref}'s bridge: "
                                                        f"{found['join_url']}")
        if root.status == "closed":
            return Reply.refuse(f"{root.ref} is closed: it needs no bridge any more.")
        if await meeting_bridge.queue_bridge(ctx, conn, root, actor):
            return await with_card(ctx, conn, incident, f"{linked}📞 Opening a Teams meeting "
                                   f"for {root.ref}: Join bridge shows on its card in a moment.")
        return await with_card(ctx, conn, incident, linked + await _bridge_pending(conn, root))
    return await act_on_incident(ctx, args["incident"], where, act, action="bridge", actor=actor)


async def _bridge_pending(conn, root: Incident) -> str:
    job = await meeting_bridge.job_state(conn, root.id)
    if job and job["status"] == "failed":
        error = (job["last_error"] or "unknown error").splitlines()[0][:200]
        return (f"Opening {root.ref}'s bridge failed ({error}). `incident retry {root.ref}` "
                "tries again.")
    return f"{root.ref}'s bridge is being opened: Join bridge shows on its card in a moment."


# -- incident role --------------------------------------------------------------------------------

_MENTION = re.compile(r"(?:^|\s)@")
_ROLE_USAGE = ("Usage: `incident role INC-7 scribe @Daniel Okafor` (roles: commander, "
               "communications, scribe, and the catalog's `roles:`).")


def _parse_role(rest: str, verb: str) -> dict[str, Any]:
    """`INC-7 scribe @Daniel Okafor`, `INC-7 customer liaison @Tom`, `INC-7 scribe a@b.example`:
    the role runs up to the @mention (or is one word before an e-mail address)."""
    incident, text = ref_and_text(rest, verb, _ROLE_USAGE)
    at = _MENTION.search(text)
    role, who = (text[:at.start()], text[at.end():]) if at else text.partition(" ")[::2]
    if not role.strip() or not who.strip():
        raise ParseError(_ROLE_USAGE)
    return {"incident": incident, "role": role.strip()[:60], "person": who.strip()[:200]}


def _role_from_card(data: dict[str, Any]) -> dict[str, Any] | None:
    found = incident_from_card(data)
    if found is None:
        return None
    return {"incident": found["incident"], "role": str(data.get("role_name") or "")[:60],
            "person": str(data.get("role_person") or "")[:200]}


@command("role", usage="incident role ‹INC-n› ‹role› @person",
         summary="Name someone to a role: communications, scribe (and the catalog's roles); "
                 "commander as `assign`", parse=_parse_role,
         card_verbs={"assign_role": _role_from_card})
async def name_role(ctx: Context, actor: Actor, args: dict[str, Any], where: Where) -> Reply:
    catalog = ctx.catalog

    async def act(conn, incident):
        # Checked after who may: a non-responder hears who may, whatever they typed.
        role = role_rules.normalise(args.get("role"), catalog.roles)
        if role is None:
            return Reply.refuse(f"`{str(args.get('role'))[:40] or '(nothing)'}` is not a role. "
                                "Roles: " + ", ".join(("commander", *catalog.roles)) + ". "
                                + _ROLE_USAGE)
        if incident.status == "closed":
            return Reply.refuse(f"{incident.ref} is closed; its roles no longer change.")
        person = catalog.find_person(args.get("mentioned")) or \
            catalog.find_person(args.get("person"))
        if person is None:
            return Reply.refuse(f"I can't find `{str(args.get('person'))[:60]}` in the "
                                "catalog's people: a role goes to someone Firebell knows. "
                                "Mention them (@name) or use their e-mail address.")
        done = await assign_role(ctx, conn, incident, role, person, actor)
        if done is None:
            return await with_card(ctx, conn, incident, "Nothing to change: " + holds(
                person.name, role, incident.ref, already=True) + ".")
        return await with_card(ctx, conn, incident, done)
    return await act_on_incident(ctx, args["incident"], where, act, action="role", actor=actor)


# -- incident update -------------------------------------------------------------------------------

_UPDATE_USAGE = ("Usage: `incident update INC-7 identified bad config push, rolling back` "
                 "(phases: " + ", ".join(update_rules.PHASES) + ").")


def _parse_update(rest: str, verb: str) -> dict[str, Any]:
    incident, text = ref_and_text(rest, verb, _UPDATE_USAGE)
    phase, _, said = text.partition(" ")
    if update_rules.normalise_phase(phase) is None:
        raise ParseError(f"`{phase[:40]}` is not a phase. " + _UPDATE_USAGE)
    return {"incident": incident, "phase": phase, "text": _checked_text(said)}


def _checked_text(text: str) -> str:
    text = text.strip()
    if not text:
        raise ParseError("An update needs its text: what stakeholders should know. "
                         + _UPDATE_USAGE)
    if len(text) > update_rules.TEXT_LIMIT:
        raise ParseError(f"That update is {len(text)} characters; keep it under "
                         f"{update_rules.TEXT_LIMIT}.")
    return text


def _update_from_card(data: dict[str, Any]) -> dict[str, Any] | None:
    found = incident_from_card(data)
    if found is None:
        return None
    return {"incident": found["incident"], "phase": str(data.get("update_phase") or "")[:40],
            "text": str(data.get("update_text") or "")[:update_rules.TEXT_LIMIT * 2]}


@command("update",
         usage="incident update ‹INC-n› ‹investigating|identified|monitoring|resolved› ‹text›",
         summary="Tell stakeholders where it stands: on the card, in the war room, by e-mail, "
                 "and in channels set with `incident subscribe stakeholders ‹team|all›`",
         parse=_parse_update,
         card_verbs={"post_update": _update_from_card})
async def update_stakeholders(ctx: Context, actor: Actor, args: dict[str, Any],
                              where: Where) -> Reply:
    async def act(conn, incident):
        phase = update_rules.normalise_phase(args.get("phase"))
        try:
            text = _checked_text(str(args.get("text") or ""))
            if phase is None:
                raise ParseError(f"`{str(args.get('phase'))[:40] or '(nothing)'}` is not a "
                                 "phase. " + _UPDATE_USAGE)
        except ParseError as exc:
            return Reply.refuse(str(exc))
        if incident.status == "closed":
            return Reply.refuse(f"{incident.ref} is closed: its last word is its close summary.")
        number = await post_update(ctx, conn, incident, phase, text, actor)
        still = (f" (It is still open: `incident resolve {incident.ref}` resolves it.)"
                 if phase == "resolved" and incident.is_open else "")
        return await with_card(ctx, conn, incident, f"📣 Update {number} on {incident.ref} "
                                                    f"sent to its stakeholders.{still}")
    return await act_on_incident(ctx, args["incident"], where, act, action="update", actor=actor)
