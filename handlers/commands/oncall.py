"""`incident oncall [team|service]`: who is on call and on standby now. Anyone may look."""
from __future__ import annotations

from typing import Any

from cards.oncall import oncall_card
from handlers.commands.parsing import optional_words
from handlers.commands.registry import Where, command
from handlers.commands.reply import Reply
from handlers.context import Context
from handlers.reads.oncall import who_is_on_call
from incidents.model import Actor


@command("oncall", usage="incident oncall [team|service]",
         summary="Who is on call and on standby now", section="Look", parse=optional_words)
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
