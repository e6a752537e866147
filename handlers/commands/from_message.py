""""Declare incident" on a message's "…" menu (a message-extension action command): the form,
prefilled from the message, and its submission, which declares through the same use case as
`incident declare` and puts the source message's link on the timeline."""
from __future__ import annotations

import re
from typing import Any

from cards.declare import message_declare_form
from handlers.commands.declare import TITLE_LIMIT, check, declare, guess_service
from handlers.commands.parsing import clean_text
from handlers.commands.registry import Where
from handlers.commands.reply import Reply
from handlers.context import Context
from incidents.model import Actor

COMMAND_ID = "declareIncident"
GUESS_TITLE = 120


class SourceMessage:
    """The message the action was started on (Teams' `messagePayload`), read defensively."""

    def __init__(self, payload: Any):
        payload = payload if isinstance(payload, dict) else {}
        body = payload.get("body") if isinstance(payload.get("body"), dict) else {}
        sender = payload.get("from") if isinstance(payload.get("from"), dict) else {}
        who = sender.get("user") or sender.get("application") or {}
        self.text = clean_text(body.get("content") if isinstance(body.get("content"), str)
                               else "")
        self.author = who.get("displayName") if isinstance(who, dict) and \
            isinstance(who.get("displayName"), str) else None
        link = payload.get("linkToMessage")
        self.link = link if isinstance(link, str) and link.startswith("https://") else None

    def title(self) -> str:
        """The first sentence or line, cut short: the declarer edits it."""
        first = re.split(r"(?<=[.!?])\s|\n", self.text, maxsplit=1)[0].strip()
        return first if len(first) <= GUESS_TITLE else first[: GUESS_TITLE - 1].rstrip() + "…"


def message_form(ctx: Context, payload: Any, *, args: dict[str, Any] | None = None,
                 error: str | None = None) -> dict[str, Any]:
    source = SourceMessage(payload)
    args = args or {}
    return message_declare_form(
        list(ctx.catalog.services), ctx.catalog.levels.levels,
        title=args.get("title") or source.title(), quote=source.text, author=source.author,
        service=args.get("service") or guess_service(ctx, source.text),
        private=bool(args.get("private")), error=error)


def _args(data: Any) -> dict[str, Any]:
    data = data if isinstance(data, dict) else {}
    text = {k: v for k, v in data.items() if isinstance(v, str)}
    return {"title": text.get("title", "").strip()[:TITLE_LIMIT],
            "service": text.get("service") or None, "level": text.get("level") or None,
            "private": text.get("private", "").lower() == "true"}


async def declare_from_message(ctx: Context, actor: Actor, payload: Any, data: Any,
                               where: Where) -> tuple[Reply, dict[str, Any] | None]:
    """(the declaration's reply, None) once declared; (a refusal, the form again with the
    problem on it) when something must change first."""
    args = _args(data)
    if not args["title"]:
        problem = "A short title is required: what is broken?"
        return Reply.refuse(problem), message_form(ctx, payload, args=args, error=problem)
    _, _, problem = check(ctx, args)
    if problem:
        return Reply.refuse(problem), message_form(ctx, payload, args=args, error=problem)
    source = SourceMessage(payload)
    reply = await declare(ctx, actor, {**args, "source_link": source.link,
                                       "source_author": source.author}, where)
    return reply, None
