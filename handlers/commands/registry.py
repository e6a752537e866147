"""The one command registry: every `incident …` command is one decorated function, registered
with all the rest of Firebell needs to know about it: its verb and aliases, how its words are
parsed, its usage line and help text, and the card buttons that run it. The help card, the
parser, the card-button router and the bot read this table; nothing else lists commands.

A command loads, asks incidents/ what to do, writes (one transaction; outbox jobs for the rest)
and returns the Reply to show. Card buttons call the same functions as the typed commands, with
the same rights."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from handlers.commands.reply import Reply
from handlers.context import Context
from incidents.model import Actor, parse_ref

# Sections of the help card, in the order an on-call engineer reaches for them.
SECTIONS = ("Declare and act", "Look", "Follow-ups", "Set-up")


@dataclass(frozen=True)
class Where:
    """The conversation a command came from."""
    conversation_id: str
    kind: str                      # channel | personal | groupChat
    event_key: str | None = None   # natural id of the activity: a redelivery changes nothing
    typeahead: bool = False        # the client is Teams: its cards may ask the bot for choices


CommandFn = Callable[[Context, Actor, dict[str, Any], Where], Awaitable[Reply]]
Parser = Callable[[str, str], dict[str, Any]]                # (rest of the text, verb) -> args
CardArgs = Callable[[dict[str, Any]], dict[str, Any] | None]  # card data -> args (None: bad)


def no_args(rest: str, verb: str) -> dict[str, Any]:
    return {}


def incident_from_card(data: dict[str, Any]) -> dict[str, Any] | None:
    """A button on an incident's card carries the incident (`INC-7`) in its data."""
    incident_id = parse_ref(str(data.get("incident", "")))
    return None if incident_id is None else {**data, "incident": incident_id}


@dataclass(frozen=True)
class Command:
    verb: str
    run: CommandFn
    usage: str                               # "incident ack ‹INC-n›"
    summary: str                             # one line for the help card
    section: str = "Declare and act"
    parse: Parser = no_args
    aliases: tuple[str, ...] = ()
    # Card buttons (Action.Execute verbs) that run this command, and how their data becomes
    # the command's arguments.
    card_verbs: dict[str, CardArgs] = field(default_factory=dict)
    card_reply: bool = False                 # typed, it answers with a card (else with text)
    in_help: bool = True


COMMANDS: dict[str, Command] = {}
ALIASES: dict[str, str] = {}
CARD_VERBS: dict[str, tuple[str, CardArgs]] = {}


def command(verb: str, *, usage: str, summary: str, section: str = SECTIONS[0],
            parse: Parser = no_args, aliases: tuple[str, ...] = (),
            card_verbs: dict[str, CardArgs] | None = None, card_reply: bool = False,
            in_help: bool = True) -> Callable[[CommandFn], CommandFn]:
    assert section in SECTIONS, section

    def register(fn: CommandFn) -> CommandFn:
        if verb in COMMANDS or verb in ALIASES:
            raise ValueError(f"command {verb!r} registered twice")
        spec = Command(verb, fn, usage, summary, section, parse, aliases, card_verbs or {},
                       card_reply, in_help)
        COMMANDS[verb] = spec
        ALIASES.update({alias: verb for alias in aliases})
        for card_verb, to_args in spec.card_verbs.items():
            CARD_VERBS[card_verb] = (verb, to_args)
        return fn
    return register


def find(word: str) -> Command | None:
    word = word.lower()
    return COMMANDS.get(ALIASES.get(word, word))


async def run_command(ctx: Context, actor: Actor, verb: str, args: dict[str, Any],
                      where: Where) -> Reply:
    found = COMMANDS.get(verb)
    if found is None:
        return Reply.refuse(f"`incident {verb}` is not available in this version of "
                            "Firebell. Type `incident help` for what is.")
    return await found.run(ctx, actor, args, where)


def help_sections() -> list[tuple[str, list[tuple[str, str]]]]:
    """(section, [(usage, summary)]) in the registry's order, for the help card."""
    return [(section, [(c.usage, c.summary) for c in COMMANDS.values()
                       if c.section == section and c.in_help]) for section in SECTIONS]
