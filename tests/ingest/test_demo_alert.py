"""The README's demo alert (issue 14 part 9): the PagerDuty fixture is sent as if it happened now, signed
again after its times were rewritten, so the card's impact "so far" is minutes of revenue, not years
("≈ $2,263,365,566 so far" from a 2025 fixture replayed later)."""
import re
from datetime import datetime, timezone

from tests.e2e.firebell_service import demo_alert
from tests.harness import card_text

FIXTURE = "01-payment-gateway-triggered.json"


async def test_the_demo_alert_happens_now_and_its_impact_is_sane(harness):
    h = harness
    await h.subscribe("payments")
    sent_at = datetime.now(timezone.utc)
    body, headers = demo_alert(FIXTURE)
    resp = await h.pagerduty(FIXTURE, body=body, headers=headers)
    assert resp.status in (200, 202)
    await h.settle()
    (incident,) = await h.incidents()
    assert abs((incident.triggered_at - sent_at).total_seconds()) < 60
    text = card_text(h.cards_in("payments")[-1])
    impact = re.search(r"≈ \$([\d,]+) so far", text)
    # payment-gateway's revenue per minute times a minute or two, not years of it
    service = h.ctx.catalog.service("payment-gateway")
    assert impact and int(impact.group(1).replace(",", "")) <= 5 * service.revenue_per_minute_usd

    # sent again: a new event (a fresh id), the same PagerDuty incident, no second incident
    body, headers = demo_alert(FIXTURE)
    assert (await h.pagerduty(FIXTURE, body=body, headers=headers)).status in (200, 202)
    await h.settle()
    assert len(await h.incidents()) == 1


async def test_a_demo_alert_changed_after_signing_is_refused(harness):
    h = harness
    body, headers = demo_alert(FIXTURE)
    resp = await h.pagerduty(FIXTURE, body=body.replace(b"payment-gateway", b"payment-gatewax", 1),
                             headers=headers)
    assert resp.status == 401 and await h.incidents() == []
