"""`incident declare <title> [service=…] [level=…] [private]`: an engineer declares an incident
(no title: the declare form). The card answers the command and becomes the incident's live card
in this conversation; correlation then decides, as for any incident, whether it is a root.

A private incident's card goes to a private chat only (handlers/incident/private.py); the answer
here says so and shows nothing about it. "Declare incident" on a message lands here too
(handlers/commands/from_message.py), with the message's link for the timeline."""
from __future__ import annotations

import difflib
import re
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from cards.declare import declare_form
from handlers.commands.acting import first_time
from handlers.commands.parsing import ParseError
from handlers.commands.registry import Where, command
from handlers.commands.reply import Reply
from handlers.context import Context
from handlers.incident.change import queue_correlation
from handlers.incident.private import declare_privately
from handlers.reads.views import render_card
from incidents import postmortem as pm_rules
from incidents.fingerprint import title_fingerprint
from incidents.lifecycle import OPEN
from incidents.model import Actor
from storage import conversations
from storage import incidents as store
from storage.timeline import note

TITLE_LIMIT = 250
_OPTION = re.compile(r"(?:^|\s)(service|level|team)=(\"[^\"]*\"|'[^']*'|\S+)", re.IGNORECASE)


_PRIVATE = re.compile(r"\s+private$", re.IGNORECASE)


def _parse(rest: str, verb: str) -> dict[str, Any]:
    options = {k.lower(): v.strip("\"'") for k, v in _OPTION.findall(rest)}
    title = _OPTION.sub(" ", rest).strip()
    # `private` as the last word: `incident declare payroll export leaks private`.
    private = bool(_PRIVATE.search(" " + title))
    title = _PRIVATE.sub("", " " + title).strip()
    if len(title) > TITLE_LIMIT:
        raise ParseError(f"The title is {len(title)} characters; keep it under {TITLE_LIMIT}.")
    if private and not title:
        raise ParseError("A private incident needs a title: `incident declare ‹title› private`.")
    return {"title": title, **options, **({"private": True} if private else {})}


def _from_form(data: dict[str, Any]) -> dict[str, Any]:
    return {**data, "title": str(data.get("title") or "").strip()[:TITLE_LIMIT],
            "private": str(data.get("private") or "").lower() == "true"}


def _form(ctx: Context, args: dict[str, Any], error: str | None = None) -> dict[str, Any]:
    return declare_form(list(ctx.catalog.services), ctx.catalog.levels.levels,
                        title=args.get("title") or "", error=error,
                        private=bool(args.get("private")))


def check(ctx: Context, args: dict[str, Any]) -> tuple[str | None, str | None, str | None]:
    """(service, level, problem) for a declaration's words; a problem names what to type."""
    catalog = ctx.catalog
    title = (args.get("title") or "").strip()
    service, problem = _service_for(ctx, args.get("service"), title)
    level = catalog.levels.normalise(args["level"]) if args.get("level") else None
    if args.get("level") and level is None:
        problem = (f"`{args['level'][:40]}` is not a level. Levels: "
                   + ", ".join(catalog.levels.levels) + ".")
    if args.get("private") and not ctx.configured.graph and not problem:
        problem = ("A private incident needs Microsoft Graph (GRAPH_TENANT_ID, GRAPH_CLIENT_ID, "
                   "GRAPH_CLIENT_SECRET) to make its private chat, and it is not configured "
                   "here: nothing was declared. Declare it without `private`, or ask an admin.")
    return service, level or catalog.levels.level_for(title), problem


@command("declare", usage="incident declare ‹title› [service=…] [level=…] [private]",
         summary="Declare an incident (no title: a form; `private`: only a private chat "
                 "with its responders sees it)", parse=_parse, card_reply=True,
         card_verbs={"declare": _from_form, "declare_form": lambda data: {"title": ""}})
async def declare(ctx: Context, actor: Actor, args: dict[str, Any], where: Where) -> Reply:
    catalog = ctx.catalog
    title = (args.get("title") or "").strip()
    if not title:
        return Reply(card=_form(ctx, args))
    service, level, problem = check(ctx, args)
    if problem:
        return Reply.refuse(problem, card=_form(ctx, args, problem))
    private = bool(args.get("private"))
    async with ctx.db.write() as conn:
        if not await first_time(ctx, conn, where):
            return Reply(repeated=True)
        team = await _team_for(ctx, conn, service, where)
        now = ctx.now()
        incident = await store.insert(conn, {
            "source": "teams", "external_id": None, "title": title,
            "service": service, "team": team, "level": level, "status": OPEN,
            "postmortem_required": pm_rules.required_after(False, level, True, catalog.levels),
            "triggered_at": now, "declared_by": actor.label,
            "fingerprint": title_fingerprint(service, title),
            # A private incident is never anyone's twin (no duplicate window).
            "duplicate_window_until": None if private else now + ctx.policy.duplicate_window,
            "last_event_at": now,
            # Nothing links to or from a private incident: a public root's card would name it.
            "private": private, "correlated": private, "no_auto_link": private}, now)
        source = args.get("source_link")
        await note(conn, incident.id, kind="declared", actor=actor, at=now,
                   text=f"declared in Teams on {service or 'an unknown service'}"
                        + (f" from a message by {args.get('source_author') or 'someone'}: "
                           f"{source}" if source else ""),
                   data={"source_message": source} if source else None)
        if private:
            await declare_privately(ctx, conn, incident, actor)
            ctx.wake_worker()
            return Reply(text=f"🔒 {incident.ref} declared as a private incident. Its card "
                              "goes only to a new private chat with you and the service's "
                              "responders; it is left out of channels, lists and reports.",
                         incident_id=None)
        await conversations.add_card_message(ctx.db, conn, incident.id, where.conversation_id)
        await queue_correlation(ctx, conn, incident)
        card = await render_card(ctx, conn, incident)
    ctx.wake_worker()
    return Reply(text=f"🔥 {incident.ref} declared: {title}", card=card, incident_id=incident.id,
                 live=True)


def _service_for(ctx: Context, asked: str | None, title: str) -> tuple[str | None, str | None]:
    services = list(ctx.catalog.services)
    if asked:
        if asked in ctx.catalog.services:
            return asked, None
        close = difflib.get_close_matches(asked, services, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        return None, (f"`{asked[:60]}` is not a service in the catalog.{hint} Known services: "
                      + ", ".join(services) + ".")
    return guess_service(ctx, title), None


def guess_service(ctx: Context, text: str) -> str | None:
    """The catalog service some text names: by name, by name without its -api/-db suffix
    ("checkout is down" -> checkout-api), or by one of its `aliases`."""
    lowered = f" {text.lower()} "
    words = set(re.findall(r"[a-z0-9][a-z0-9-]*", lowered))
    for name, svc in ctx.catalog.services.items():
        stem = re.sub(r"-(api|db|service|web|gateway|svc)$", "", name)
        if name in words or stem in words or \
                any(re.search(rf"(?<![a-z0-9-]){re.escape(a)}(?![a-z0-9-])", lowered)
                    for a in svc.aliases):
            return name
    return None


async def _team_for(ctx: Context, conn: AsyncConnection, service: str | None,
                    where: Where) -> str | None:
    svc = ctx.catalog.service(service)
    if svc and svc.owner_team:
        return svc.owner_team
    teams = [t for t in await conversations.subscriptions_of(conn, where.conversation_id)
             if t != "default"]
    return teams[0] if len(teams) == 1 else None
