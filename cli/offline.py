"""The subcommands that work on the database: each builds Firebell from the environment with
app.py, calls the handler the chat command or HTTP endpoint calls, prints the answer, and
closes everything again."""
from __future__ import annotations

import json
import sys
from contextlib import asynccontextmanager
from typing import AsyncIterator

from multidict import MultiDict
from sqlalchemy import make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

import app
from cli.errors import CliError
from handlers.commands.parsing import ParseError, one_ref
from handlers.commands.registry import Where, run_command
from handlers.reads.api import BadRequest, csv_text, parse_query
from handlers.reports.compile import COMPANY, compile_report
from handlers.reports.deliver import deliver
from handlers.reports.settings import WEEKLY
from incidents.catalog import CatalogError, load_catalog
from incidents.model import Actor
from incidents.periods import MONTH, WEEK, last_complete
from mail.reports import monthly_email, weekly_email
from storage.db import DatabaseUnavailable

CLI_ACTOR = Actor(name="firebell command line", via="cli")
CLI_WHERE = Where(conversation_id="cli", kind="personal")


def load_settings() -> app.Settings:
    try:
        return app.settings_from_environment()
    except SystemExit as exc:  # settings_from_env names the variable and what is wrong
        raise CliError(f"bad setting: {exc.code}", exit_code=2) from None


def serve(settings: app.Settings) -> None:
    _catalog_or_fail(settings)
    app.serve(settings)


def _catalog_or_fail(settings: app.Settings) -> None:
    try:
        load_catalog(settings.catalog_path)
    except CatalogError as exc:
        raise CliError(f"{exc}\n(`firebell check-config` shows the lines)") from None


def _redacted(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not even a URL: say it without its value
        return "DATABASE_URL"


@asynccontextmanager
async def firebell(settings: app.Settings) -> AsyncIterator[app.Firebell]:
    """Firebell built as the server builds it (no web server, worker or scheduler), with the
    database's failures turned into a message naming the database."""
    try:
        built = app.Firebell(settings)
    except CatalogError as exc:
        raise CliError(f"{exc}\n(`firebell check-config` shows the lines)") from None
    try:
        yield built
    except (DatabaseUnavailable, DBAPIError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "orig", None) or exc
        raise CliError(f"cannot use the database {_redacted(settings.database_url)}: "
                       f"{str(reason).strip()[:300]}\n(is it running, and has "
                       "`firebell migrate` run?)") from None
    except SQLAlchemyError as exc:
        raise CliError(f"database error on {_redacted(settings.database_url)}: "
                       f"{str(exc).splitlines()[0][:300]}") from None
    finally:
        await built.clients.close()
        await built.db.close()


async def migrate(settings: app.Settings) -> int:
    async with firebell(settings) as fb:
        await fb.db.migrate()
    print(f"database {_redacted(settings.database_url)} is at the newest revision")
    return 0


async def report(settings: app.Settings, kind: str, team: str | None, send: bool) -> int:
    async with firebell(settings) as fb:
        scope = _scope(fb, team)
        now = fb.ctx.now()
        period = last_complete(WEEK if kind == WEEKLY else MONTH, now, fb.catalog.timezone)
        if send:
            queued = await deliver(fb.ctx, kind, period, settings.reports, now=now,
                                   scope=None if team is None else scope)
            print(f"{kind} {period.key}: queued for {queued} target(s) that had not had it; "
                  "a running Firebell's worker sends them")
            return 0
        compiled = await compile_report(fb.ctx, kind, now=now, period=period)
    view = compiled.view(scope)
    _subject, text, _html = (weekly_email if kind == WEEKLY else monthly_email)(view)
    print(text)
    return 0


def _scope(fb: app.Firebell, team: str | None) -> str:
    if team is None:
        return COMPANY
    found = fb.catalog.find_team(team)
    if found is None:
        raise CliError(f"--team {team!r} is not a team in the catalog; teams: "
                       + ", ".join(fb.catalog.teams), exit_code=2)
    return found.key


async def retry(settings: app.Settings, incident: str) -> int:
    try:
        incident_id = one_ref(incident, "retry")
    except ParseError as exc:
        raise CliError(str(exc), exit_code=2) from None
    async with firebell(settings) as fb:
        reply = await run_command(fb.ctx, CLI_ACTOR, "retry", {"incident": incident_id},
                                  CLI_WHERE)
    print(reply.text, file=sys.stdout if reply.ok else sys.stderr)
    return 0 if reply.ok else 1


async def export(settings: app.Settings, since: str, until: str, fmt: str) -> int:
    try:
        filters, _, _ = parse_query(MultiDict(since=since, until=until))
    except BadRequest as exc:
        raise CliError(str(exc), exit_code=2) from None
    async with firebell(settings) as fb:
        items = await fb.report_endpoints.export(filters)
    if fmt == "json":
        print(json.dumps({"items": items, "total": len(items)}, ensure_ascii=False, indent=2))
    else:
        sys.stdout.write(csv_text(items))
    return 0
