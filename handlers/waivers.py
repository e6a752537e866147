"""`incident waive INC-n <reason>`: an incident commander or admin decides an incident needs no
postmortem after all. The requirement is sticky (lowering the level does not drop it), so this
is the only way out, and it is recorded: who, when and why, on the timeline, the card and the
close summary."""
from __future__ import annotations

from typing import Any

from handlers.changes import change
from handlers.commands import REASON_LIMIT, Where, _done, _with_incident, command
from handlers.context import Context
from handlers.replies import Reply
from incidents import permissions
from incidents import postmortem as rules
from incidents.model import Actor
from storage import incidents as store
from storage import postmortems as pm_store


@command("waive")
async def waive_postmortem(ctx: Context, actor: Actor, args: dict[str, Any],
                           where: Where) -> Reply:
    reason = " ".join(str(args.get("reason") or "").split())[:REASON_LIMIT]

    async def act(conn, incident):
        if not permissions.is_commander_or_admin(actor, ctx.catalog, ctx.policy.admins):
            return Reply.refuse(permissions.waive_refusal(actor, incident, ctx.catalog,
                                                          ctx.policy.admins))
        if not reason:
            return Reply.refuse(f"Say why: `incident waive {incident.ref} <reason>`.")
        refused = await _nothing_to_waive(ctx, conn, incident)
        if refused:
            return Reply.refuse(refused)
        entries = await store.timeline(conn, incident.id)
        await pm_store.waive(ctx.db, conn, incident.id, by=actor.email or actor.label,
                             reason=reason, timeline=rules.timeline_text(entries), now=ctx.now())
        updated = await change(ctx, conn, incident, {}, kind="postmortem_waived", actor=actor,
                               text=f"postmortem waived: {reason}", data={"reason": reason})
        return await _done(ctx, conn, updated, f"✅ {incident.ref}'s postmortem is waived "
                                               f"by {actor.label}: {reason}")
    return await _with_incident(ctx, args["incident"], where, act)


async def _nothing_to_waive(ctx: Context, conn, incident) -> str | None:
    if incident.parent_id is not None:
        return (f"{incident.ref} is linked to INC-{incident.parent_id}: its postmortem is "
                f"INC-{incident.parent_id}'s.")
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
