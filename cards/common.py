"""Building blocks for Adaptive Cards (schema 1.5) as Teams renders them.

Anything a person or an alert wrote (titles, notes, RCA text) goes into a TextRun, which Adaptive
Cards never treat as Markdown, so `**x**`, `[a](b)` or `<b>` in a title shows as typed. Our own
wording goes into TextBlocks (Markdown allowed, DATE/TIME functions work there).
"""
from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Iterable

SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
VERSION = "1.5"
MAX_CARD_BYTES = 28 * 1024
TITLE_CHARS = 200

STATUS_STYLE = {"open": "attention", "resolved": "good", "closed": "default"}
LEVEL_ICON = {"service-down": "🔴", "high-error-rate": "🟠", "high-latency": "🟡", "minor": "🔵"}


def card(body: list[dict], actions: list[dict] | None = None, *,
         mentions: list[dict] | None = None) -> dict[str, Any]:
    c: dict[str, Any] = {"type": "AdaptiveCard", "$schema": SCHEMA, "version": VERSION,
                         "body": body, "msteams": {"width": "Full"}}
    if actions:
        c["actions"] = actions
    if mentions:
        c["msteams"]["entities"] = mentions
    return c


def size(payload: dict[str, Any]) -> int:
    return len(json.dumps(payload, ensure_ascii=False).encode("utf-8"))


def truncate(text: str | None, limit: int) -> str:
    text = (text or "").strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def plain(text: str | None, *, limit: int = 2000, weight: str | None = None,
          size_: str | None = None, subtle: bool = False, color: str | None = None) -> dict:
    """User-supplied text, shown exactly as typed (TextRun: no Markdown, no mentions)."""
    run: dict[str, Any] = {"type": "TextRun", "text": truncate(text, limit) or "—"}
    if weight:
        run["weight"] = weight
    if size_:
        run["size"] = size_
    if subtle:
        run["isSubtle"] = True
    if color:
        run["color"] = color
    return {"type": "RichTextBlock", "inlines": [run]}


def labelled(label: str, text: str | None, *, limit: int = 2000) -> dict:
    """"Label: value" on one line, value as plain text."""
    return {"type": "RichTextBlock", "inlines": [
        {"type": "TextRun", "text": f"{label}: ", "weight": "Bolder"},
        {"type": "TextRun", "text": truncate(text, limit) or "—"}]}


def block(text: str, **props: Any) -> dict:
    """Firebell's own wording (Markdown subset, DATE/TIME functions)."""
    return {"type": "TextBlock", "text": text, "wrap": True, **props}


def when(at: datetime | None) -> str:
    """Each reader sees the time in their own zone: Adaptive Cards' DATE/TIME functions."""
    if at is None:
        return "—"
    iso = at.strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"{{{{DATE({iso}, SHORT)}}}} {{{{TIME({iso})}}}}"


def day(at: datetime) -> str:
    """A date in the reader's zone (DATE function), e.g. a due date."""
    return f"{{{{DATE({at.strftime('%Y-%m-%dT%H:%M:%SZ')}, SHORT)}}}}"


def facts(pairs: Iterable[tuple[str, str | None]]) -> dict:
    """Firebell's own values only: FactSet values are Markdown."""
    return {"type": "FactSet", "facts": [{"title": k, "value": v} for k, v in pairs if v]}


def link(title: str, url: str | None) -> dict | None:
    if not url or not url.startswith(("https://", "http://")):
        return None
    return {"type": "Action.OpenUrl", "title": title, "url": url}


def execute(title: str, verb: str, data: dict[str, Any], *, style: str | None = None,
            action_id: str | None = None) -> dict[str, Any]:
    """Action.Execute (Universal Actions) with an Action.Submit fallback for older clients:
    the fallback carries the verb in its data so the message path can route it."""
    action: dict[str, Any] = {"type": "Action.Execute", "title": title, "verb": verb,
                              "data": data,
                              "fallback": {"type": "Action.Submit", "title": title,
                                           "data": {**data, "verb": verb}}}
    if style:
        action["style"] = style
    if action_id:
        action["id"] = action_id
    return action


def mention(email: str, name: str) -> tuple[str, dict]:
    """Text to put in a TextBlock and the msteams entity that makes it an @mention."""
    text = f"<at>{name}</at>"
    return text, {"type": "mention", "text": text, "mentioned": {"id": email, "name": name}}
