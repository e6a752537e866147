"""Import every module that registers commands (handlers.commands.command) or outbox job
kinds (handlers.jobs.job): the bot and the worker look them up by name."""
from __future__ import annotations


def load_all() -> None:
    from handlers import (card_delivery, correlate, emails, jira_tasks,  # noqa: F401
                          linking, messages, oncall, pagerduty_sync, rca, roster, waivers,
                          war_room)
    from handlers import report_commands, search  # noqa: F401  (report, stats, search)
    from handlers import postmortem_links  # noqa: F401  (postmortem … new-link)
