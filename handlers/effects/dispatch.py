"""The worker's one door into the effects: importing this module registers every outside
effect, and the functions below run a claimed job and say how it shows on its incident's card.
(Local effects, which make no outside call, are registered by the write path that owns them:
handlers/incident/correlation.py.)"""
from handlers.effects import (channel_messages, email, incident_cards, incident_email,  # noqa: F401
                              jira_tasks, meeting_bridge, pagerduty_status, roster, war_room)
from handlers.effects import pagerduty_page, private_chat  # noqa: F401
from handlers.effects.registry import (Clients, Park, Retry, give_up, local_kinds,  # noqa: F401
                                       outside_kinds, run, run_local, shown_as, system_of)


async def show_on_card(ctx, conn, job) -> None:
    """A follow-up that failed (or works again) shows on its incident's card; a failing card
    post or update cannot show on the card itself."""
    if job.incident_id and shown_as(job.kind) and job.kind not in incident_cards.KINDS:
        await incident_cards.refresh_cards(ctx, conn, job.incident_id)
