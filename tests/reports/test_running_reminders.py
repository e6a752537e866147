"""Reminders while an incident runs, and stakeholder updates in the weekly digest, through the
running app on a clock the test turns: a postmortem-level incident with no commander after 10
minutes gets one reminder @mentioning the on-call; stakeholders who have not heard from an
incident for its level's cadence (catalog `update_every`) get its commander (else the on-call)
reminded, once per cadence, until it is resolved."""
import asyncio
from datetime import timedelta

import pytest

from handlers.reports.compile import compile_report
from handlers.reports.running import remind_running
from incidents.periods import parse_period
from mail.reports import weekly_email
from tests.harness import card_text
from tests.reports.test_report_delivery import moving_clock
from tests.reports.test_report_figures import at

T0 = at("2025-03-31T08:00")   # a Monday
PRIYA = "priya.raman@shopfront.example"


@pytest.fixture
async def h(harness):
    harness.ctx.clock = moving_clock(T0)
    await harness.subscribe("checkout")
    return harness


def turn(h, minutes: float) -> None:
    h.ctx.clock = moving_clock(T0 + timedelta(minutes=minutes))


def posted(h, heading: str) -> list[dict]:
    return [c for c in h.cards_in("checkout") if heading in card_text(c)]


async def declare(h, text: str) -> None:
    await h.say(f"incident declare {text}", channel="checkout")
    await h.settle()


async def test_no_commander_after_ten_minutes_one_reminder_mentioning_the_on_call(h):
    await declare(h, "checkout is down service=checkout-api")
    await declare(h, "checkout canary flaky service=checkout-api level=minor")
    await declare(h, "checkout errors service=checkout-api level=high-error-rate")
    await h.say("incident ack INC-3", channel="checkout")     # Priya, a responder: commander
    turn(h, 9)
    assert (await remind_running(h.ctx))["commander"] == 0
    turn(h, 11)
    both = await asyncio.gather(remind_running(h.ctx), remind_running(h.ctx))  # two replicas
    assert sum(sent["commander"] for sent in both) == 1
    await h.settle()
    (card,) = posted(h, "has no incident commander")
    assert "INC-1 has no incident commander" in card_text(card)
    assert "<at>Priya Raman</at>" in card_text(card)
    assert card["msteams"]["entities"][0]["mentioned"]["id"] == PRIYA
    assert (await h.timeline(1))[-1]["text"] == ("no incident commander after 10 min: "
                                                 "reminded Priya Raman")
    turn(h, 40)
    assert (await remind_running(h.ctx))["commander"] == 0
    await h.settle()
    assert len(posted(h, "has no incident commander")) == 1


async def test_an_overdue_update_reminds_once_per_cadence_until_resolved(h):
    await declare(h, "checkout is down service=checkout-api")   # service-down: every 30 min
    text = card_text(posted(h, "Triggered")[0])
    assert "Next stakeholder update due" in text
    turn(h, 29)
    assert (await remind_running(h.ctx))["updates"] == 0
    turn(h, 31)
    assert (await remind_running(h.ctx))["updates"] == 1
    assert (await remind_running(h.ctx))["updates"] == 0          # once per cadence
    await h.settle()
    (first,) = posted(h, "stakeholders are waiting")
    assert "<at>Priya Raman</at> (on call): none was posted in the 31 min" in card_text(first)
    assert "every 30 min" in card_text(first)
    assert "overdue" in card_text([c for c in posted(h, "Triggered")][0])
    turn(h, 45)
    assert (await remind_running(h.ctx))["updates"] == 0
    turn(h, 61)
    assert (await remind_running(h.ctx))["updates"] == 1          # the next cadence
    # A commander takes over and posts an update: the count starts again from it.
    await h.say("incident assign INC-1 @Daniel Okafor", channel="checkout")
    turn(h, 62)
    await h.say("incident update INC-1 identified Gateway timeouts", channel="checkout")
    turn(h, 91)
    assert (await remind_running(h.ctx))["updates"] == 0
    turn(h, 93)
    assert (await remind_running(h.ctx))["updates"] == 1
    await h.settle()
    latest = [c for c in posted(h, "stakeholders are waiting")][-1]
    assert "<at>Daniel Okafor</at> (incident commander): the last one was 31 min ago" in \
        card_text(latest)
    assert latest["msteams"]["entities"][0]["mentioned"]["id"] == \
        "daniel.okafor@shopfront.example"
    # Resolved: no more.
    await h.say("incident resolve INC-1", channel="checkout")
    turn(h, 300)
    assert await remind_running(h.ctx) == {"commander": 0, "updates": 0, "unacknowledged": 0}
    await h.settle()
    assert len(posted(h, "stakeholders are waiting")) == 3


async def test_levels_without_a_cadence_are_never_reminded(h):
    await declare(h, "checkout slow service=checkout-api level=high-latency")
    await h.say("incident assign INC-1 @Priya Raman", channel="checkout")
    turn(h, 600)
    assert await remind_running(h.ctx) == {"commander": 0, "updates": 0, "unacknowledged": 0}


async def test_the_weekly_digest_shows_update_counts_and_the_median_gap(h):
    await declare(h, "checkout is down service=checkout-api")
    for minutes, phase in ((10, "investigating"), (40, "identified"), (100, "monitoring")):
        turn(h, minutes)
        await h.say(f"incident update INC-1 {phase} step at {minutes} min", channel="checkout")
    await declare(h, "checkout errors service=checkout-api level=high-error-rate")
    await declare(h, "checkout canary flaky service=checkout-api level=minor")
    tz = h.ctx.catalog.timezone
    compiled = await compile_report(h.ctx, "weekly", now=at("2025-04-07T09:00"),
                                    period=parse_period("2025-W14", at("2025-04-07T09:00"), tz))
    text = card_text(compiled.card("checkout"))
    assert "Stakeholder updates" in text
    assert "INC-1 · 3 updates · median gap 45 min — checkout is down" in text
    assert "INC-2 · 0 updates · median gap — — checkout errors" in text
    assert "INC-3" not in text.split("Stakeholder updates")[1]  # minor: no cadence, no updates
    assert "INC-1 · 3 updates" in card_text(compiled.card("company"))
    _, plain, html = weekly_email(compiled.view("checkout"))
    assert "Stakeholder updates" in plain and "INC-1 | 3 | 45 min | checkout is down" in plain


async def test_silence_is_escalated_once_mentioning_on_call_and_standby_unless_acknowledged(h):
    """levels: ack_within: {service-down: 5m} in the example catalog."""
    await declare(h, "checkout is down service=checkout-api")                # INC-1
    await declare(h, "shipping is down service=shipping-api")               # INC-2: acked in time
    await declare(h, "checkout errors service=checkout-api level=high-error-rate")  # no ack_within
    turn(h, 3)
    await h.say("incident ack INC-2", channel="checkout", who="tom")
    turn(h, 4.5)
    assert (await remind_running(h.ctx))["unacknowledged"] == 0
    turn(h, 5.5)
    both = await asyncio.gather(remind_running(h.ctx), remind_running(h.ctx))  # two replicas
    assert sum(sent["unacknowledged"] for sent in both) == 1
    await h.settle()
    (card,) = posted(h, "is not acknowledged")
    text = card_text(card)
    assert "INC-1 is not acknowledged" in text and "service-down: within 5 min" in text
    assert "<at>Priya Raman</at> and <at>Daniel Okafor</at>: please look now" in text
    assert [e["mentioned"]["id"] for e in card["msteams"]["entities"]] == \
        [PRIYA, "daniel.okafor@shopfront.example"]
    assert (await h.timeline(1))[-1]["text"] == ("not acknowledged within 5 min at service-down: "
                                                 "reminded Priya Raman and Daniel Okafor")
    turn(h, 60)
    assert (await remind_running(h.ctx))["unacknowledged"] == 0             # one reminder only
    await h.settle()
    assert len(posted(h, "is not acknowledged")) == 1


async def test_an_unknown_level_in_ack_within_stops_start_up():
    from incidents.catalog import CatalogError, parse_catalog
    with pytest.raises(CatalogError, match=r"levels.ack_within: unknown level 'sev-1'"):
        parse_catalog({"teams": {}, "services": [], "levels": {"ack_within": {"sev-1": "5m"}}})
    with pytest.raises(CatalogError, match=r"levels.ack_within.service-down: 'soon'"):
        parse_catalog({"teams": {}, "services": [],
                       "levels": {"ack_within": {"service-down": "soon"}}})
