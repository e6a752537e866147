"""Postmortems by capability URL: `/postmortems/<token>` (and `.md`) with a random token per
postmortem, the old `/incidents/INC-n/postmortem` paths gone, the API-token path for tools,
`incident postmortem INC-n new-link` to rotate the token, and /metrics behind
FIREBELL_METRICS_TOKEN when it is set."""
import json
import re

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import create_async_engine

from storage import postmortems as pm_store
from tests.harness import Harness, card_text, make_settings
from tests.reports.test_report_delivery import _cards, moving_clock, reporting, smtp  # noqa: F401
from tests.reports.test_report_figures import at, story

API_TOKEN = "api-t0ken-for-dashboards"
LINK = re.compile(r"http://firebell\.test/postmortems/([A-Za-z0-9_-]+)")
OLD_LINK = re.compile(r"/incidents/[^/\s\"']+/postmortem")


def links_in(thing) -> list[str]:
    """Every postmortem capability token mentioned anywhere in a card / text."""
    text = thing if isinstance(thing, str) else json.dumps(thing)
    return LINK.findall(text)


TITLE = "payment-gateway: 0/6 pods ready"


async def _paged(h):
    """INC-1: payment-gateway is down (service-down: a postmortem starts), card in Payments."""
    await h.subscribe("payments")
    await h.pagerduty("01-payment-gateway-triggered.json")
    await h.settle()


async def _token(h, incident_id=1) -> str:
    async with h.ctx.db.read() as conn:
        return (await pm_store.get(conn, incident_id))["link_token"]


async def _get(h, path, **headers):
    async with h.http.get(h.url + path, headers=headers) as resp:
        return resp.status, await resp.text(), resp.headers


async def test_the_postmortem_opens_by_its_token_and_not_by_the_incident_id(harness):
    h = harness
    await _paged(h)
    token = await _token(h)
    assert len(token) >= 22  # at least 128 random bits, base64url
    # The card links to the capability URL, never to the sequential one.
    (card,) = h.cards_in("payments")
    assert links_in(card) == [token] and not OLD_LINK.search(json.dumps(card))

    status, page, headers = await _get(h, f"/postmortems/{token}")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert f"INC-1: {TITLE}" in page and "Not written yet" in page
    assert headers["Referrer-Policy"] == "no-referrer"
    status, markdown, headers = await _get(h, f"/postmortems/{token}.md")
    assert status == 200 and headers["Content-Type"].startswith("text/markdown")
    assert markdown.startswith("# INC-1: payment-gateway: 0/6 pods ready")  # no over-escaping

    for ref in ("INC-1", "inc-1", "1"):
        for suffix in ("", ".md"):
            status, body, _ = await _get(h, f"/incidents/{ref}/postmortem{suffix}")
            assert status == 404 and "0/6 pods ready" not in body
    other = token[:-1] + ("A" if token[-1] != "A" else "B")
    for path in (f"/postmortems/{other}", f"/postmortems/{other}.md", "/postmortems/1",
                 "/postmortems/INC-1", f"/postmortems/{token}.html", "/postmortems/",
                 f"/postmortems/{token}x", "/postmortems/%00", f"/postmortems/{'a' * 300}"):
        status, body, _ = await _get(h, path)
        assert status == 404 and "0/6 pods ready" not in body, path


async def test_tools_read_the_postmortem_with_the_api_token(database_url, connector):
    h = await Harness(make_settings(database_url, api_token=API_TOKEN), connector).start()
    try:
        await _paged(h)
        bearer = {"Authorization": f"Bearer {API_TOKEN}"}
        for ref in ("INC-1", "inc-1", "1"):
            status, page, _ = await _get(h, f"/api/incidents/{ref}/postmortem", **bearer)
            assert status == 200 and f"INC-1: {TITLE}" in page
        status, markdown, headers = await _get(h, "/api/incidents/INC-1/postmortem.md", **bearer)
        assert status == 200 and headers["Content-Type"].startswith("text/markdown")
        assert markdown.startswith("# INC-1: payment-gateway: 0/6 pods ready")  # no over-escaping
        for wrong in ({}, {"Authorization": "Bearer nope"}, {"Authorization": API_TOKEN},
                      {"Authorization": f"Basic {API_TOKEN}"}):
            status, body, headers = await _get(h, "/api/incidents/INC-1/postmortem", **wrong)
            assert status == 401 and headers["WWW-Authenticate"].startswith("Bearer")
            assert "0/6 pods ready" not in body
        assert (await _get(h, "/api/incidents/INC-99/postmortem", **bearer))[0] == 404
        assert (await _get(h, "/api/incidents/nonsense/postmortem", **bearer))[0] == 404
    finally:
        await h.stop()


async def test_the_api_path_is_off_without_an_api_token(harness):
    h = harness
    await _paged(h)
    for headers in ({}, {"Authorization": f"Bearer {API_TOKEN}"}, {"Authorization": "Bearer "}):
        status, body, _ = await _get(h, "/api/incidents/INC-1/postmortem", **headers)
        assert status == 404 and "0/6 pods ready" not in body
        assert (await _get(h, "/api/incidents/INC-1/postmortem.md", **headers))[0] == 404


async def test_a_responder_rotates_the_link_and_the_old_one_stops_at_once(harness):
    h = harness
    await _paged(h)
    old = await _token(h)
    reply = await h.say("incident postmortem INC-1 new-link", channel="payments", who="mei")
    new = await _token(h)
    assert new != old and len(new) >= 22
    assert links_in(reply["text"]) == [new] and "INC-1" in reply["text"]
    assert (await _get(h, f"/postmortems/{old}"))[0] == 404
    assert (await _get(h, f"/postmortems/{old}.md"))[0] == 404
    assert (await _get(h, f"/postmortems/{new}"))[0] == 200
    entries = await h.timeline(1)
    assert entries[-1]["text"] == "postmortem link rotated by Mei Tanaka"
    assert not any(old in e["text"] or new in e["text"] for e in entries)
    # The incident's card is updated in place and carries the new link.
    await h.settle()
    (card,) = h.cards_in("payments")
    assert links_in(card) == [new]
    # The RCA form opened now links to the new page too.
    form = await h.say("incident rca INC-1", channel="payments")
    assert links_in(form["attachments"][0]["content"]) == [new]


async def test_rotating_the_link_is_for_responders_and_needs_the_right_words(harness):
    h = harness
    await _paged(h)
    token = await _token(h)
    reply = await h.say("incident postmortem INC-1 new-link", channel="payments", who="guest")
    assert "only the Payments team" in reply["text"] and "postmortem link" in reply["text"]
    assert not links_in(reply["text"])
    for text in ("incident postmortem INC-1", "incident postmortem INC-1 rotate",
                 "incident postmortem INC-1 new-link now", "incident postmortem new-link",
                 "incident postmortem"):
        reply = await h.say(text, channel="payments", who="mei")
        assert "Usage: `incident postmortem INC-7 new-link`" in reply["text"], text
    reply = await h.say("incident postmortem INC-42 new-link", channel="payments", who="mei")
    assert "INC-42 does not exist" in reply["text"]
    # A cascade child's postmortem is its root's; a minor incident has none: nothing to rotate.
    await h.subscribe("checkout")
    await h.pagerduty("02-checkout-api-triggered.json")
    await h.settle()
    assert (await h.incident(2)).parent_id == 1
    reply = await h.say("incident postmortem INC-2 new-link")
    assert "its postmortem is INC-1's" in reply["text"]
    await h.say("incident declare checkout typo on the basket page level=minor")
    reply = await h.say("incident postmortem INC-3 new-link")
    assert "INC-3 has no postmortem" in reply["text"] and "incident rca INC-3" in reply["text"]
    assert await _token(h) == token
    assert not [e for e in await h.timeline(1) if "rotated" in e["text"]]


async def test_reminders_search_and_close_summaries_carry_the_token_link(reporting):  # noqa: F811
    h = reporting
    ids = await story(h.ctx)
    token = await _token(h, ids["A"])
    h.ctx.clock = moving_clock(at("2025-03-31T08:00"))
    from handlers.reports.close_summary import queue_close_summary
    from handlers.reports.reminders import send_reminders
    from storage import incidents as store
    assert (await send_reminders(h.ctx, h.firebell.settings.reports))["postmortems"] == 1
    await h.settle()
    (reminder,) = _cards(h, "checkout", "Postmortem overdue")
    assert links_in(reminder) == [token]
    (mail,) = [m for m in await h.smtp.wait_for_messages(2)
               if m.message["To"] == "priya.raman@shopfront.example"]
    assert links_in(mail.message.get_body(("plain",)).get_content()) == [token]

    found = await h.say("incident search checkout-api service-down")
    assert token in links_in(found["attachments"][0]["content"])

    async with h.ctx.db.write() as conn:
        await pm_store.save(conn, ids["A"], {"summary": "Checkout was down"}, complete=True,
                            now=h.ctx.now())
        await queue_close_summary(h.ctx, conn, await store.get(conn, ids["A"]))
    await h.settle()
    (summary,) = _cards(h, "checkout", f"INC-{ids['A']} closed")
    assert links_in(summary) == [token]
    for card in h.cards_in("payments"):
        assert not OLD_LINK.search(json.dumps(card)), card_text(card)


async def test_metrics_need_the_metrics_token_when_one_is_set(database_url, connector):
    h = await Harness(make_settings(database_url, metrics_token="scrape-me"), connector).start()
    try:
        status, body, _ = await _get(h, "/metrics", Authorization="Bearer scrape-me")
        assert status == 200 and "firebell_outbox_pending" in body
        for wrong in ({}, {"Authorization": "Bearer scrape-you"}, {"Authorization": "scrape-me"}):
            status, body, headers = await _get(h, "/metrics", **wrong)
            assert status == 401 and headers["WWW-Authenticate"].startswith("Bearer")
            assert "firebell_" not in body
    finally:
        await h.stop()


async def test_metrics_stay_open_without_a_metrics_token(harness):
    status, body, _ = await _get(harness, "/metrics")
    assert status == 200 and "firebell_outbox_pending" in body


def test_the_metrics_token_is_read_from_the_environment():
    from app import settings_from_env
    assert settings_from_env({"FIREBELL_METRICS_TOKEN": " scrape-me "}).metrics_token == \
        "scrape-me"
    assert settings_from_env({}).metrics_token == ""


# -- the migration --------------------------------------------------------------------------------

BEFORE = "0010_roster_per_tenant"  # the revision 0011_postmortem_links builds on


async def _migrate(engine, target: str) -> None:
    from alembic import command
    from alembic.config import Config
    from storage.db import MIGRATIONS

    def upgrade(sync_conn):
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        cfg.attributes["connection"] = sync_conn
        command.upgrade(cfg, target)
    async with engine.begin() as conn:
        await conn.run_sync(upgrade)


@pytest.fixture
async def empty_database(tmp_path, postgres_server_url):
    """A database of its own (the migration test needs one no test has migrated yet)."""
    if postgres_server_url is None:
        yield f"sqlite+aiosqlite:///{tmp_path / 'before.db'}"
        return
    server, name = postgres_server_url.rsplit("/", 1)
    admin = create_async_engine(f"{server}/postgres", isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}_pmlinks"'))
    yield f"{server}/{name}_pmlinks"
    async with admin.connect() as conn:
        await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}_pmlinks" WITH (FORCE)'))
    await admin.dispose()


async def test_the_migration_gives_every_existing_postmortem_its_own_token(empty_database):
    engine = create_async_engine(empty_database)
    try:
        await _migrate(engine, BEFORE)
        async with engine.begin() as conn:
            for n in (1, 2, 3):
                await conn.execute(text(
                    "INSERT INTO incidents (id, source, title, level, status, triggered_at, "
                    "assignees, details, fingerprint, correlated, no_auto_link, version, "
                    f"created_at, updated_at) VALUES ({n}, 'teams', 'checkout down {n}', "
                    "'service-down', 'resolved', '2025-03-24 08:00:00', '[]', '{}', "
                    f"'fp{n}', true, false, 1, '2025-03-24 08:00:00', '2025-03-24 08:00:00')"))
            for n in (1, 2):
                await conn.execute(text(
                    "INSERT INTO postmortems (incident_id, status, summary, reminders, "
                    f"created_at, updated_at) VALUES ({n}, 'draft', 'expired certificate', 0, "
                    "'2025-03-24 09:00:00', '2025-03-24 09:00:00')"))
        await _migrate(engine, "head")
        async with engine.connect() as conn:
            tokens = (await conn.execute(text(
                "SELECT link_token FROM postmortems ORDER BY incident_id"))).scalars().all()
        assert len(tokens) == 2 and len(set(tokens)) == 2
        assert all(t and len(t) >= 22 and re.fullmatch(r"[A-Za-z0-9_-]+", t) for t in tokens)
        # Never empty, never shared.
        for token in ("NULL", f"'{tokens[0]}'"):
            with pytest.raises(IntegrityError):
                async with engine.begin() as conn:
                    await conn.execute(text(
                        "INSERT INTO postmortems (incident_id, status, reminders, created_at, "
                        f"updated_at, link_token) VALUES (3, 'draft', 0, '2025-03-24 09:00:00', "
                        f"'2025-03-24 09:00:00', {token})"))
        # Search still follows the postmortems (SQLite re-created their triggers).
        from storage import search as index
        async with engine.begin() as conn:
            await conn.execute(text("UPDATE postmortems SET root_cause = 'zebra crossing' "
                                    "WHERE incident_id = 2"))
        async with engine.connect() as conn:
            assert await index.search(conn, "zebra", limit=5) == [2]
    finally:
        await engine.dispose()


async def test_the_page_links_back_names_people_and_exports_plain_markdown(harness):
    """Issue 14 part 8: links to the Teams card, PagerDuty, the runbook (and JIRA when it is
    configured); people by name; Markdown escaped only where it would start markup."""
    h = harness
    await _paged(h)
    token = await _token(h)
    status, body = await h.send(h.card_click("rca_save", {
        "incident": "INC-1", "items": [None],
        "summary": "checkout-api and payment_gateway timed out\n- 12 pods restarted\n1.8.3 rolled back",
        "item_0_title": "Alert on *pod* readiness", "item_0_owner": "mei.tanaka@shopfront.example",
        "item_0_due": "2026-12-20"}, channel="payments", who="mei"))
    assert status == 200
    status, page, _ = await _get(h, f"/postmortems/{token}")
    assert 'href="https://teams.microsoft.com/l/message/' in page
    assert "Incident card in Teams" in page and ">PagerDuty</a>" in page and ">Runbook</a>" in page
    assert "Mei Tanaka" in page and "mei.tanaka@shopfront.example" not in page
    status, md, headers = await _get(h, f"/postmortems/{token}.md")
    assert headers["Content-Type"].startswith("text/markdown")
    assert "checkout-api and payment_gateway timed out" in md   # no over-escaping
    assert "\\- 12 pods restarted" in md and "1.8.3 rolled back" in md  # a list item stays text
    assert "Alert on \\*pod\\* readiness — Mei Tanaka, due 2026-12-20" in md
    assert "[PagerDuty](<https://" in md and "[Runbook](<https://wiki.shopfront.example/" in md
    assert "mei.tanaka@shopfront.example" not in md
