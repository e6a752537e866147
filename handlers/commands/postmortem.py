"""The postmortem's own commands besides the RCA form:

- `incident waive INC-n <reason>`: an incident commander or admin decides an incident needs no
  postmortem after all. The requirement is sticky (lowering the level does not drop it), so
  this is the only way out, and it is recorded: who, when and why, on the timeline, the card and
  the close summary.
- `incident postmortem INC-n new-link`: a responder replaces the postmortem page's secret link,
  e.g. after it was pasted somewhere public. The old address answers 404 from the commit on;
  the incident's cards are updated to carry the new one.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from handlers.commands.acting import act_on_incident, with_card
from handlers.commands.parsing import REASON_LIMIT, ParseError, reason, ref_and_text
from handlers.commands.registry import Where, command
from handlers.commands.reply import Reply
from handlers.context import Context
from handlers.effects.incident_cards import refresh_cards
from handlers.incident.change import change
from handlers.reads import links
from incidents import permissions
from incidents import postmortem as rules
from incidents.model import Actor, Incident, parse_ref, ref
from storage import postmortems as pm_store
from storage import timeline


def _parse_waive(rest: str, verb: str) -> dict[str, Any]:
    incident, why = ref_and_text(rest, verb, (
        "Usage: `incident waive INC-7 <reason>`: an incident commander or admin waives the "
        "postmortem, and the reason goes on the timeline and the close summary."))
    return {"incident": incident, "reason": reason(why)}


@command("waive", usage="incident waive ‹INC-n› ‹reason›",
         summary="Waive the postmortem (incident commanders, admins)", section="Follow-ups",
         parse=_parse_waive)
async def waive_postmortem(ctx: Context, actor: Actor, args: dict[str, Any],
                           where: Where) -> Reply:
    why = " ".join(str(args.get("reason") or "").split())[:REASON_LIMIT]

    async def act(conn, incident):
        if not permissions.is_commander_or_admin(actor, ctx.catalog, ctx.policy.admins):
            return Reply.refuse(permissions.waive_refusal(actor, incident, ctx.catalog,
                                                          ctx.policy.admins))
        if not why:
            return Reply.refuse(f"Say why: `incident waive {incident.ref} <reason>`.")
        refused = await _nothing_to_waive(ctx, conn, incident)
        if refused:
            return Reply.refuse(refused)
        entries = await timeline.entries(conn, incident.id)
        await pm_store.waive(ctx.db, conn, incident.id, by=actor.email or actor.label,
                             reason=why, now=ctx.now(),
                             timeline=rules.timeline_text(entries, ctx.catalog.timezone))
        updated = await change(ctx, conn, incident, {}, kind="postmortem_waived", actor=actor,
                               text=f"postmortem waived: {why}", data={"reason": why})
        return await with_card(ctx, conn, updated, f"✅ {incident.ref}'s postmortem is waived "
                                                   f"by {actor.label}: {why}")
    return await act_on_incident(ctx, args["incident"], where, act, actor=actor)


async def _nothing_to_waive(ctx: Context, conn: AsyncConnection,
                            incident: Incident) -> str | None:
    if incident.parent_id is not None:
        root = ref(incident.parent_id)
        return f"{incident.ref} is linked to {root}: its postmortem is {root}'s."
    if incident.status == "closed":
        return f"{incident.ref} is closed; there is no postmortem left to waive."
    if not rules.needed(incident, ctx.catalog.levels):
        return f"{incident.ref} needs no postmortem ({incident.level}): nothing to waive."
    postmortem = await pm_store.get(conn, incident.id)
    if rules.waived(postmortem):
        return (f"{incident.ref}'s postmortem is already "
                f"{rules.waiver_text(postmortem, ctx.catalog.display_name)}.")
    if postmortem and postmortem.get("status") == "complete":
        return f"{incident.ref}'s postmortem is complete: nothing to waive."
    return None


def _parse_postmortem(rest: str, verb: str) -> dict[str, Any]:
    parts = rest.split()
    action = parts[1].lower() if len(parts) == 2 else ""
    incident = parse_ref(parts[0]) if action in ("new-link", "link") else None
    if incident is None:
        raise ParseError("Usage: `incident postmortem INC-7 new-link`: a new link to INC-7's "
                         "postmortem page (the old link stops working); `incident postmortem "
                         "INC-7 link`: the link (a private incident's: your own).")
    return {"incident": incident, "action": action}


@command("postmortem", usage="incident postmortem ‹INC-n› new-link|link",
         summary="A new secret link to the postmortem page (`link`: the link; a private "
                 "incident's: your own)", section="Follow-ups", parse=_parse_postmortem)
async def renew_postmortem_link(ctx: Context, actor: Actor, args: dict[str, Any],
                                where: Where) -> Reply:
    if args.get("action") == "link":
        return await _postmortem_link(ctx, actor, args, where)

    async def act(conn, incident):
        if await pm_store.get(conn, incident.id) is None:
            return Reply.refuse(_no_postmortem(incident))
        await pm_store.new_link_token(conn, incident.id)
        # Who and when, never the link itself: the timeline is shown on the page and in search.
        await timeline.note(conn, incident.id, kind="postmortem", actor=actor, at=ctx.now(),
                            text=f"postmortem link rotated by {actor.label}")
        await refresh_cards(ctx, conn, incident.id)
        url = links.postmortem_page(ctx, await pm_store.get(conn, incident.id))
        # A Markdown link: Teams would read "_" in a bare token as emphasis.
        return Reply(text=f"🔗 New link to the [postmortem of {incident.ref}]({url}); the old "
                          "link no longer works. The incident's cards are being updated; links "
                          "sent earlier (e-mails, JIRA tasks, summaries) stop working too.")
    return await act_on_incident(ctx, args["incident"], where, act,
                                 action="postmortem_link", actor=actor)


async def _postmortem_link(ctx: Context, actor: Actor, args: dict[str, Any],
                           where: Where) -> Reply:
    """Reading the link is a look, not an act: anyone who may see the incident here. A private
    incident's link is the asker's own (act_on_incident has checked they are a member, in a
    personal chat or its private chat)."""
    async def act(conn, incident):
        postmortem = await pm_store.get(conn, incident.id)
        if postmortem is None:
            return Reply.refuse(_no_postmortem(incident))
        if incident.private:
            if not actor.email:
                return Reply.refuse("Firebell does not know your e-mail yet, so it cannot make "
                                    "your own link; try again in a minute.")
            url = links.member_postmortem_page(ctx, postmortem, actor.email)
            return Reply(text=f"🔗 Your own link to the [postmortem of {incident.ref}]({url}): "
                              "it opens for you while you are a member of this private "
                              "incident. Do not forward it.")
        url = links.postmortem_page(ctx, postmortem)
        return Reply(text=f"🔗 The [postmortem of {incident.ref}]({url}).")
    return await act_on_incident(ctx, args["incident"], Where(where.conversation_id, where.kind),
                                 act, actor=actor)


def _no_postmortem(incident: Incident) -> str:
    if incident.parent_id is not None:
        root = ref(incident.parent_id)
        return (f"{incident.ref} is linked to {root}: its postmortem is {root}'s "
                f"(`incident postmortem {root} new-link`).")
    return (f"{incident.ref} has no postmortem yet, so there is no link to renew; "
            f"`incident rca {incident.ref}` starts one.")
