"""Anonymous mode (no MicrosoftAppId) is safe by default: it listens on loopback unless told
otherwise (and then says so, every hour), and it calls no serviceUrl that is not loopback,
whatever an activity or a stored conversation names."""
import asyncio
import logging
import subprocess
import sys
from dataclasses import replace

import pytest
from sqlalchemy import func, select, update

from app import settings_from_env
from storage.schema import conversations, incidents, outbox
from tests.conftest import CATALOG, REPO
from tests.harness import CHANNELS, Harness, make_settings
from tests.processes import FirebellProcess

ELSEWHERE = "http://203.0.113.5/"  # TEST-NET-3: refused before any packet could leave


async def _rows(h: Harness) -> dict[str, int]:
    async with h.ctx.db.read() as conn:
        return {t.name: (await conn.execute(select(func.count()).select_from(t))).scalar_one()
                for t in (conversations, outbox, incidents)}


async def test_an_activity_naming_a_non_loopback_service_url_is_refused(harness):
    h = harness
    before = await _rows(h)
    install = h.install(channel="payments")
    install["serviceUrl"] = ELSEWHERE
    message = h.channel_message("incident declare checkout is down", channel="payments")
    message["serviceUrl"] = ELSEWHERE
    for activity in (install, message):
        status, body = await h.send(activity)
        assert status == 403, body
        assert "not loopback" in body["error"]
    await h.settle()
    assert await _rows(h) == before  # nothing stored, no roster fetch or reply queued


async def test_a_stored_conversation_pointing_elsewhere_is_never_called(harness):
    h = harness
    await h.subscribe("payments")
    async with h.ctx.db.write() as conn:  # e.g. stored by an older Firebell
        await conn.execute(update(conversations).where(
            conversations.c.id == CHANNELS["payments"]).values(service_url=ELSEWHERE))
    assert (await h.pagerduty("01-payment-gateway-triggered.json")).status == 200
    await h.settle(timeout=5)
    async with h.ctx.db.read() as conn:
        job = (await conn.execute(select(outbox).where(outbox.c.kind == "post_card"))
               ).mappings().one()
    assert job["status"] == "failed" and job["attempts"] == 1  # parked at once, not retried
    assert "not loopback" in job["last_error"]


def test_host_defaults_to_loopback_without_an_app_id():
    assert settings_from_env({}).host == "127.0.0.1"
    assert settings_from_env({"MicrosoftAppId": "b07"}).host == "0.0.0.0"
    assert settings_from_env({"MicrosoftAppId": "b07", "HOST": "10.0.0.4"}).host == "10.0.0.4"
    assert settings_from_env({"HOST": "0.0.0.0", "FIREBELL_ALLOW_ANONYMOUS": "1"}).allow_anonymous


def _python_app(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "app.py")], cwd=REPO, timeout=60,
                          capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "FIREBELL_CONFIG": str(CATALOG), **env})


def test_a_non_loopback_host_without_an_app_id_refuses_to_start(tmp_path):
    done = _python_app({"HOST": "0.0.0.0", "DATABASE_URL": f"sqlite:///{tmp_path}/f.db"})
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "FIREBELL_ALLOW_ANONYMOUS" in lines[0], done.stderr
    assert "Traceback" not in done.stderr + done.stdout


async def test_allowed_anonymous_on_all_interfaces_starts_and_warns(database_url, tmp_path):
    app = FirebellProcess(database_url, tmp_path, env={
        "HOST": "0.0.0.0", "FIREBELL_ALLOW_ANONYMOUS": "1", "LOG_LEVEL": "INFO"})
    app.start()
    try:
        await app.wait_ready()
        assert _listening_on(app.port) == {"0.0.0.0"}
        assert app.log_lines("anonymous mode on HOST=0.0.0.0"), app.log_tail()
    finally:
        app.stop()


async def test_no_host_and_no_app_id_listens_on_loopback_only(database_url, tmp_path):
    app = FirebellProcess(database_url, tmp_path)
    del app.env["HOST"]
    app.start()
    try:
        await app.wait_ready()
        assert _listening_on(app.port) == {"127.0.0.1"}
    finally:
        app.stop()
    assert not app.log_lines("anonymous mode on")


async def test_the_anonymous_warning_repeats(database_url, connector, caplog):
    caplog.set_level(logging.WARNING, logger="firebell")
    settings = replace(make_settings(database_url), host="0.0.0.0", allow_anonymous=True,
                       anonymous_warning_seconds=0.05)
    warnings = lambda: [r for r in caplog.records  # noqa: E731
                        if "FIREBELL_ALLOW_ANONYMOUS=1" in r.getMessage()]
    h = await Harness(settings, connector).start()
    try:
        for _ in range(100):
            if len(warnings()) >= 3:
                break
            await asyncio.sleep(0.05)
    finally:
        await h.stop()
    assert len(warnings()) >= 3
    assert "anyone who can reach port" in warnings()[0].getMessage()


def _listening_on(port: int) -> set[str]:
    """Local addresses of the listening TCP sockets on `port`, from /proc (IPv4)."""
    found = set()
    for line in open("/proc/net/tcp").read().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, hex_port = local.split(":")
        if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
            found.add(".".join(str(int(address[i:i + 2], 16)) for i in (6, 4, 2, 0)))
    return found


def test_the_service_url_host_list_is_checked_at_start():
    hosts = settings_from_env({"MicrosoftAppId": "b07"}).service_url_hosts
    assert "smba.trafficmanager.net" in hosts and "*.botframework.com" in hosts
    with pytest.raises(SystemExit, match="FIREBELL_SERVICE_URL_HOSTS: 'https://smba"):
        settings_from_env({"MicrosoftAppId": "b07",
                           "FIREBELL_SERVICE_URL_HOSTS": "https://smba.trafficmanager.net/amer"})
