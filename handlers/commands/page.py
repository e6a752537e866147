"""`incident page <team|service|@person> [INC-n] [message]`: page someone through PagerDuty from
Teams, for the incident's responders (or, without an incident, those who respond for the
target). The PagerDuty incident is made by the outbox (handlers/effects/pagerduty_page.py),
exactly once; the incident's card shows who was paged and whether they acknowledged."""
from __future__ import annotations

from typing import Any

from handlers.commands.acting import act_on_incident, first_time
from handlers.commands.parsing import ParseError
from handlers.commands.registry import Where, command
from handlers.commands.reply import Reply
from handlers.context import Context
from handlers.incident.paging import request_page
from incidents import paging as rules
from incidents import permissions
from incidents.model import Actor
from incidents.paging import NoPageTarget

USAGE = ("Usage: `incident page <team|service|@person> [INC-n] [message]`, e.g. `incident page "
         "payments INC-7 checkout can't reach the gateway` (the id starts with INC- or #).")


def _parse(rest: str, verb: str) -> dict[str, Any]:
    words, incident, message = rules.split_words(rest)
    if not words:
        raise ParseError(USAGE)
    if len(message) > rules.MESSAGE_LIMIT:
        raise ParseError(f"That message is {len(message)} characters; keep it under "
                         f"{rules.MESSAGE_LIMIT}.")
    return {"words": words, "incident": incident, "message": message}


@command("page", usage="incident page ‹team|service|@person› [INC-n] [message]",
         summary="Page a team, a service's on-call or someone through PagerDuty (responders)",
         parse=_parse)
async def page(ctx: Context, actor: Actor, args: dict[str, Any], where: Where) -> Reply:
    if not ctx.configured.pagerduty:
        return Reply.refuse("Paging goes through PagerDuty, which is not connected: set "
                            "PAGERDUTY_API_TOKEN and PAGERDUTY_FROM_EMAIL (the e-mail of a "
                            "PagerDuty user).")
    catalog = ctx.catalog
    try:
        named, rest = rules.name_target(catalog, args["words"],
                                        whole=args["incident"] is not None)
    except NoPageTarget as exc:
        return Reply.refuse(f"{exc} {USAGE}")
    message = args["message"] or " ".join(rest)
    if len(message) > rules.MESSAGE_LIMIT:
        return Reply.refuse(f"That message is {len(message)} characters; keep it under "
                            f"{rules.MESSAGE_LIMIT}.")
    if args["incident"] is None:
        return await _page_without_incident(ctx, actor, named, message, where)

    async def act(conn, incident):
        if incident.status == "closed":
            return Reply.refuse(f"{incident.ref} is closed: nobody needs paging for it. Page "
                                "without an id, or for the incident that is still going on.")
        try:
            target = rules.page_target(catalog, named, incident.service)
        except NoPageTarget as exc:
            return Reply.refuse(str(exc))
        await request_page(ctx, conn, actor, target, incident, message)
        return Reply(text=f"📟 Paging {target.label} in PagerDuty for {incident.ref}. Its card "
                          "shows when they acknowledge.")
    return await act_on_incident(ctx, args["incident"], where, act, action="page", actor=actor)


async def _page_without_incident(ctx: Context, actor: Actor, named: rules.Named, message: str,
                                 where: Where) -> Reply:
    refusal = permissions.page_refusal(actor, named.label,
                                       rules.responders_of_target(ctx.catalog, named),
                                       ctx.catalog, ctx.policy.admins)
    if refusal:
        return Reply.refuse(refusal)
    try:
        target = rules.page_target(ctx.catalog, named, None)
    except NoPageTarget as exc:
        return Reply.refuse(str(exc))
    async with ctx.db.write() as conn:
        if not await first_time(ctx, conn, where):
            return Reply(repeated=True)
        await request_page(ctx, conn, actor, target, None, message)
    ctx.wake_worker()
    return Reply(text=f"📟 Paging {target.label} in PagerDuty. No incident was named, so its "
                      "PagerDuty incident will show up as an incident of its own (`incident page "
                      "<whom> INC-n` pages for one that exists).")
