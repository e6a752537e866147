"""`incident retry INC-n` (and the card's Retry button): follow-ups parked as failed (JIRA, war
room, e-mail, PagerDuty…) run again now. Anyone may: it re-runs what was already decided and
changes nothing about what the incident means."""
from __future__ import annotations

from typing import Any

from handlers.commands.acting import act_on_incident
from handlers.commands.parsing import ref_only
from handlers.commands.registry import Where, command, incident_from_card
from handlers.commands.reply import Reply
from handlers.context import Context
from handlers.reads.status import not_configured
from incidents.model import Actor
from storage import outbox


@command("retry", usage="incident retry ‹INC-n›",
         summary="Retry follow-ups that failed (JIRA, war room, e-mail…)", section="Follow-ups",
         parse=ref_only, card_verbs={"retry": incident_from_card})
async def retry_follow_ups(ctx: Context, actor: Actor, args: dict[str, Any],
                           where: Where) -> Reply:
    async def act(conn, incident):
        count = await outbox.retry_failed(conn, incident.id, ctx.now())
        # What is skipped for want of settings is said here (and in `incident status` and the
        # start-up log), not on every incident card: a retry cannot fix it.
        unset = "".join(f"\n\n⚙️ {sentence}" for sentence in not_configured(ctx))
        if not count:
            return Reply(text=f"Nothing failed on {incident.ref}: no follow-up to retry."
                              + unset)
        return Reply(text=f"🔁 Retrying {count} failed follow-up{'s' if count != 1 else ''} "
                          f"of {incident.ref} now." + unset)
    return await act_on_incident(ctx, args["incident"], where, act, actor=actor)
