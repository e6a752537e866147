"""Card buttons (Action.Execute verbs, or Action.Submit data with a `verb`) -> the same commands
as typed, with the same rights; the registry says which command each button runs. The answer
is always a card: the refreshed incident card, or the form again with what was wrong."""
from __future__ import annotations

from typing import Any

from cards.notice import notice_card
from handlers.commands.registry import CARD_VERBS, Where, run_command
from handlers.commands.reply import Reply
from handlers.context import Context
from incidents.model import Actor


async def handle_card_action(ctx: Context, actor: Actor, verb: str, data: dict[str, Any],
                             where: Where) -> Reply:
    found = CARD_VERBS.get(verb)
    if found is None:
        return _refusal(f"This button ({verb[:40]!r}) is not one Firebell knows. "
                        "The card may be from an older version: type `incident help`.")
    command, to_args = found
    args = to_args(dict(data))
    if args is None:
        return _refusal("This card does not say which incident it is about.")
    reply = await run_command(ctx, actor, command, args, where)
    if not reply.ok and reply.card is None:
        # Refused: a message to the person who clicked; the card stays as it was. (A form
        # comes back instead, with what was wrong in it.)
        return Reply.refuse(reply.text or "Not done.")
    if reply.card is None:
        card = notice_card(reply.text or "Done.", ok=reply.ok)
        return Reply(text=reply.text, card=card, incident_id=reply.incident_id, ok=reply.ok)
    return reply


def _refusal(text: str) -> Reply:
    return Reply.refuse(text, card=notice_card(text, ok=False))
