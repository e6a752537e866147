"""The one exception the subcommands raise for a failure the user can fix."""
from __future__ import annotations


class CliError(Exception):
    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code
