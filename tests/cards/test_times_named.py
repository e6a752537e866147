"""Issue #14 part 5 outside cards: e-mails, the postmortem page and its Markdown export show
times in the catalog's time zone with the zone named (Europe/Amsterdam in the example catalog)."""
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from incidents.catalog import load_catalog
from incidents.clock import zoned
from incidents.model import Incident
from incidents.postmortem import timeline_text
from mail.incident import IncidentMail, closed_mail, triggered_mail
from mail.reminders import postmortem_reminder_email
from mail.updates import stakeholder_update_email
from pages.postmortem import postmortem_html, postmortem_markdown
from tests.conftest import CATALOG
from cards.reminder import Who

AMS = load_catalog(CATALOG).timezone
T0 = datetime(2025, 3, 14, 14, 0, 7, tzinfo=timezone.utc)   # 15:00 in Amsterdam (CET)
SUMMER = datetime(2025, 7, 1, 8, 30, tzinfo=timezone.utc)   # 10:30 CEST


def _incident(**kw):
    values = dict(id=1, source="pagerduty", external_id="P1", title="payment-gateway down",
                  service="payment-gateway", team="payments", level="service-down",
                  status="resolved", triggered_at=T0, fingerprint="f", version=1, created_at=T0,
                  updated_at=T0, resolved_at=T0 + timedelta(minutes=31))
    values.update(kw)
    return Incident(**values)


def test_the_catalog_zone_is_named_in_summer_and_winter():
    assert AMS == ZoneInfo("Europe/Amsterdam")
    assert zoned(T0, AMS) == "2025-03-14 15:00 CET"
    assert zoned(SUMMER, AMS) == "2025-07-01 10:30 CEST"
    assert zoned(T0.replace(tzinfo=None), AMS) == "2025-03-14 15:00 CET"  # naive is UTC


def test_incident_emails_name_the_zone():
    mail = IncidentMail(incident=_incident(), team_name="Payments", teams_link=None,
                        page_link=None, timezone=AMS)
    for build in (triggered_mail, closed_mail):
        _, text, html = build(mail)
        assert "Triggered: 2025-03-14 15:00 CET" in text and "15:31 CET" in text
        assert "UTC" not in text and "UTC" not in html


def test_update_and_reminder_emails_name_the_zone():
    _, text, _ = stakeholder_update_email(
        _incident(), phase="investigating", text="rolling back", author="Mei Tanaka",
        posted_at=SUMMER, number=1, team_name="Payments", teams_link=None, bridge_url=None,
        zone=AMS)
    assert "Posted: 2025-07-01 10:30 CEST" in text
    _, text, _ = postmortem_reminder_email(1, "payment-gateway down",
                                           Who("mei.tanaka@shopfront.example", "Mei Tanaka"),
                                           T0, [], None, zone=AMS)
    assert "was due 2025-03-14 15:00 CET." in text


def test_postmortem_page_and_export_name_the_zone():
    entries = [{"at": T0, "text": "Triggered in PagerDuty #1207", "actor": "PagerDuty"}]
    rca = {"timeline": timeline_text(entries, AMS)}  # the page's one timeline: the RCA's
    common = dict(missing=[], impact_usd=None, service_name="payment-gateway",
                  team_name="Payments", zone=AMS)
    page = postmortem_html(_incident(), rca, [], jira={}, **common)
    export = postmortem_markdown(_incident(), rca, [], **common)
    for out in (page, export):
        assert "2025-03-14 15:00 CET" in out and "2025-03-14 15:31 CET" in out
        assert "UTC" not in out
