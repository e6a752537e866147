"""Acting on an incident: acknowledge, resolve, close, change the level, name the commander,
add a note. Anyone may acknowledge and add notes; the rest changes what the incident means and
is for its responders (incidents/permissions.py)."""
from __future__ import annotations

import re
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from handlers.commands.acting import act_on_incident, with_card
from handlers.commands.parsing import (REASON_LIMIT, ParseError, reason, ref_and_text,
                                       ref_only)
from handlers.commands.registry import Where, command, incident_from_card
from handlers.commands.reply import Reply
from handlers.context import Context
from handlers.incident.change import change
from handlers.reads.postmortem import missing_for
from incidents import permissions
from incidents.levels import lowering_needs_reason
from incidents.lifecycle import IllegalTransition, transition
from incidents.model import Actor, Incident
from storage import postmortems as pm_store
from storage.timeline import note

NOTE_LIMIT = 2000


@command("ack", usage="incident ack ‹INC-n›", summary="Acknowledge", parse=ref_only,
         aliases=("acknowledge",), card_verbs={"ack": incident_from_card})
async def acknowledge(ctx: Context, actor: Actor, args: dict[str, Any], where: Where) -> Reply:
    async def act(conn, incident):
        transition(incident.ref, incident.status, "acknowledge")
        # Anyone may acknowledge (it stops the page); only a responder takes command by it.
        commander = permissions.commander_after_ack(actor, incident, ctx.catalog,
                                                    ctx.policy.admins)
        if incident.acknowledged_by:
            return await _acknowledged_before(ctx, conn, incident, actor, commander)
        now = ctx.now()
        updated = await change(ctx, conn, incident, {
            "acknowledged_by": actor.label, "acknowledged_at": now,
            "first_acknowledged_at": incident.first_acknowledged_at or now,
            "commander": commander,
        }, kind="acknowledged", text="acknowledged in Teams", actor=actor)
        return await with_card(ctx, conn, updated,
                               f"✅ {incident.ref} acknowledged by {actor.label}.")
    return await act_on_incident(ctx, args["incident"], where, act, actor=actor)


async def _acknowledged_before(ctx: Context, conn: AsyncConnection, incident: Incident,
                               actor: Actor, commander: str | None) -> Reply:
    """Someone acknowledged first (maybe a guest, who took no command): a responder's
    acknowledgement still takes the command nobody holds."""
    already = f"{incident.ref} was already acknowledged by {incident.acknowledged_by}."
    if commander == incident.commander:
        return await with_card(ctx, conn, incident, already)
    updated = await change(ctx, conn, incident, {"commander": commander}, kind="assigned",
                           text=f"incident commander: {actor.label} (acknowledged after "
                                f"{incident.acknowledged_by})", actor=actor)
    return await with_card(ctx, conn, updated, f"{already} {actor.label} is now its incident "
                                               "commander.")


@command("resolve", usage="incident resolve ‹INC-n›", summary="Resolve", parse=ref_only,
         card_verbs={"resolve": incident_from_card})
async def resolve(ctx: Context, actor: Actor, args: dict[str, Any], where: Where) -> Reply:
    async def act(conn, incident):
        t = transition(incident.ref, incident.status, "resolve")
        updated = await change(ctx, conn, incident, {"status": t.after, "resolved_at": ctx.now()},
                               kind="resolved", text="resolved in Teams", actor=actor)
        return await with_card(ctx, conn, updated, f"✅ {incident.ref} resolved by {actor.label}.")
    return await act_on_incident(ctx, args["incident"], where, act, action="resolve", actor=actor)


@command("close", usage="incident close ‹INC-n›",
         summary="Close (after the postmortem, where the level needs one)", parse=ref_only,
         card_verbs={"close": incident_from_card})
async def close(ctx: Context, actor: Actor, args: dict[str, Any], where: Where) -> Reply:
    async def act(conn, incident):
        t = transition(incident.ref, incident.status, "close")
        missing = await missing_for(ctx, conn, incident)
        if missing:
            raise IllegalTransition(f"{incident.ref} cannot be closed yet: its postmortem is "
                                    "incomplete (missing: " + "; ".join(missing) + ").")
        updated = await change(ctx, conn, incident, {"status": t.after, "closed_at": ctx.now()},
                               kind="closed", text="closed in Teams", actor=actor)
        return await with_card(ctx, conn, updated, f"✅ {incident.ref} closed by {actor.label}.")
    return await act_on_incident(ctx, args["incident"], where, act, action="close", actor=actor)


_BECAUSE = re.compile(r"\s+because\b", re.IGNORECASE)
_LEVEL_USAGE = ("Usage: `incident level INC-7 service-down`, or with a reason (needed to lower a "
                "resolved incident or one whose postmortem has started): `incident level INC-7 "
                "minor because false alarm, rolled back`.")


def _parse_level(rest: str, verb: str) -> dict[str, Any]:
    incident, text = ref_and_text(rest, verb, _LEVEL_USAGE)
    pieces = _BECAUSE.split(" " + text, maxsplit=1)  # "minor because false alarm"
    level = pieces[0].strip()
    why = pieces[1].strip() if len(pieces) > 1 else None
    if not level or why == "":
        raise ParseError(_LEVEL_USAGE)
    return {"incident": incident, "level": level, **({"reason": reason(why)} if why else {})}


@command("level", usage="incident level ‹INC-n› ‹level› [because ‹reason›]",
         summary="Change the level. Lowering (to a level later in the list below) a resolved "
                 "incident, or one whose postmortem has started, needs a reason",
         parse=_parse_level, aliases=("lvl",), card_verbs={"set_level": incident_from_card})
async def set_level(ctx: Context, actor: Actor, args: dict[str, Any], where: Where) -> Reply:
    levels = ctx.catalog.levels
    level = levels.normalise(str(args.get("level") or ""))
    if level is None:
        return Reply.refuse(f"`{str(args.get('level'))[:40]}` is not a level. Levels: "
                            + ", ".join(levels.levels) + ".")
    why = " ".join(str(args.get("reason") or "").split())[:REASON_LIMIT]

    async def act(conn, incident):
        if incident.status == "closed":
            raise IllegalTransition(f"{incident.ref} is closed; its level can no longer change.")
        if incident.level == level:
            return await with_card(ctx, conn, incident, f"{incident.ref} is already {level}.")
        needs = lowering_needs_reason(levels, incident.level, level, status=incident.status,
                                      postmortem_started=await pm_store.get(conn, incident.id)
                                      is not None)
        if needs and not why:
            return Reply.refuse(
                f"Lowering {incident.ref} from {incident.level} to {level} needs a reason, "
                f"because {needs}: type `incident level {incident.ref} {level} because <why>`, "
                "or fill in Reason in the card's level form. (Its postmortem stays "
                "required either way.)")
        text = f"level {incident.level} → {level}" + (f" because {why}" if why else "")
        updated = await change(ctx, conn, incident, {"level": level}, kind="level", text=text,
                               actor=actor, data={"reason": why} if why else None)
        return await with_card(ctx, conn, updated, f"✅ {incident.ref} is now {level}."
                               + await _postmortem_still_required(ctx, conn, updated))
    return await act_on_incident(ctx, args["incident"], where, act, action="level", actor=actor)


async def _postmortem_still_required(ctx: Context, conn: AsyncConnection,
                                     incident: Incident) -> str:
    """Said when a lowered incident keeps the postmortem its earlier level called for."""
    if ctx.catalog.levels.needs_postmortem_for(incident.level) or \
            not await missing_for(ctx, conn, incident):
        return ""
    return (f" Its postmortem is still required (it was at a postmortem level); an incident "
            f"commander or admin may waive it: `incident waive {incident.ref} <reason>`.")


def _parse_assign(rest: str, verb: str) -> dict[str, Any]:
    incident, who = ref_and_text(
        rest, verb, "Usage: `incident assign INC-7 @person` (the incident commander).")
    return {"incident": incident, "person": who.lstrip("@")[:200]}


@command("assign", usage="incident assign ‹INC-n› @person",
         summary="Make someone the incident commander", parse=_parse_assign)
async def assign(ctx: Context, actor: Actor, args: dict[str, Any], where: Where) -> Reply:
    async def act(conn, incident):
        # Checked after who may assign: a non-responder hears who may, whoever they named.
        person = ctx.catalog.find_person(args.get("mentioned")) or \
            ctx.catalog.find_person(args["person"])
        if person is None:
            return Reply.refuse(f"I can't find `{args['person'][:60]}` in the catalog's "
                                "people: an incident commander must be someone Firebell "
                                "knows. Mention them (@name) or use their e-mail address.")
        if incident.commander == person.email:
            return await with_card(ctx, conn, incident,
                                   f"{person.name} already commands {incident.ref}.")
        updated = await change(ctx, conn, incident, {"commander": person.email},
                               kind="assigned", text=f"incident commander: {person.name}",
                               actor=actor)
        return await with_card(ctx, conn, updated, f"✅ {person.name} is now the incident "
                                                   f"commander of {incident.ref}.")
    return await act_on_incident(ctx, args["incident"], where, act, action="assign", actor=actor)


def _parse_note(rest: str, verb: str) -> dict[str, Any]:
    incident, text = ref_and_text(rest, verb, "Usage: `incident note INC-7 what you found`.")
    if len(text) > NOTE_LIMIT:
        raise ParseError(f"That note is {len(text)} characters; keep notes under {NOTE_LIMIT}.")
    return {"incident": incident, "text": text}


@command("note", usage="incident note ‹INC-n› ‹text›", summary="Add a note to the timeline",
         parse=_parse_note)
async def add_note(ctx: Context, actor: Actor, args: dict[str, Any], where: Where) -> Reply:
    async def act(conn, incident):
        await note(conn, incident.id, kind="note", text=args["text"], actor=actor, at=ctx.now())
        return Reply(text=f"📝 Noted on {incident.ref}.")
    return await act_on_incident(ctx, args["incident"], where, act, actor=actor)
