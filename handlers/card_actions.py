"""Card buttons (Action.Execute verbs, or Action.Submit data with a `verb`) -> the same use
cases as the typed commands. The answer is always a card: the refreshed incident card, or the
form again with what was wrong."""
from __future__ import annotations

from typing import Any

from cards.notice import notice_card
from handlers.commands import Where, run_command
from handlers.context import Context
from handlers.replies import Reply
from incidents.model import Actor, parse_ref

# card verb -> command verb
_VERBS = {"ack": "ack", "resolve": "resolve", "close": "close", "set_level": "level",
          "declare": "declare", "declare_form": "declare", "unlink": "unlink", "rca": "rca",
          "rca_save": "rca_save", "retry": "retry"}
_NEEDS_INCIDENT = {"ack", "resolve", "close", "level", "unlink", "rca", "rca_save", "retry"}


async def handle_card_action(ctx: Context, actor: Actor, verb: str, data: dict[str, Any],
                             where: Where) -> Reply:
    command = _VERBS.get(verb)
    if command is None:
        return _refusal(f"This button ({verb[:40]!r}) is not one Firebell knows. "
                        "The card may be from an older version: type `incident help`.")
    args = dict(data)
    if command in _NEEDS_INCIDENT:
        incident_id = parse_ref(str(data.get("incident", "")))
        if incident_id is None:
            return _refusal("This card does not say which incident it is about.")
        args["incident"] = incident_id
    if command == "declare":
        args["title"] = str(data.get("title") or "").strip()[:250] if verb == "declare" else ""
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
