"""`incident postmortem INC-n new-link`: a responder replaces the postmortem page's secret link,
e.g. after it was pasted somewhere public. The old address answers 404 from the commit on; the
incident's cards are updated to carry the new one."""
from __future__ import annotations

from typing import Any

from handlers.card_queue import refresh_cards
from handlers.changes import note
from handlers.commands import Where, _with_incident, command
from handlers.context import Context
from handlers.postmortems import page_url
from handlers.replies import Reply
from incidents.model import Actor, Incident
from storage import postmortems as pm_store


@command("postmortem")
async def renew_postmortem_link(ctx: Context, actor: Actor, args: dict[str, Any],
                                where: Where) -> Reply:
    async def act(conn, incident):
        if await pm_store.get(conn, incident.id) is None:
            return Reply.refuse(_no_postmortem(incident))
        await pm_store.new_link_token(conn, incident.id)
        # Who and when, never the link itself: the timeline is shown on the page and in search.
        await note(conn, incident.id, kind="postmortem", actor=actor, at=ctx.now(),
                   text=f"postmortem link rotated by {actor.label}")
        await refresh_cards(ctx, conn, incident.id)
        url = page_url(ctx, await pm_store.get(conn, incident.id))
        # A Markdown link: Teams would read "_" in a bare token as emphasis.
        return Reply(text=f"🔗 New link to the [postmortem of {incident.ref}]({url}); the old "
                          "link no longer works. The incident's cards are being updated; links "
                          "sent earlier (e-mails, JIRA tasks, summaries) stop working too.")
    return await _with_incident(ctx, args["incident"], where, act,
                                action="postmortem_link", actor=actor)


def _no_postmortem(incident: Incident) -> str:
    if incident.parent_id is not None:
        root = f"INC-{incident.parent_id}"
        return (f"{incident.ref} is linked to {root}: its postmortem is {root}'s "
                f"(`incident postmortem {root} new-link`).")
    return (f"{incident.ref} has no postmortem yet, so there is no link to renew; "
            f"`incident rca {incident.ref}` starts one.")
