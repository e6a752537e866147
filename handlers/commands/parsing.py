"""The text of a Teams message -> a command and its arguments, or a ParseError saying what to
type instead. Accepted with or without the leading slash, with or without the @mention, with or
without the word "incident": `/incident ack INC-7`, `@Firebell incident ack 7`, `ack inc-7`.

The building blocks every command's own parser uses are here; each command names its parser
in the registry."""
from __future__ import annotations

import difflib
import html
import re
import shlex
from typing import Any, NamedTuple

from handlers.commands.registry import ALIASES, COMMANDS, find
from incidents.model import parse_ref

MAX_TEXT = 4000
REASON_LIMIT = 500

_AT = re.compile(r"<at[^>]*>(.*?)</at>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"</?[a-zA-Z][^>]*>")


class ParseError(ValueError):
    """`message` says what was wrong and what to type instead."""


def clean_text(text: str | None) -> str:
    """Teams message text -> plain words: mentions become their names, tags and entities go."""
    text = (text or "")[:MAX_TEXT * 2]
    text = _AT.sub(lambda m: "@" + m.group(1).strip(), text)
    text = _TAG.sub(" ", text)
    text = html.unescape(text).replace("\u00a0", " ")
    # The help card keeps commands whole with a non-breaking hyphen and word joiners: a
    # command copied from it still reads as typed.
    text = text.replace("\u2011", "-").replace("\u2060", "")
    return re.sub(r"\s+", " ", text).strip()


class Typed(NamedTuple):
    """A typed command, parsed."""
    verb: str
    args: dict[str, Any]


def parse_command(text: str | None) -> Typed:
    words = clean_text(text)
    if len(words) > MAX_TEXT:
        raise ParseError(f"That message is too long ({len(words)} characters); "
                         f"keep commands under {MAX_TEXT}.")
    words = re.sub(r"^(?:@firebell\s+)?/?(?:incident\b\s*)?", "", words, flags=re.IGNORECASE)
    if not words:
        return Typed("help", {})
    head, _, rest = words.partition(" ")
    found = find(head.lstrip("/"))
    if found is None:
        raise ParseError(_unknown(head.lstrip("/")))
    try:
        return Typed(found.verb, found.parse(rest.strip(), found.verb))
    except ParseError as exc:
        raise ParseError(with_usage(str(exc), found.usage)) from None


def with_usage(message: str, usage: str) -> str:
    """Every error about a command's words ends with its usage line (once)."""
    plain = usage.replace("‹", "").replace("›", "")
    if "Usage:" in message or usage in message or plain in message:
        return message
    return f"{message.rstrip()}\nUsage: `{usage}`"


def _unknown(word: str) -> str:
    """"did you mean `declare`?" for a typo of a verb or an alias (difflib's ratio)."""
    names = [c.verb for c in COMMANDS.values()] + list(ALIASES)
    close = difflib.get_close_matches(word.lower(), names, n=1, cutoff=0.6)
    guess = f" Did you mean `{find(close[0]).verb}`?" if close else ""
    return (f"I don't know the command `{word[:40]}`.{guess} Type `incident help` to see what "
            "I can do.")


# -- building blocks --------------------------------------------------------------------------

def one_ref(word: str, verb: str) -> int:
    ref = parse_ref(word)
    if ref is None:
        raise ParseError(f"`{word[:40] or '(nothing)'}` is not an incident id. "
                         f"Use INC-7, inc-7 or 7, e.g. `incident {verb} INC-7`.")
    return ref


def ref_only(rest: str, verb: str) -> dict[str, Any]:
    return {"incident": one_ref(rest.split(" ")[0] if rest else "", verb)}


def ref_and_text(rest: str, verb: str, usage: str) -> tuple[int, str]:
    """`INC-7 some words` -> (7, "some words"); ParseError(usage) when the words are missing."""
    parts = rest.split(" ", 1)
    text = parts[1].strip() if len(parts) > 1 else ""
    if not text:
        raise ParseError(usage)
    return one_ref(parts[0], verb), text


def reason(text: str) -> str:
    text = " ".join(text.split())
    if len(text) > REASON_LIMIT:
        raise ParseError(f"That reason is {len(text)} characters; keep it under "
                         f"{REASON_LIMIT}.")
    return text


def words(rest: str) -> list[str]:
    try:
        return shlex.split(rest)[:10]
    except ValueError:
        return rest.split()[:10]


def optional_words(rest: str, verb: str) -> dict[str, Any]:
    return {"words": words(rest)}
