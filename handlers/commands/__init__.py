"""Request-path use cases: the typed commands and the card buttons. Importing this package
registers every command (handlers/commands/registry.py); the order below is the help card's."""
from handlers.commands import (declare, lifecycle, running, routing, status, look,  # noqa: F401
                               oncall, search, reports, links, rca, postmortem, retry)
from handlers.commands import page  # noqa: F401
from handlers.commands import maintenance  # noqa: F401
from handlers.commands.card_actions import handle_card_action  # noqa: F401
from handlers.commands.parsing import ParseError, parse_command  # noqa: F401
from handlers.commands.registry import COMMANDS, Where, run_command  # noqa: F401
from handlers.commands.reply import Reply  # noqa: F401
