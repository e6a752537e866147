"""`incident oncall [team|service]` and `incident retry INC-n`."""
from __future__ import annotations

from typing import Any

from cards.oncall import oncall_card
from handlers.commands import Where, _with_incident, command
from handlers.context import Context
from handlers.oncall_sync import who_is_on_call
from handlers.replies import Reply
from incidents.model import Actor
from storage import outbox


@command("oncall")
async def who_is_on_call_now(ctx: Context, actor: Actor, args: dict[str, Any],
                             where: Where) -> Reply:
    catalog = ctx.catalog
    word = " ".join(args.get("words") or []).strip()
    services = list(catalog.services.values())
    heading = "On call now"
    if word:
        team = catalog.find_team(word)
        service = catalog.service(word)
        if service:
            services, heading = [service], f"On call now for {service.name}"
        elif team:
            services = [s for s in services if s.owner_team == team.key]
            heading = f"On call now for {team.name}"
        else:
            return Reply.refuse(f"`{word[:40]}` is neither a team nor a service. Teams: "
                                + ", ".join(catalog.teams) + ".")
    async with ctx.db.read() as conn:
        now = await who_is_on_call(ctx, conn)
    name = catalog.display_name
    rows = [(s.name, *(name(p) or "—" for p in now.services.get(s.name, (None, None))))
            for s in services]
    standby = [(role, name(who) or "—") for role, who in now.roles.items()]
    return Reply(card=oncall_card(heading, rows, standby, now.source))


@command("retry")
async def retry_follow_ups(ctx: Context, actor: Actor, args: dict[str, Any], where: Where) -> Reply:
    async def act(conn, incident):
        count = await outbox.retry_failed(conn, incident.id, ctx.now())
        if not count:
            return Reply(text=f"Nothing failed on {incident.ref}: no follow-up to retry.")
        return Reply(text=f"🔁 Retrying {count} failed follow-up{'s' if count != 1 else ''} "
                          f"of {incident.ref} now.")
    return await _with_incident(ctx, args["incident"], where, act)
