"""`firebell …` run as an operator runs it: a real process, with settings in its environment,
against a real database (and, for send-test-alert and retry, a running Firebell). Every bad input
gets a message and a non-zero exit, never a traceback."""
from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import CATALOG, REPO
from tests.harness import SECRET
from tests.processes import free_port, plain_url

UNREACHABLE_DB = "postgresql://postgres@127.0.0.1:1/firebell"


def firebell(*args: str, database_url: str | None = None, **env: str):
    environment = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"),
                   "FIREBELL_CONFIG": str(CATALOG), "LOG_FORMAT": "text", **env}
    if database_url:
        environment["DATABASE_URL"] = plain_url(database_url)
    done = subprocess.run([sys.executable, "-m", "cli.main", *args], cwd=REPO, env=environment,
                          capture_output=True, text=True, timeout=120)
    assert "Traceback" not in done.stderr + done.stdout, done.stderr
    return done


async def afirebell(*args: str, **kw):
    return await asyncio.to_thread(firebell, *args, **kw)


def test_unknown_option_and_subcommand_are_usage_errors():
    done = firebell("report", "weekly", "--bogus")
    assert done.returncode == 2 and "unrecognized arguments: --bogus" in done.stderr
    done = firebell("explode")
    assert done.returncode == 2 and "invalid choice: 'explode'" in done.stderr
    done = firebell("report", "yearly")
    assert done.returncode == 2 and "invalid choice: 'yearly'" in done.stderr


def test_check_config_passes_on_the_example_catalog():
    done = firebell("check-config")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "configuration OK" in done.stdout


def test_check_config_names_every_problem_with_file_and_line(tmp_path):
    lines = CATALOG.read_text().splitlines()
    owner = next(i for i, line in enumerate(lines) if line.strip().startswith("owner_team:"))
    lines[owner] = lines[owner].split(":")[0] + ": nobody-owns-this"
    broken = tmp_path / "catalog.yaml"
    broken.write_text("\n".join(lines) + "\n")
    done = firebell("check-config", FIREBELL_CONFIG=str(broken), PORT="eighty",
                    FIREBELL_OUTBOX_MAX_ATTEMPTS="lots")
    assert done.returncode == 1
    assert f"{broken}:{owner + 1}: " in done.stdout
    assert "owner_team 'nobody-owns-this' is not a team" in done.stdout
    assert "PORT must be a number, got 'eighty'" in done.stdout
    assert "FIREBELL_OUTBOX_MAX_ATTEMPTS must be a number" in done.stdout
    assert "3 problem(s)" in done.stdout


def test_check_config_points_at_a_yaml_syntax_error(tmp_path):
    broken = tmp_path / "catalog.yaml"
    broken.write_text("timezone: UTC\nteams:\n  web: {name: Web\n")
    done = firebell("check-config", FIREBELL_CONFIG=str(broken))
    assert done.returncode == 1 and f"{broken}:" in done.stdout and "not valid YAML" in done.stdout


async def test_migrate_report_and_export_on_a_fresh_database(database_url):
    done = await afirebell("migrate", database_url=database_url)
    assert done.returncode == 0 and "newest revision" in done.stdout, done.stderr
    done = await afirebell("report", "weekly", database_url=database_url)
    assert done.returncode == 0 and "Weekly incident digest" in done.stdout, done.stderr
    done = await afirebell("report", "monthly", "--team", "checkout", database_url=database_url)
    assert done.returncode == 0 and "Monthly incident report — Checkout" in done.stdout
    done = await afirebell("report", "weekly", "--team", "checkout", "--send",
                           database_url=database_url)
    assert done.returncode == 0 and "queued for 0 target(s)" in done.stdout
    done = await afirebell("report", "weekly", "--team", "nobody", database_url=database_url)
    assert done.returncode == 2 and "'nobody' is not a team" in done.stderr
    done = await afirebell("export", "--since", "2020-01-01", "--until", "2030-01-01",
                           "--format", "json", database_url=database_url)
    assert done.returncode == 0 and json.loads(done.stdout) == {"items": [], "total": 0}


def test_alembic_on_the_command_line_migrates_the_configured_database(tmp_path):
    url = f"sqlite:///{tmp_path / 'alembic.db'}"
    env = {"PATH": os.environ["PATH"], "DATABASE_URL": url}
    done = subprocess.run([sys.executable, "-m", "alembic", "upgrade", "head"], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    done = subprocess.run([sys.executable, "-m", "alembic", "current"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)
    assert "(head)" in done.stdout, done.stderr


async def test_retry_and_export_reuse_the_handlers(harness):
    await harness.pagerduty("01-payment-gateway-triggered.json")
    await harness.settle()
    url = harness.settings.database_url
    done = await afirebell("retry", "INC-1", database_url=url)
    assert done.returncode == 0 and "Nothing failed on INC-1" in done.stdout, done.stderr
    done = await afirebell("retry", "INC-99", database_url=url)
    assert done.returncode == 1 and "INC-99 does not exist" in done.stderr
    done = await afirebell("retry", "yesterday", database_url=url)
    assert done.returncode == 2 and "is not an incident id" in done.stderr
    done = await afirebell("export", "--since", "2020-01-01", "--until", "2030-01-01",
                           database_url=url)
    assert done.returncode == 0, done.stderr
    header, row = done.stdout.splitlines()[:2]
    assert header.startswith("id,ref,title") and "INC-1" in row and "payment-gateway" in row
    done = await afirebell("export", "--since", "2025-04-01", "--until", "2025-03-01",
                           database_url=url)
    assert done.returncode == 2 and "until must be after since" in done.stderr


@pytest.mark.parametrize("args", [("migrate",), ("retry", "INC-1"), ("report", "weekly"),
                                  ("export", "--since", "2025-01-01", "--until", "2025-02-01")])
def test_an_unreachable_database_is_named_not_a_traceback(args):
    done = firebell(*args, database_url=UNREACHABLE_DB)
    assert done.returncode == 1
    assert "cannot use the database postgresql://postgres@127.0.0.1:1/firebell" in done.stderr


def test_a_bad_setting_is_named(tmp_path):
    done = firebell("migrate", FIREBELL_WORKER_POLL_SECONDS="soon",
                    database_url=f"sqlite:///{tmp_path / 'x.db'}")
    assert done.returncode == 2
    assert "FIREBELL_WORKER_POLL_SECONDS must be a number, got 'soon'" in done.stderr


async def test_send_test_alert_reaches_a_running_firebell(harness):
    done = await afirebell("send-test-alert", "--url", harness.url,
                           PAGERDUTY_WEBHOOK_SECRETS=SECRET)
    assert done.returncode == 0, done.stderr
    assert ": 200 " in done.stdout or ": 202 " in done.stdout
    await harness.settle()
    [incident] = await harness.incidents()
    assert "test alert from `firebell send-test-alert`" in incident.title
    assert abs(time.time() - incident.triggered_at.timestamp()) < 120  # a current timestamp


def test_send_test_alert_without_a_secret_or_a_server_says_why():
    done = firebell("send-test-alert")
    assert done.returncode == 1 and "PAGERDUTY_WEBHOOK_SECRETS is not set" in done.stderr
    done = firebell("send-test-alert", "--url", f"http://127.0.0.1:{free_port()}",
                    PAGERDUTY_WEBHOOK_SECRETS="s")
    assert done.returncode == 1 and "could not reach" in done.stderr


def test_serve_answers_and_a_broken_catalog_stops_it(tmp_path):
    port = free_port()
    env = {"PATH": os.environ["PATH"], "FIREBELL_CONFIG": str(CATALOG), "PORT": str(port),
           "DATABASE_URL": f"sqlite:///{tmp_path / 'serve.db'}", "FIREBELL_SCHEDULER": "off",
           "LOG_FORMAT": "text"}
    server = subprocess.Popen([sys.executable, "-m", "cli.main", "serve"], cwd=REPO, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
                    assert json.load(r)["status"] == "ready"
                    break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline
                time.sleep(0.3)
    finally:
        server.terminate()
        server.wait(timeout=30)
    broken = tmp_path / "broken.yaml"
    broken.write_text("teams: [not, a, mapping]\n")
    done = firebell("serve", FIREBELL_CONFIG=str(broken), PORT=str(port))
    assert done.returncode == 1 and "teams: expected a mapping" in done.stderr
