"""Chat commands and card actions as use cases. A command is one decorated function: it loads,
asks incidents/ what to do, writes (one transaction, outbox jobs for the rest) and returns the
Reply to show. Card buttons call the same functions as the typed commands."""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncConnection

from cards.declare import declare_form
from cards.help import help_card
from cards.incident import incident_card
from cards.listing import incident_list_card
from handlers.card_queue import post_card_to
from handlers.changes import change, note, queue_correlation
from handlers.context import Context
from handlers.postmortems import missing_for
from handlers.replies import Reply
from handlers.views import load_view, render_card
from incidents.fingerprint import title_fingerprint
from incidents import permissions
from incidents import postmortem as pm_rules
from incidents.levels import lowering_needs_reason
from incidents.lifecycle import IllegalTransition, OPEN, transition
from incidents.model import Actor, Incident, ref
from storage import conversations, inbound
from storage import incidents as store
from storage import postmortems as pm_store

REASON_LIMIT = 500


@dataclass(frozen=True)
class Where:
    """The conversation a command came from."""
    conversation_id: str
    kind: str                      # channel | personal | groupChat
    event_key: str | None = None   # natural id of the activity: a redelivery changes nothing


CommandFn = Callable[[Context, Actor, dict[str, Any], Where], Awaitable[Reply]]
COMMANDS: dict[str, CommandFn] = {}


def command(verb: str) -> Callable[[CommandFn], CommandFn]:
    def register(fn: CommandFn) -> CommandFn:
        COMMANDS[verb] = fn
        return fn
    return register


async def run_command(ctx: Context, actor: Actor, verb: str, args: dict[str, Any],
                      where: Where) -> Reply:
    fn = COMMANDS.get(verb)
    if fn is None:
        return Reply.refuse(f"`incident {verb}` is not available in this version of "
                            "Firebell. Type `incident help` for what is.")
    return await fn(ctx, actor, args, where)


# -- declare --------------------------------------------------------------------------------

@command("declare")
async def declare(ctx: Context, actor: Actor, args: dict[str, Any], where: Where) -> Reply:
    catalog = ctx.catalog
    title = (args.get("title") or "").strip()
    if not title:
        return Reply(card=declare_form(list(catalog.services), catalog.levels.levels))
    service, problem = _service_for(ctx, args.get("service"), title)
    level = catalog.levels.normalise(args["level"]) if args.get("level") else None
    if args.get("level") and level is None:
        problem = (f"`{args['level'][:40]}` is not a level. Levels: "
                   + ", ".join(catalog.levels.levels) + ".")
    if problem:
        return Reply.refuse(problem, card=declare_form(list(catalog.services),
                                                       catalog.levels.levels, title=title,
                                                       error=problem))
    level = level or catalog.levels.level_for(title)
    async with ctx.db.write() as conn:
        if not await _first_time(ctx, conn, where):
            return Reply(repeated=True)
        team = await _team_for(ctx, conn, service, where)
        now = ctx.now()
        incident = await store.insert(conn, {
            "source": "teams", "external_id": None, "title": title,
            "service": service, "team": team,
            "level": level, "status": OPEN,
            "postmortem_required": pm_rules.required_after(False, level, True, catalog.levels),
            "triggered_at": now, "declared_by": actor.label,
            "fingerprint": title_fingerprint(service, title),
            "duplicate_window_until": now + ctx.policy.duplicate_window,
            "last_event_at": now}, now)
        await note(conn, incident.id, kind="declared", actor=actor, at=now,
                   text=f"declared in Teams on {service or 'an unknown service'}")
        await conversations.add_card_message(ctx.db, conn, incident.id, where.conversation_id)
        await queue_correlation(ctx, conn, incident)
        card = await render_card(ctx, conn, incident)
    ctx.wake_worker()
    return Reply(text=f"🔥 {incident.ref} declared: {title}", card=card, incident_id=incident.id,
                 card_version=incident.version)


def _service_for(ctx: Context, asked: str | None, title: str) -> tuple[str | None, str | None]:
    services = list(ctx.catalog.services)
    if asked:
        if asked in ctx.catalog.services:
            return asked, None
        close = difflib.get_close_matches(asked, services, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        return None, (f"`{asked[:60]}` is not a service in the catalog.{hint} Known services: "
                      + ", ".join(services) + ".")
    words = set(re.findall(r"[a-z0-9][a-z0-9-]*", title.lower()))
    for name in services:  # "checkout is down" -> checkout-api
        stem = re.sub(r"-(api|db|service|web|gateway|svc)$", "", name)
        if name in words or stem in words:
            return name, None
    return None, None


async def _team_for(ctx: Context, conn: AsyncConnection, service: str | None,
                    where: Where) -> str | None:
    svc = ctx.catalog.service(service)
    if svc and svc.owner_team:
        return svc.owner_team
    teams = [t for t in await conversations.subscriptions_of(conn, where.conversation_id)
             if t != "default"]
    return teams[0] if len(teams) == 1 else None


# -- lifecycle --------------------------------------------------------------------------------

async def _first_time(ctx: Context, conn: AsyncConnection, where: Where) -> bool:
    if not where.event_key:
        return True
    return await inbound.first_time(ctx.db, conn, "teams:" + where.event_key[:280], ctx.now())


class _Refused(Exception):
    """A refusal found while acting: the transaction rolls back, so nothing is kept — not
    even the event's natural id (the same button, clicked again once the reason for the
    refusal is gone, must run and not be taken for a retry)."""

    def __init__(self, reply: Reply):
        self.reply = reply


async def _with_incident(ctx: Context, incident_id: int, where: Where,
                         act: Callable[[AsyncConnection, Incident], Awaitable[Reply]], *,
                         action: str | None = None, actor: Actor | None = None) -> Reply:
    """Load the incident (locked), check the actor may do `action`, run `act`, commit (a
    refused act commits nothing)."""
    try:
        async with ctx.db.write() as conn:
            incident = await store.get(conn, incident_id, lock=True)
            if incident is None:
                return Reply.refuse(f"{ref(incident_id)} does not exist. "
                                    "`incident list` shows the open ones.")
            if action and actor and not permissions.may_act(action, actor, incident,
                                                            ctx.catalog, ctx.policy.admins):
                return Reply.refuse(permissions.refusal(action, actor, incident, ctx.catalog))
            if not await _first_time(ctx, conn, where):
                return Reply(repeated=True, card=await render_card(ctx, conn, incident),
                             incident_id=incident.id, card_version=incident.version)
            try:
                reply = await act(conn, incident)
            except IllegalTransition as exc:
                reply = Reply.refuse(str(exc))
            if not reply.ok:
                raise _Refused(reply)
    except _Refused as refused:
        return refused.reply
    ctx.wake_worker()
    return reply


async def _done(ctx: Context, conn: AsyncConnection, incident: Incident, text: str) -> Reply:
    current = await store.get(conn, incident.id)
    return Reply(text=text, card=await render_card(ctx, conn, current), incident_id=incident.id,
                 card_version=current.version)


@command("ack")
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
        return await _done(ctx, conn, updated, f"✅ {incident.ref} acknowledged by {actor.label}.")
    return await _with_incident(ctx, args["incident"], where, act)


async def _acknowledged_before(ctx: Context, conn: AsyncConnection, incident: Incident,
                               actor: Actor, commander: str | None) -> Reply:
    """Someone acknowledged first (maybe a guest, who took no command): a responder's
    acknowledgement still takes the command nobody holds."""
    already = f"{incident.ref} was already acknowledged by {incident.acknowledged_by}."
    if commander == incident.commander:
        return await _done(ctx, conn, incident, already)
    updated = await change(ctx, conn, incident, {"commander": commander}, kind="assigned",
                           text=f"incident commander: {actor.label} (acknowledged after "
                                f"{incident.acknowledged_by})", actor=actor)
    return await _done(ctx, conn, updated, f"{already} {actor.label} is now its incident "
                                           "commander.")


@command("resolve")
async def resolve(ctx: Context, actor: Actor, args: dict[str, Any], where: Where) -> Reply:
    async def act(conn, incident):
        t = transition(incident.ref, incident.status, "resolve")
        updated = await change(ctx, conn, incident, {"status": t.after, "resolved_at": ctx.now()},
                               kind="resolved", text="resolved in Teams", actor=actor)
        return await _done(ctx, conn, updated, f"✅ {incident.ref} resolved by {actor.label}.")
    return await _with_incident(ctx, args["incident"], where, act,
                                action="resolve", actor=actor)


@command("close")
async def close(ctx: Context, actor: Actor, args: dict[str, Any], where: Where) -> Reply:
    async def act(conn, incident):
        t = transition(incident.ref, incident.status, "close")
        missing = await missing_for(ctx, conn, incident)
        if missing:
            raise IllegalTransition(f"{incident.ref} cannot be closed yet: its postmortem is "
                                    "incomplete (missing: " + "; ".join(missing) + ").")
        updated = await change(ctx, conn, incident, {"status": t.after, "closed_at": ctx.now()},
                               kind="closed", text="closed in Teams", actor=actor)
        return await _done(ctx, conn, updated, f"✅ {incident.ref} closed by {actor.label}.")
    return await _with_incident(ctx, args["incident"], where, act,
                                action="close", actor=actor)


@command("level")
async def set_level(ctx: Context, actor: Actor, args: dict[str, Any], where: Where) -> Reply:
    levels = ctx.catalog.levels
    level = levels.normalise(str(args.get("level") or ""))
    if level is None:
        return Reply.refuse(f"`{str(args.get('level'))[:40]}` is not a level. Levels: "
                            + ", ".join(levels.levels) + ".")
    reason = " ".join(str(args.get("reason") or "").split())[:REASON_LIMIT]

    async def act(conn, incident):
        if incident.status == "closed":
            raise IllegalTransition(f"{incident.ref} is closed; its level can no longer change.")
        if incident.level == level:
            return await _done(ctx, conn, incident, f"{incident.ref} is already {level}.")
        why = lowering_needs_reason(levels, incident.level, level, status=incident.status,
                                    postmortem_started=await pm_store.get(conn, incident.id)
                                    is not None)
        if why and not reason:
            return Reply.refuse(
                f"Lowering {incident.ref} from {incident.level} to {level} needs a reason, "
                f"because {why}: type `incident level {incident.ref} {level} because <why>`, "
                "or fill in Reason in the card's level form. (Its postmortem stays "
                "required either way.)")
        text = f"level {incident.level} → {level}" + (f" because {reason}" if reason else "")
        updated = await change(ctx, conn, incident, {"level": level}, kind="level", text=text,
                               actor=actor, data={"reason": reason} if reason else None)
        return await _done(ctx, conn, updated, f"✅ {incident.ref} is now {level}."
                           + await _postmortem_still_required(ctx, conn, updated))
    return await _with_incident(ctx, args["incident"], where, act,
                                action="level", actor=actor)


async def _postmortem_still_required(ctx: Context, conn: AsyncConnection,
                                     incident: Incident) -> str:
    """Said when a lowered incident keeps the postmortem its earlier level called for."""
    if ctx.catalog.levels.needs_postmortem_for(incident.level) or \
            not await missing_for(ctx, conn, incident):
        return ""
    return (f" Its postmortem is still required (it was at a postmortem level); an incident "
            f"commander or admin may waive it: `incident waive {incident.ref} <reason>`.")


@command("assign")
async def assign(ctx: Context, actor: Actor, args: dict[str, Any], where: Where) -> Reply:
    async def act(conn, incident):
        # Checked after who may assign: a non-responder hears who may, whoever they named.
        person = _find_person(ctx, args["person"], args.get("mentioned"))
        if person is None:
            return Reply.refuse(f"I can't find `{args['person'][:60]}` in the catalog's "
                                "people: an incident commander must be someone Firebell "
                                "knows. Mention them (@name) or use their e-mail address.")
        email, name = person
        if incident.commander == email:
            return await _done(ctx, conn, incident, f"{name} already commands {incident.ref}.")
        updated = await change(ctx, conn, incident, {"commander": email}, kind="assigned",
                               text=f"incident commander: {name}", actor=actor)
        return await _done(ctx, conn, updated, f"✅ {name} is now the incident commander "
                                               f"of {incident.ref}.")
    return await _with_incident(ctx, args["incident"], where, act,
                                action="assign", actor=actor)


def _find_person(ctx: Context, who: str, mentioned_email: str | None) -> tuple[str, str] | None:
    catalog = ctx.catalog
    candidates = [mentioned_email, who]
    for c in filter(None, candidates):
        p = catalog.person(c) or next((p for p in catalog.people.values()
                                       if p.name.lower() == c.lower()), None)
        if p:
            return p.email, p.name
    return None


@command("note")
async def add_note(ctx: Context, actor: Actor, args: dict[str, Any], where: Where) -> Reply:
    async def act(conn, incident):
        await note(conn, incident.id, kind="note", text=args["text"], actor=actor, at=ctx.now())
        return Reply(text=f"📝 Noted on {incident.ref}.")
    return await _with_incident(ctx, args["incident"], where, act)


# -- looking ----------------------------------------------------------------------------------

@command("list")
async def list_incidents(ctx: Context, actor: Actor, args: dict[str, Any], where: Where) -> Reply:
    scope, team_word = args.get("scope", "open"), args.get("team")
    team = None
    if team_word:
        found = ctx.catalog.find_team(team_word)
        if found is None:
            return Reply.refuse(f"`{team_word[:40]}` is not a team. Teams: "
                                + ", ".join(ctx.catalog.teams) + ".")
        team = found.key
    statuses = None if scope == "all" else [scope]
    async with ctx.db.read() as conn:
        found_list = await store.list_recent(conn, statuses=statuses, team=team, limit=25)
        total = await store.count(conn, statuses=statuses, team=team)
    heading = f"{scope.capitalize()} incidents" + (f" for {team}" if team else "") + f" ({total})"
    return Reply(card=incident_list_card(found_list, heading=heading, total=total))


@command("show")
async def show(ctx: Context, actor: Actor, args: dict[str, Any], where: Where) -> Reply:
    async with ctx.db.read() as conn:
        incident = await store.get(conn, args["incident"])
        if incident is None:
            return Reply.refuse(f"{ref(args['incident'])} does not exist.")
        view = await load_view(ctx, conn, incident, with_timeline=True)
    return Reply(card=incident_card(view))


@command("help")
async def show_help(ctx: Context, actor: Actor, args: dict[str, Any], where: Where) -> Reply:
    return Reply(card=help_card(ctx.catalog.levels.levels))


@command("subscribe")
async def subscribe(ctx: Context, actor: Actor, args: dict[str, Any], where: Where) -> Reply:
    word = args["team"]
    if where.kind != "channel":
        return Reply.refuse("Subscribe from a team channel: the incidents of a team are posted "
                            "in its channel.")
    team = "default" if word.lower() == "default" else getattr(ctx.catalog.find_team(word),
                                                               "key", None)
    if team is None:
        return Reply.refuse(f"`{word[:40]}` is not a team. Teams: "
                            + ", ".join(ctx.catalog.teams) + ", or `default`.")
    refused = permissions.subscribe_refusal(actor, team, ctx.catalog, ctx.policy.admins)
    if refused:
        return Reply.refuse(refused)
    async with ctx.db.write() as conn:
        if not await _first_time(ctx, conn, where):
            return Reply(repeated=True)
        before = await conversations.subscribe(ctx.db, conn, team=team,
                                               conversation_id=where.conversation_id,
                                               by=actor.label, now=ctx.now())
        posted = await _post_open_cards(ctx, conn, team, where.conversation_id)
    ctx.wake_worker()
    what = "incidents with no owning team or channel" if team == "default" else \
        f"{ctx.catalog.teams[team].name} incidents"
    moved = " (moved from another channel)" if before and before != where.conversation_id else ""
    extra = f" Posting the {posted} open one(s) now." if posted else ""
    return Reply(text=f"✅ This channel now gets {what}{moved}.{extra}")


async def _post_open_cards(ctx: Context, conn: AsyncConnection, team: str,
                           conversation_id: str) -> int:
    """A newly subscribed channel gets the cards of the team's open root incidents."""
    if team == "default":
        return 0
    posted = 0
    for incident in await store.list_recent(conn, statuses=["open"], team=team, limit=20,
                                            roots_only=True):
        if incident.correlated and await post_card_to(ctx, conn, incident, conversation_id):
            posted += 1
    return posted
