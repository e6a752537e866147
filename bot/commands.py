"""Command parsing: the text of a Teams message -> a Command, or a ParseError saying what to type.

Accepted with or without the leading slash, with or without the @mention, with or without the
word "incident": `/incident ack INC-7`, `@Firebell incident ack 7`, `ack inc-7`.
"""
from __future__ import annotations

import html
import re
import shlex
from dataclasses import dataclass, field
from typing import Any

from incidents.model import parse_ref

MAX_TEXT = 4000
TITLE_LIMIT = 250
NOTE_LIMIT = 2000

_AT = re.compile(r"<at[^>]*>(.*?)</at>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"</?[a-zA-Z][^>]*>")
_OPTION = re.compile(r"(?:^|\s)(service|level|team)=(\"[^\"]*\"|'[^']*'|\S+)", re.IGNORECASE)

VERBS = ("declare", "ack", "resolve", "close", "level", "assign", "note", "list", "show",
         "subscribe", "unsubscribe", "link", "unlink", "rca", "waive", "retry", "oncall",
         "report", "stats", "search", "help", "postmortem")
_ALIASES = {"acknowledge": "ack", "lvl": "level", "ls": "list", "status": "show",
            "?": "help", "commands": "help", "unlinked": "unlink"}


class ParseError(ValueError):
    """`message` says what was wrong and what to type instead."""


@dataclass(frozen=True)
class Command:
    verb: str
    args: dict[str, Any] = field(default_factory=dict)


def clean_text(text: str | None) -> str:
    """Teams message text -> plain words: mentions become their names, tags and entities go."""
    text = (text or "")[:MAX_TEXT * 2]
    text = _AT.sub(lambda m: "@" + m.group(1).strip(), text)
    text = _TAG.sub(" ", text)
    text = html.unescape(text).replace("\u00a0", " ")
    return re.sub(r"\s+", " ", text).strip()


def parse_command(text: str | None) -> Command:
    words = clean_text(text)
    if len(words) > MAX_TEXT:
        raise ParseError(f"That message is too long ({len(words)} characters); "
                         f"keep commands under {MAX_TEXT}.")
    words = re.sub(r"^(?:@firebell\s+)?/?(?:incident\b\s*)?", "", words, flags=re.IGNORECASE)
    if not words:
        return Command("help")
    head, _, rest = words.partition(" ")
    verb = _ALIASES.get(head.lower().lstrip("/"), head.lower().lstrip("/"))
    if verb not in VERBS:
        raise ParseError(f"I don't know the command `{head[:40]}`. Type `incident help` "
                         "to see what I can do.")
    return Command(verb, _PARSERS.get(verb, _no_args)(rest.strip(), verb))


# -- per-verb argument parsers ----------------------------------------------------------------

def _declare(rest: str, verb: str) -> dict[str, Any]:
    options = {k.lower(): v.strip("\"'") for k, v in _OPTION.findall(rest)}
    title = _OPTION.sub(" ", rest).strip()
    if len(title) > TITLE_LIMIT:
        raise ParseError(f"The title is {len(title)} characters; keep it under {TITLE_LIMIT}.")
    return {"title": title, **options}


def _ref_only(rest: str, verb: str) -> dict[str, Any]:
    ref = _one_ref(rest.split(" ")[0] if rest else "", verb)
    return {"incident": ref}


_BECAUSE = re.compile(r"\s+because\b", re.IGNORECASE)
REASON_LIMIT = 500


def _level(rest: str, verb: str) -> dict[str, Any]:
    usage = ("Usage: `incident level INC-7 service-down`, or with a reason (needed to lower a "
             "resolved incident or one whose postmortem has started): `incident level INC-7 "
             "minor because false alarm, rolled back`.")
    parts = rest.split(" ", 1)
    if len(parts) < 2 or not parts[1].strip():
        raise ParseError(usage)
    pieces = _BECAUSE.split(" " + parts[1], maxsplit=1)  # "minor because false alarm"
    level = pieces[0].strip()
    reason = pieces[1].strip() if len(pieces) > 1 else None
    if not level or reason == "":
        raise ParseError(usage)
    args = {"incident": _one_ref(parts[0], verb), "level": level}
    if reason:
        args["reason"] = _reason(reason)
    return args


def _waive(rest: str, verb: str) -> dict[str, Any]:
    parts = rest.split(" ", 1)
    if len(parts) < 2 or not parts[1].strip():
        raise ParseError("Usage: `incident waive INC-7 <reason>`: an incident commander or "
                         "admin waives the postmortem, and the reason goes on the timeline "
                         "and the close summary.")
    return {"incident": _one_ref(parts[0], verb), "reason": _reason(parts[1])}


def _reason(text: str) -> str:
    text = " ".join(text.split())
    if len(text) > REASON_LIMIT:
        raise ParseError(f"That reason is {len(text)} characters; keep it under "
                         f"{REASON_LIMIT}.")
    return text


def _assign(rest: str, verb: str) -> dict[str, Any]:
    parts = rest.split(" ", 1)
    who = parts[1].strip().lstrip("@") if len(parts) > 1 else ""
    if not who:
        raise ParseError("Usage: `incident assign INC-7 @person` (the incident commander).")
    return {"incident": _one_ref(parts[0], verb), "person": who[:200]}


def _note(rest: str, verb: str) -> dict[str, Any]:
    parts = rest.split(" ", 1)
    text = parts[1].strip() if len(parts) > 1 else ""
    if not text:
        raise ParseError("Usage: `incident note INC-7 what you found`.")
    if len(text) > NOTE_LIMIT:
        raise ParseError(f"That note is {len(text)} characters; keep notes under {NOTE_LIMIT}.")
    return {"incident": _one_ref(parts[0], verb), "text": text}


def _list(rest: str, verb: str) -> dict[str, Any]:
    scope, team = "open", None
    for word in _words(rest):
        if word.lower() in ("open", "all", "resolved", "closed"):
            scope = word.lower()
        else:
            team = word if team is None else f"{team} {word}"
    return {"scope": scope, "team": team}


def _team_arg(rest: str, verb: str) -> dict[str, Any]:
    if not rest:
        raise ParseError(f"Usage: `incident {verb} <team>` or `incident {verb} default`.")
    return {"team": rest.strip()[:100]}


def _link(rest: str, verb: str) -> dict[str, Any]:
    parts = rest.split()
    if len(parts) != 2:
        raise ParseError("Usage: `incident link INC-child INC-parent`.")
    return {"incident": _one_ref(parts[0], verb), "parent": _one_ref(parts[1], verb)}


def _optional_words(rest: str, verb: str) -> dict[str, Any]:
    return {"words": _words(rest)}


def _search(rest: str, verb: str) -> dict[str, Any]:
    if not rest.strip():
        raise ParseError("Usage: `incident search <words>`, e.g. `incident search payment 503`.")
    return {"query": rest.strip()[:200]}


def _postmortem(rest: str, verb: str) -> dict[str, Any]:
    parts = rest.split()
    ref = parse_ref(parts[0]) if len(parts) == 2 and parts[1].lower() == "new-link" else None
    if ref is None:
        raise ParseError("Usage: `incident postmortem INC-7 new-link`: a new link to INC-7's "
                         "postmortem page (the old link stops working).")
    return {"incident": ref, "action": "new-link"}


def _no_args(rest: str, verb: str) -> dict[str, Any]:
    return {}


_PARSERS = {
    "declare": _declare, "ack": _ref_only, "resolve": _ref_only, "close": _ref_only,
    "show": _ref_only, "unlink": _ref_only, "rca": _ref_only, "retry": _ref_only,
    "level": _level, "waive": _waive, "assign": _assign, "note": _note, "list": _list,
    "subscribe": _team_arg, "unsubscribe": _team_arg, "link": _link,
    "oncall": _optional_words, "report": _optional_words, "stats": _optional_words,
    "search": _search, "postmortem": _postmortem,
}


def _one_ref(word: str, verb: str) -> int:
    ref = parse_ref(word)
    if ref is None:
        example = f"incident {verb} INC-7"
        raise ParseError(f"`{word[:40] or '(nothing)'}` is not an incident id. "
                         f"Use INC-7, inc-7 or 7, e.g. `{example}`.")
    return ref


def _words(rest: str) -> list[str]:
    try:
        return shlex.split(rest)[:10]
    except ValueError:
        return rest.split()[:10]
