"""Maintenance windows through the running app: `incident maintenance` typed in Teams, a storm of
PagerDuty deliveries played during the window (stored, marked, announced nowhere: not one Teams
message), one summary card when it ends, an incident still firing then announced normally, a
held-back incident never a cascade parent of another team's, the catalog's recurring windows,
and the refusals. Payments (Mei Tanaka) owns payment-gateway; checkout-api calls it."""
import json
from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from handlers.incident.maintenance import close_out_due
from storage.schema import maintenance_windows, outbox
from tests.conftest import fixture_bytes
from tests.harness import card_text
from tests.reports.test_report_delivery import moving_clock

SERVICES = {"payment-gateway": "PPAY7GW", "checkout-api": "PCHK4PI", "catalog-db": "PCAT6DB"}


def _event(n: int, service: str, title: str, kind: str = "triggered", at=None) -> bytes:
    doc = json.loads(fixture_bytes("01-payment-gateway-triggered.json"))
    when = (at or datetime.now(timezone.utc)).isoformat().replace("+00:00", "Z")
    doc["event"].update(id=f"EV{n}-{kind}", event_type=f"incident.{kind}", occurred_at=when)
    doc["event"]["data"].update(id=f"PINC{n}", number=7000 + n, title=title, created_at=when,
                                status={"triggered": "triggered", "acknowledged": "acknowledged",
                                        "resolved": "resolved"}[kind],
                                service={"id": SERVICES[service], "summary": service,
                                         "type": "service_reference"})
    return json.dumps(doc).encode()


def _new_messages(h) -> list[dict]:
    """Messages Firebell posted on its own (cards, summaries): not replies to commands."""
    return [p for p in h.connector.posts if p["kind"] == "post"]


async def test_a_storm_during_a_window_posts_nothing_then_one_summary(harness):
    h = harness
    await h.subscribe("payments")
    await h.subscribe("checkout")
    reply = await h.say("incident maintenance payment-gateway 2h gateway upgrade", who="mei",
                        channel="payments")
    assert "**MW-1**" in reply["text"] and "incident maintenance end MW-1" in reply["text"]
    posts_before, updates_before = len(_new_messages(h)), len(h.connector.updates)

    for n in range(1, 41):                       # the storm: 40 alerts, acks and resolves
        await h.deliver(_event(n, "payment-gateway", f"payment-gateway: 5xx error rate {n}%"))
        if n % 3 == 0:
            await h.deliver(_event(n, "payment-gateway", f"payment-gateway: 5xx error rate {n}%",
                                  kind="acknowledged"))
    for n in range(1, 41):
        await h.deliver(_event(n, "payment-gateway", "recovered", kind="resolved"))
    await h.settle()

    assert len(_new_messages(h)) == posts_before            # 0 Teams posts during the window
    assert len(h.connector.updates) == updates_before       # ... and no card updates
    stored = await h.incidents()
    assert len(stored) == 40
    assert {(i.maintenance_id, i.correlated, i.status) for i in stored} == \
        {(1, False, "resolved")}
    assert any(e["kind"] == "maintenance" and "in maintenance MW-1 (gateway upgrade)" in e["text"]
               for e in await h.timeline(stored[0].id))
    listing = await h.say("incident maintenance list", who="priya", channel="checkout")
    assert "**MW-1** service payment-gateway" in listing["text"]
    assert "40 held back" in listing["text"]
    shown = await h.say("incident show INC-1", who="priya", channel="checkout")
    assert "In maintenance (MW-1)" in card_text(shown["attachments"][0]["content"])

    ended = await h.say("incident maintenance end MW-1", who="mei", channel="payments")
    assert "MW-1 ended" in ended["text"]
    await h.settle()
    (summary,) = _new_messages(h)[posts_before:]               # exactly one: the summary
    assert summary["conversation_id"].startswith("19:payments-incidents")
    text = card_text(summary["activity"]["attachments"][0]["content"])
    assert "Maintenance MW-1 is over" in text
    assert "40 alerts stored as incidents, 40 resolved during the window, 0 still open" in text
    assert "gateway upgrade" in text and "by Mei Tanaka" in text
    again = await h.say("incident maintenance end MW-1", who="mei", channel="payments")
    assert "MW-1 is already over" in again["text"]
    await h.settle()
    assert len(_new_messages(h)) == posts_before + 1


async def test_an_incident_still_firing_when_the_window_ends_is_announced(harness):
    h = harness
    await h.subscribe("payments")
    await h.say("incident maintenance payments 30m", who="mei", channel="payments")
    start = datetime.now(timezone.utc)
    await h.deliver(_event(1, "payment-gateway", "payment-gateway is down"))
    await h.deliver(_event(2, "payment-gateway", "payment-gateway: p99 latency 4 s"))
    await h.deliver(_event(2, "payment-gateway", "recovered", kind="resolved"))
    await h.settle()
    assert h.cards_in("payments") == []

    h.ctx.clock = moving_clock(start + timedelta(minutes=31))   # the window is over
    assert await close_out_due(h.ctx) == 1
    assert await close_out_due(h.ctx) == 0                      # once, whoever looks again
    await h.settle()
    cards = h.cards_in("payments")
    summary = next(c for c in cards if "Maintenance MW-1 is over" in card_text(c))
    assert "2 alerts stored as incidents, 1 resolved during the window, 1 still open" in \
        card_text(summary)
    assert [(a["title"], a["verb"], a["data"]) for a in summary["actions"]] == \
        [("Show INC-1", "show", {"incident": "INC-1"})]
    incident_cards = [c for c in cards if "payment-gateway is down" in card_text(c)
                      and c is not summary]
    assert len(incident_cards) == 1 and "OPEN" in card_text(incident_cards[0])
    assert (await h.incident(1)).correlated and not (await h.incident(2)).correlated
    assert len(cards) == 2

    status, _ = await h.send(h.card_click("show", {"incident": "INC-1"}, channel="payments",
                                          who="mei"))
    assert status == 200


async def test_a_held_back_incident_does_not_take_another_teams_card(harness):
    h = harness
    await h.subscribe("payments")
    await h.subscribe("checkout")
    await h.say("incident maintenance payment-gateway 1h", who="mei", channel="payments")
    await h.deliver(_event(1, "payment-gateway", "payment-gateway is down"))
    await h.settle()
    await h.deliver(_event(2, "checkout-api", "checkout errors"))   # downstream, not in maintenance
    await h.settle()
    checkout = await h.incident(2)
    assert (checkout.parent_id, checkout.maintenance_id, checkout.correlated) == (None, None, True)
    assert h.cards_in("payments") == []
    (card,) = h.cards_in("checkout")
    assert "checkout errors" in card_text(card) and "INC-1" not in card_text(card)


async def test_the_catalogs_recurring_window_holds_back_and_summarises(harness):
    """catalog-db-patching: catalog-db, Sundays 04:00 Europe/Amsterdam, 1h."""
    h = harness
    await h.subscribe("default", channel="general")
    sunday = datetime(2025, 3, 16, 3, 10, tzinfo=timezone.utc)      # 04:10 in Amsterdam
    h.ctx.clock = moving_clock(sunday)
    await h.deliver(_event(1, "catalog-db", "catalog-db: replication lag 40s", at=sunday))
    await h.settle()
    assert (await h.incident(1)).maintenance_id == 1 and h.cards_in("general") == []
    async with h.ctx.db.read() as conn:
        (row,) = (await conn.execute(select(maintenance_windows))).mappings().all()
    assert row["recurring_key"] == "catalog-db-patching@2025-03-16T03:00Z"
    assert row["reason"] == "weekly OS patching of the catalog database replicas"

    h.ctx.clock = moving_clock(sunday + timedelta(minutes=51))      # 05:01: over
    assert await close_out_due(h.ctx) == 1
    await h.settle()
    texts = [card_text(c) for c in h.cards_in("general")]
    assert any("Maintenance MW-1 is over" in t and "service catalog-db" in t for t in texts)
    assert any("catalog-db: replication lag 40s" in t and "OPEN" in t for t in texts)


async def test_who_may_and_bad_input(harness):
    h = harness
    refused = await h.say("incident maintenance payment-gateway 1h", who="priya")
    assert "only those who respond for payment-gateway" in refused["text"]
    assert "Sarah Kim" in refused["text"]                    # an incident commander may
    for text, answer in [
        ("incident maintenance", "Usage: `incident maintenance <service|team>"),
        ("incident maintenance payment-gateway", "How long should payment-gateway"),
        ("incident maintenance payment-gateway soon", "'soon' is not a duration"),
        ("incident maintenance payment-gateway until 25:00", "`until` takes a time"),
        ("incident maintenance payment-gateway 200h", "between 1 minute and 7 days"),
        ("incident maintenance nowhere 1h", "'nowhere' is neither a service nor a team"),
        ("incident maintenance end 3", "`end` takes the window's id"),
        ("incident maintenance end MW-99", "There is no maintenance window MW-99"),
    ]:
        reply = await h.say(text, who="mei", channel="payments")
        assert answer in reply["text"], (text, reply["text"])
    async with h.ctx.db.read() as conn:
        assert (await conn.execute(select(maintenance_windows))).first() is None
    assert "No maintenance window is on" in (await h.say("incident maintenance list"))["text"]

    started = await h.say("incident maintenance payments until 23:59", who="mei",
                          channel="payments")
    assert "**MW-1**: team Payments is in maintenance until 23:59" in started["text"]
    refused = await h.say("incident maintenance end MW-1", who="priya")
    assert "only those who respond for Payments" in refused["text"]
    assert "Maintenance windows on now" in (await h.say("incident maintenance list"))["text"]


async def test_an_incident_declared_in_teams_during_a_window_is_announced(harness):
    """The declarer already has its card: holding it back would freeze that card."""
    h = harness
    await h.subscribe("payments")
    await h.say("incident maintenance payments 1h", who="mei", channel="payments")
    await h.say("incident declare gateway refunds stuck service=payment-gateway", who="mei",
                channel="payments")
    await h.settle()
    incident = await h.incident(1)
    assert (incident.correlated, incident.maintenance_id) == (True, None)
    listing = await h.say("incident maintenance list", who="mei", channel="payments")
    assert "0 held back" in listing["text"]
    assert "Europe/Amsterdam" in listing["text"]


async def test_an_incident_whose_correlation_gave_up_stays_quiet_in_a_window(harness):
    """Correlation that keeps failing announces the incident on its own: not while a window
    covers it (the window's end announces what still fires)."""
    from handlers.incident.correlation import announce_undecided
    from storage.outbox import Job

    h = harness
    await h.subscribe("payments")
    await h.say("incident maintenance payment-gateway 2h gateway upgrade", who="mei",
                channel="payments")
    await h.deliver(_event(1, "payment-gateway", "payment-gateway: 5xx error rate 9%"))
    await h.settle()
    posts_before = len(_new_messages(h))
    (incident,) = await h.incidents()
    async with h.ctx.db.write() as conn:
        await announce_undecided(h.ctx, conn, Job(id=0, kind="correlate", payload={},
                                                  incident_id=incident.id, attempts=9,
                                                  conversation_id=None))
    await h.settle()
    assert len(_new_messages(h)) == posts_before
    after = await h.incident(incident.id)
    assert (after.correlated, after.maintenance_id) == (False, 1)
    assert "correlation_failed" not in [e["kind"] for e in await h.timeline(incident.id)]


async def test_closing_a_held_back_incident_tells_nobody(harness):
    h = harness
    await h.subscribe("payments")
    await h.say("incident maintenance payment-gateway 2h gateway upgrade", who="mei",
                channel="payments")
    await h.deliver(_event(1, "payment-gateway", "payment-gateway: canary slow"))
    await h.deliver(_event(1, "payment-gateway", "recovered", kind="resolved"))
    await h.settle()
    posts_before = len(_new_messages(h))
    closed = await h.say("incident close INC-1", who="mei", channel="payments")
    assert "closed" in closed["text"], closed["text"]
    await h.settle()
    assert len(_new_messages(h)) == posts_before   # no close summary in the channel
    async with h.ctx.db.read() as conn:
        keys = (await conn.execute(select(outbox.c.once_key).where(
            outbox.c.incident_id == 1))).scalars().all()
    assert not [k for k in keys if k and k.startswith(("close_summary:", "email:closed:"))]

