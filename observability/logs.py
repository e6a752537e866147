"""Structured logs: one JSON object per line, with the incident id on every line that concerns
one (pass it as `extra={"incident": "INC-7"}`). Secrets never go in: nothing here logs request
headers or settings."""
from __future__ import annotations

import json
import logging
import sys
from datetime import datetime, timezone

from aiohttp.http_exceptions import HttpProcessingError

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(
                     timespec="milliseconds"),
                 "level": record.levelname.lower(), "logger": record.name,
                 "message": record.getMessage()}
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value if isinstance(value, (str, int, float, bool, type(None))) \
                    else str(value)
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class SendersMistakes(logging.Filter):
    """aiohttp logs a request it cannot even parse (bad chunk framing, a broken request line) as
    an ERROR with a traceback, before any Firebell code runs; the sender already got its 400.
    It is the sender's mistake, not Firebell's: one INFO line, no traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, HttpProcessingError) and getattr(error, "code", 500) < 500:
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.msg, record.args = f"refused a malformed request: {error.message}"[:300], ()
            record.exc_info = record.exc_text = None
        return True


def configure_logging(level: str = "INFO", fmt: str = "json") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else
                         logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("aiohttp.server").addFilter(SendersMistakes())
    for noisy in ("aiohttp.access", "httpx", "msrest", "urllib3", "apscheduler", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
