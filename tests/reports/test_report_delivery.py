"""Digests, reports, reminders and the incident API through the running app: cards reach the
fake Bot Connector, e-mails a real SMTP server (aiosmtpd); each delivery exactly once, also
with two schedulers on one database, and caught up after downtime."""
import asyncio
import time
from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from app import Firebell, Integrations
from handlers.reports.close_summary import queue_close_summary
from handlers.reports.deliver import deliver, deliver_due
from handlers.reports.reminders import send_reminders
from handlers.reports.settings import ReportSettings
from incidents.model import Actor
from incidents.periods import parse_period
from storage import incidents as store
from storage import timeline
from storage import postmortems as pm_store
from storage.schema import outbox, report_deliveries
from tests.fakes.smtp import FakeSmtpServer
from tests.harness import Harness, card_text, make_settings
from tests.reports.test_report_figures import at, story

CARD = "application/vnd.microsoft.card.adaptive"
LEADERS = "leadership@shopfront.example"
TOKEN = "s3cret-token"


def moving_clock(start: datetime):
    """Time that starts at `start` and runs on (outbox budgets and retries need it to move)."""
    base = time.monotonic()
    return lambda: start + timedelta(seconds=time.monotonic() - base)


def reports_settings(**changes) -> ReportSettings:
    return replace(ReportSettings(digest_emails=(LEADERS,)), **changes)


@pytest.fixture
async def smtp():
    async with FakeSmtpServer() as server:
        yield server


async def started(database_url, connector, smtp=None, **changes) -> Harness:
    integrations = Integrations(smtp_host=smtp.host, smtp_port=smtp.port, smtp_starttls=False,
                                smtp_from="firebell@shopfront.example") if smtp else Integrations()
    settings = make_settings(database_url, integrations=integrations, reports=reports_settings(),
                             api_token=TOKEN, **changes)
    h = await Harness(settings, connector).start()
    await h.send(h.install())
    for team in ("checkout", "payments"):
        await h.subscribe(team)
    await h.subscribe("default", channel="general")
    return h


@pytest.fixture
async def reporting(database_url, connector, smtp):
    h = await started(database_url, connector, smtp)
    h.smtp = smtp
    yield h
    await h.stop()


def _cards(h, channel, heading):
    return [c for c in h.cards_in(channel) if heading in card_text(c)]


async def _count(h, table, *where):
    async with h.ctx.db.read() as conn:
        return (await conn.execute(select(func.count()).select_from(table).where(*where))
                ).scalar_one()


async def test_weekly_digest_reaches_channels_and_inboxes_once(reporting):
    h = reporting
    await story(h.ctx)
    h.ctx.clock = moving_clock(at("2025-03-31T07:00"))          # Monday 09:00 CEST
    settings = h.firebell.settings.reports
    queued = await deliver_due(h.ctx, "weekly", settings)
    # 3 channels (checkout, payments, company-wide in the default channel), 7 team lists and
    # the configured list.
    assert queued == 11
    await h.settle()
    (checkout,) = _cards(h, "checkout", "Weekly incident digest")
    text = card_text(checkout)
    assert "Checkout" in text and "week 13 (24 Mar–30 Mar 2025)" in text
    assert "4 (+2 linked)" in text and "Postmortems overdue: 1" in text
    assert "Action items overdue: 1" in text and "Daniel Okafor" in text
    (company,) = _cards(h, "general", "Weekly incident digest")
    assert "All teams" in card_text(company) and "6 (+2 linked)" in card_text(company)

    messages = await h.smtp.wait_for_messages(8)
    by_to = {m.message["To"]: m.message for m in messages}
    assert set(by_to) >= {LEADERS, "checkout@shopfront.example", "search@shopfront.example"}
    leaders = by_to[LEADERS]
    assert leaders["Subject"].startswith("[Firebell] Weekly incident digest — All teams")
    html = leaders.get_body(("html",)).get_content()
    assert "<table" in html and "Checkout" in html
    quiet = by_to["search@shopfront.example"].get_body(("plain",)).get_content()
    assert "No incidents last week." in quiet

    # Again, and again from the hourly catch-up: nothing more.
    assert await deliver_due(h.ctx, "weekly", settings) == 0
    await h.settle()
    assert len(_cards(h, "checkout", "Weekly incident digest")) == 1
    assert len(h.smtp.messages) == 8
    assert await _count(h, report_deliveries, report_deliveries.c.period == "2025-W13") == 11

    history = await h.say("incident report history checkout")
    text = card_text(history["attachments"][0]["content"])
    assert "weekly" in text and "2025-W13" in text and "channel:checkout: sent" in text


async def test_monthly_report_card_shows_a_served_chart_and_the_email_inlines_it(reporting):
    h = reporting
    await story(h.ctx)
    h.ctx.clock = moving_clock(at("2025-04-01T07:00"))
    assert await deliver_due(h.ctx, "monthly", h.firebell.settings.reports) == 11
    await h.settle()
    (card,) = _cards(h, "checkout", "Monthly incident report")
    (image,) = [e for e in card["body"] if e["type"] == "Image"]
    assert image["url"].startswith("http://firebell.test/charts/")
    path = image["url"].removeprefix("http://firebell.test")
    async with h.http.get(h.url + path) as resp:
        assert resp.status == 200 and resp.content_type == "image/png"
        assert (await resp.read()).startswith(b"\x89PNG\r\n\x1a\n")
    async with h.http.get(h.url + "/charts/not-a-chart.png") as resp:
        assert resp.status == 404
    assert "March 2025" in card_text(card) and "Postmortems complete" in card_text(card)

    messages = await h.smtp.wait_for_messages(8)
    mail = next(m.message for m in messages if m.message["To"] == "checkout@shopfront.example")
    images = [p for p in mail.walk() if p.get_content_type() == "image/png"]
    assert len(images) == 1 and images[0].get_content().startswith(b"\x89PNG")
    cid = images[0]["Content-ID"].strip("<>")
    assert f'src="cid:{cid}"' in mail.get_body(("html",)).get_content()


async def test_two_schedulers_on_one_database_deliver_each_digest_once(database_url, connector):
    h = await started(database_url, connector)
    other = Firebell(h.settings)          # a second replica on the same database
    try:
        for ctx in (h.ctx, other.ctx):
            ctx.clock = moving_clock(at("2025-03-31T07:00"))
        await story(h.ctx)
        # Both schedulers fire at 09:00: one holds the lease, or the unique rows stop the other.
        results = await asyncio.gather(h.firebell.periodic.deliver("weekly"),
                                       other.periodic.deliver("weekly"))
        assert sorted(results) == [0, 3]
        # A lease that lapsed mid-run: both get through and compute, still one each.
        march = parse_period("2025-03", h.ctx.now(), h.ctx.catalog.timezone)
        settings = h.firebell.settings.reports
        results = await asyncio.gather(
            deliver(h.ctx, "monthly", march, settings, now=h.ctx.now()),
            deliver(other.ctx, "monthly", march, settings, now=other.ctx.now()))
        assert sum(results) == 3
        await h.settle()
        for channel in ("checkout", "payments", "general"):
            assert len(_cards(h, channel, "Weekly incident digest")) == 1
            assert len(_cards(h, channel, "Monthly incident report")) == 1
        assert await _count(h, outbox, outbox.c.kind == "post_message") == 6
    finally:
        await other.db.close()
        await other.clients.close()
        await h.stop()


async def test_a_digest_missed_while_down_is_sent_when_back_once(reporting):
    h = reporting
    await story(h.ctx)
    # Down from Friday to Thursday: Monday's digest and the 1 April report never went out.
    h.ctx.clock = moving_clock(at("2025-04-03T12:00"))
    periodic = h.firebell.periodic
    periodic.start()                        # APScheduler: catch-up runs at start-up
    try:
        deadline = time.monotonic() + 10
        while await _count(h, report_deliveries) < 22 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
    finally:
        await periodic.stop()
    assert await _count(h, report_deliveries, report_deliveries.c.period == "2025-W13") == 11
    assert await _count(h, report_deliveries, report_deliveries.c.period == "2025-03") == 11
    assert await periodic.catch_up() == 0
    await h.settle()
    assert len(_cards(h, "checkout", "Weekly incident digest")) == 1
    # The next Monday 09:00 CEST: the next week's digest.
    h.ctx.clock = moving_clock(at("2025-04-07T07:00"))
    assert await periodic.catch_up() == 11


async def test_report_stats_and_search_commands(reporting):
    h = reporting
    ids = await story(h.ctx)
    h.ctx.clock = moving_clock(at("2025-04-02T10:00"))

    def card_of(reply):
        (att,) = [a for a in reply.get("attachments") or [] if a["contentType"] == CARD]
        return att["content"]

    weekly = card_text(card_of(await h.say("incident report weekly checkout 2025-W13")))
    assert "Checkout" in weekly and "week 13" in weekly and "4 (+2 linked)" in weekly
    monthly = card_of(await h.say("incident report monthly"))
    assert "March 2025" in card_text(monthly) and "All teams" in card_text(monthly)
    assert any(e["type"] == "Image" for e in monthly["body"])
    stats = card_text(card_of(await h.say("incident stats checkout 2025-W13")))
    assert "Incidents" in stats and "4 (+2 linked)" in stats and "MTTR" in stats
    assert "not a team or a period" in (await h.say("incident stats sometime"))["text"]

    found = card_of(await h.say("incident search checkout latency"))
    # those with both words first; then (issue 14) those with one of them
    body = found["body"]
    cut = next(n for n, e in enumerate(body) if "Matching some of the words" in e.get("text", ""))
    refs = [e["items"][0]["text"] for e in body[:cut] if e.get("id", "").startswith("result")]
    assert [r.split("**")[1] for r in refs] == [f"INC-{ids['C']}", f"INC-{ids['B']}"]
    nothing = card_text(card_of(await h.say("incident search zebra unicorn")))
    assert "No incident" in nothing


async def test_a_new_incident_card_shows_similar_past_incidents(reporting):
    h = reporting
    ids = await story(h.ctx)
    reply = await h.say("incident declare checkout latency p99 above 2s")
    text = card_text(reply["attachments"][0]["content"])
    assert "Similar past incidents" in text
    assert f"INC-{ids['B']}" in text and f"INC-{ids['C']}" in text


async def test_incident_api_auth_filters_and_pages(reporting, database_url, connector):
    h = reporting
    await story(h.ctx)

    async def get(path, token=TOKEN):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with h.http.get(h.url + path, headers=headers) as resp:
            body = await resp.json() if resp.content_type == "application/json" else \
                await resp.text()
            return resp.status, body, resp.headers

    assert (await get("/api/incidents", token=None))[0] == 401
    assert (await get("/api/incidents", token="wrong"))[0] == 401
    status, body, _ = await get("/api/incidents")
    assert status == 200 and body["total"] == 11 and len(body["items"]) == 11
    first = body["items"][0]
    assert first["ref"] == "INC-1" and first["triggered_at"] == "2025-03-24T08:00:00Z"
    assert first["mttr_seconds"] == 1800 and first["impact_usd"] == 45 * 2500
    _, body, _ = await get("/api/incidents?team=payments&status=open")
    assert [i["status"] for i in body["items"]] == ["open"] and body["total"] == 1
    _, body, _ = await get("/api/incidents?since=2025-03-24T00:00:00Z&until=2025-03-27"
                           "&level=service-down,high-error-rate")
    assert body["total"] == 3
    pages = [await get(f"/api/incidents?limit=5&offset={o}") for o in (0, 5, 10)]
    ids = [i["id"] for _, b, _ in pages for i in b["items"]]
    assert ids == sorted(ids) and len(set(ids)) == 11
    assert (await get("/api/incidents?limit=5000"))[1]["limit"] == 1000
    assert (await get("/api/incidents?since=yesterday"))[0] == 400
    assert (await get("/api/incidents?limit=0"))[0] == 400
    status, text, headers = await get("/api/incidents.csv?team=checkout")
    lines = text.strip().splitlines()
    assert status == 200 and lines[0].startswith("id,ref,title,")
    assert headers["X-Total-Count"] == str(len(lines) - 1)

    off = await Harness(make_settings(database_url), connector).start()
    try:
        async with off.http.get(off.url + "/api/incidents",
                                headers={"Authorization": f"Bearer {TOKEN}"}) as resp:
            assert resp.status == 404
    finally:
        await off.stop()


async def test_reminders_repeat_until_the_rca_is_done_and_quiet_incidents_get_nudged(reporting):
    h = reporting
    ids = await story(h.ctx)
    settings = h.firebell.settings.reports
    h.ctx.clock = moving_clock(at("2025-03-31T08:00"))          # Monday 10:00 CEST
    sent = await send_reminders(h.ctx, settings)
    # D (checkout) and J (payments) are open with no update for hours.
    assert sent == {"postmortems": 1, "action_items": 1, "stale": 2}
    await h.settle()
    (pm_card,) = _cards(h, "checkout", "Postmortem overdue")
    assert "<at>Priya Raman</at>" in card_text(pm_card)
    assert pm_card["msteams"]["entities"][0]["mentioned"]["id"] == \
        "priya.raman@shopfront.example"
    (items,) = _cards(h, "checkout", "Action items overdue")
    assert "<at>Daniel Okafor</at>" in card_text(items) and "Add a canary" in card_text(items)
    mails = await h.smtp.wait_for_messages(2)
    assert {m.message["To"] for m in mails} == {"priya.raman@shopfront.example",
                                              "daniel.okafor@shopfront.example"}
    nudges = _cards(h, "payments", f"INC-{ids['J']} has had no update")
    assert len(nudges) == 1
    assert (await h.timeline(ids["J"]))[-1]["kind"] == "nudge"

    # Nothing again before the interval; the next reminder a day later; none once complete.
    assert await send_reminders(h.ctx, settings) == {"postmortems": 0, "action_items": 0,
                                                     "stale": 0}
    h.ctx.clock = moving_clock(at("2025-04-01T08:30"))
    assert (await send_reminders(h.ctx, settings))["postmortems"] == 1
    async with h.ctx.db.write() as conn:
        await pm_store.save(conn, ids["A"], {"summary": "done"}, complete=True,
                            now=h.ctx.now())
    h.ctx.clock = moving_clock(at("2025-04-02T09:00"))
    assert (await send_reminders(h.ctx, settings))["postmortems"] == 0
    # Saturday: people are not reminded at weekends (quiet incidents are still nudged).
    h.ctx.clock = moving_clock(at("2025-04-05T09:00"))
    assert (await send_reminders(h.ctx, settings))["action_items"] == 0


async def test_close_summary_lands_in_the_team_channel(reporting):
    h = reporting
    ids = await story(h.ctx)
    async with h.ctx.db.write() as conn:
        await pm_store.save(conn, ids["A"], {"summary": "Checkout was down",
                                             "root_cause": "An expired certificate"},
                            complete=True, now=h.ctx.now())
        incident = await store.get(conn, ids["A"])
        await queue_close_summary(h.ctx, conn, incident)
        await queue_close_summary(h.ctx, conn, incident)       # called twice: posted once
    h.firebell.worker.wake()
    await h.settle()
    (card,) = _cards(h, "checkout", f"INC-{ids['A']} closed")
    text = card_text(card)
    assert "An expired certificate" in text and "Time to resolve" in text
    assert "≈ $112,500" in text


async def test_search_walks_back_through_older_incidents_newest_first(harness):
    """Matches far apart in id (the PostgreSQL search looks at the newest ids, then runs of
    older id buckets): each found once, newest first."""
    from storage import search as index
    ctx = harness.ctx
    ids = [5, 15_000, 45_000, 95_000, 230_000]
    async with ctx.db.write() as conn:
        for n, incident_id in enumerate(ids):
            await store.insert(conn, {
                "id": incident_id, "source": "teams", "external_id": None,
                "title": f"Zebra crossing broken {n}", "service": "checkout-api",
                "team": "checkout", "level": "minor", "status": "open",
                "triggered_at": at("2025-03-24T08:00") + timedelta(minutes=n),
                "fingerprint": f"zebra-{n}", "correlated": True}, at("2025-03-24T08:00"))
            await timeline.note(conn, incident_id, at=at("2025-03-24T09:00"), kind="note",
                                text="rolled back the quagga release",
                                actor=Actor("Priya Raman", "teams"))
    async with ctx.db.read() as conn:
        assert await index.search(conn, "zebra", limit=10) == sorted(ids, reverse=True)
        assert await index.search(conn, "zebra", limit=2) == [230_000, 95_000]
        assert await index.search(conn, "quagga zebra", limit=10) == sorted(ids, reverse=True)
        assert await index.search(conn, "zebra okapi", limit=10) == []
        # Query syntax is never passed through: these are just the words "near" and "2".
        assert await index.search(conn, '")(*:^~ NEAR/2', limit=10) == []
