"""`incident declare <title> [service=…] [level=…]`: an engineer declares an incident (no title:
the declare form). The card answers the command and becomes the incident's live card in this
conversation; correlation then decides, as for any incident, whether it is a root."""
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


def _parse(rest: str, verb: str) -> dict[str, Any]:
    options = {k.lower(): v.strip("\"'") for k, v in _OPTION.findall(rest)}
    title = _OPTION.sub(" ", rest).strip()
    if len(title) > TITLE_LIMIT:
        raise ParseError(f"The title is {len(title)} characters; keep it under {TITLE_LIMIT}.")
    return {"title": title, **options}


def _from_form(data: dict[str, Any]) -> dict[str, Any]:
    return {**data, "title": str(data.get("title") or "").strip()[:TITLE_LIMIT]}


@command("declare", usage="incident declare ‹title› [service=…] [level=…]",
         summary="Declare an incident (no title: a form)", parse=_parse, card_reply=True,
         card_verbs={"declare": _from_form, "declare_form": lambda data: {"title": ""}})
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
            "duplicate_window_until": now + ctx.policy.duplicate_window,
            "last_event_at": now}, now)
        await note(conn, incident.id, kind="declared", actor=actor, at=now,
                   text=f"declared in Teams on {service or 'an unknown service'}")
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
