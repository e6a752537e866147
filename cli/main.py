"""`firebell <subcommand>`: the argument parser, and the one place that turns every expected
failure (bad settings, a broken catalog, an unreachable database) into a clear message and a
non-zero exit instead of a traceback."""
from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from typing import Sequence

from cli import config_check, offline, test_alert
from cli.errors import CliError

log = logging.getLogger("firebell.cli")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="firebell", description="Firebell: incidents in Microsoft "
                                "Teams. Settings come from the environment (and .env).")
    sub = p.add_subparsers(dest="command", required=True, metavar="command")
    sub.add_parser("serve", help="run the server (what `python app.py` does)")
    sub.add_parser("migrate", help="bring the database schema to the newest revision")
    sub.add_parser("check-config", help="validate the environment and the catalog")
    report = sub.add_parser("report", help="print (or send) the last weekly digest or "
                            "monthly report")
    report.add_argument("kind", choices=("weekly", "monthly"))
    report.add_argument("--team", help="a team key or name from the catalog (default: company)")
    report.add_argument("--send", action="store_true",
                        help="queue it for the subscribed channels and e-mails instead")
    retry = sub.add_parser("retry", help="run an incident's failed follow-ups again")
    retry.add_argument("incident", metavar="INC-n")
    export = sub.add_parser("export", help="incidents triggered in a time range, as CSV or JSON")
    export.add_argument("--since", required=True, help="ISO 8601, e.g. 2025-03-01")
    export.add_argument("--until", required=True, help="ISO 8601, e.g. 2025-04-01")
    export.add_argument("--format", choices=("csv", "json"), default="csv")
    alert = sub.add_parser("send-test-alert", help="post a signed sample PagerDuty V3 event "
                           "to a running Firebell")
    alert.add_argument("--url", help="Firebell's base URL (default: http://127.0.0.1:$PORT)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)  # bad usage: argparse says why and exits 2
    try:
        return run(args)
    except CliError as exc:
        print(f"firebell {args.command}: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


def run(args: argparse.Namespace) -> int:
    if args.command == "check-config":
        return config_check.check()
    if args.command == "send-test-alert":
        return test_alert.send(args.url)
    settings = offline.load_settings()
    if args.command == "serve":
        offline.serve(settings)
        return 0
    work = {"migrate": lambda: offline.migrate(settings),
            "report": lambda: offline.report(settings, args.kind, args.team, args.send),
            "retry": lambda: offline.retry(settings, args.incident),
            "export": lambda: offline.export(settings, args.since, args.until, args.format)}
    return asyncio.run(work[args.command]())


def entry_point() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry_point()
