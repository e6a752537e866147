"""Every Adaptive Card Firebell can send, built by the real card builders from realistic state (and the worst
realistic cases: longest texts, most children, largest timeline, 12 action items, 25 list rows).

    from tests.e2e.firebell_cards import all_cards
    cards = all_cards()            # {"incident-open-service-down": {...card JSON...}, ...}

Used by test_firebell_cards.py (through the official renderer) and handy by hand:

    python tests/e2e/firebell_cards.py out.json     # then harness.render_cards() / render_cards.mjs on it

Builders that another part of Firebell adds later (digest, report, reminder, search, stats, summary) are
included when their module exists; ``missing_builders()`` names the ones that do not.
"""

from __future__ import annotations

import importlib
import json
import sys
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

if __package__ in (None, ""):  # run as a script
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from cards.declare import declare_form, message_declare_form
from cards.help import help_card
import handlers.commands  # noqa: F401  (registers every command)
from handlers.commands.registry import help_sections
from cards.cascade import CascadeView, cascade_child_card
from cards.incident import Delivery, IncidentView, Paged, incident_card
from cards.listing import ListRow, incident_list_card
from cards.notice import notice_card
from cards.oncall import oncall_card
from cards.rca import postmortem_card, rca_form
from incidents.catalog import load_catalog
from incidents.model import Incident
from incidents.postmortem import ACTION_TITLE_LIMIT, FIELD_LIMIT, RCA_SECTIONS, missing

from tests.e2e.firebell_service import CATALOG

UTC = timezone.utc
T0 = datetime(2025, 3, 14, 9, 2, 11, tzinfo=UTC)
BASE = "https://firebell.shopfront.example"
PM_TOKEN = "Qm3v8Xk_2pLr-9sTzW4yBn6cHd1eFa7J"  # a postmortem link token (secrets.token_urlsafe(24))
LONG_TITLE = ("checkout-api: 5xx error rate above 25% for 10 minutes on POST /v2/orders in prod-eu-west-1 and "
              "prod-eu-central-1 after release 1.8.3; payment authorisations timing out at the gateway (p99 "
              "12.4 s), orders queued")


WAIVER = ("waived by Sarah Kim on {{DATE(2025-03-14T09:40:00Z, SHORT)}} {{TIME(2025-03-14T09:40:00Z)}}: " + "a synthetic probe paged, no customer saw "
          "an error; the level was lowered to minor. " * 8)[:560]


def _catalog():
    return load_catalog(CATALOG)


def incident(n: int = 7, **kw: Any) -> Incident:
    values: dict[str, Any] = dict(
        id=n, source="teams", external_id=None, title="checkout is down", service="checkout-api",
        team="checkout", level="service-down", status="open", triggered_at=T0,
        fingerprint=f"fp-{n}", version=3, created_at=T0, updated_at=T0, correlated=True,
        declared_by="Priya Raman")
    values.update(kw)
    return Incident(**values)


def pagerduty_incident(n: int = 12, **kw: Any) -> Incident:
    values: dict[str, Any] = dict(
        source="pagerduty", external_id="Q1ZP3ABCDEF", pd_number=1207,
        title="payment-gateway: 0/6 pods ready, health checks failing in prod-eu-west-1",
        service="payment-gateway", team="payments", priority="P1", urgency="high",
        html_url="https://shopfront.pagerduty.com/incidents/Q1ZP3ABCDEF",
        conference_url="https://teams.microsoft.com/l/meetup-join/19%3ameeting_abc%40thread.v2/0")
    values.update(kw)
    return incident(n, **values)


def _view(i: Incident, **kw: Any) -> IncidentView:
    catalog = _catalog()
    service = catalog.service(i.service)
    defaults: dict[str, Any] = dict(
        incident=i, levels=catalog.levels.levels,
        team_name=(catalog.team(i.team).name if catalog.team(i.team) else i.team),
        runbook=service.runbook if service else None,
        oncall=(service.primary, catalog.display_name(service.primary)) if service and service.primary else None,
        needs_postmortem=catalog.levels.needs_postmortem_for(i.level),
        impact_usd=(service.revenue_per_minute_usd * 23) if service else None)
    defaults.update(kw)
    return IncidentView(**defaults)


def _timeline(count: int, *, text_chars: int = 120) -> list[dict[str, Any]]:
    kinds = ["note", "pagerduty", "level", "acknowledged", "note", "annotated"]
    people = ["Priya Raman", "Daniel Okafor", None, "Sarah Kim", "Mei Tanaka"]
    out = []
    for k in range(count):
        base = f"{kinds[k % len(kinds)]} #{k}: " + ("rolled back pod checkout-api-7f9c; error rate falling, "
                                                      "watching the payment-gateway p99 and the order queue " * 40)
        out.append({"at": T0 + timedelta(minutes=3 * k), "kind": kinds[k % len(kinds)],
                    "text": base[:text_chars], "actor": people[k % len(people)], "via": "teams"})
    return out


def _deliveries(ref: str) -> list[Delivery]:
    return [
        Delivery("JIRA", f"failed (JIRA create issue: HTTP 503 Service Unavailable); /incident retry {ref}", True),
        Delivery("War room", "failed (Graph create chat: HTTP 429 Too Many Requests), retrying", True,
                 retry_at=T0 + timedelta(minutes=39)),
        Delivery("E-mail", "failed (SMTP: connection refused); /incident retry " + ref, True),
        Delivery("PagerDuty", "failed (PagerDuty update incident: HTTP 403 Forbidden); /incident retry " + ref, True),
    ]


def incident_cards() -> dict[str, dict]:
    catalog = _catalog()
    cards: dict[str, dict] = {}
    # every status x level (the live card as posted)
    for level in catalog.levels.levels:
        for status in ("open", "resolved", "closed"):
            extra: dict[str, Any] = {}
            if status != "open":
                extra.update(resolved_at=T0 + timedelta(minutes=31), acknowledged_by="Priya Raman",
                             acknowledged_at=T0 + timedelta(minutes=2),
                             first_acknowledged_at=T0 + timedelta(minutes=2),
                             commander="priya.raman@shopfront.example")
            if status == "closed":
                extra["closed_at"] = T0 + timedelta(days=2)
            i = incident(level=level, status=status, **extra)
            if status != "open":  # every fact the card can show once it is over
                extra_view = dict(resolved_by="Priya Raman", postmortem_owner="Priya Raman",
                                  postmortem_due=T0 + timedelta(days=5))
            else:
                extra_view = {}
            view = _view(i, **extra_view,
                         postmortem_missing=(["summary", "root cause",
                                              "at least one action item with an owner and a due date"]
                                             if status == "resolved" and level != "minor" else []))
            cards[f"incident-{status}-{level}"] = incident_card(view)
    ack = incident(acknowledged_by="Priya Raman", acknowledged_at=T0 + timedelta(minutes=2),
                   first_acknowledged_at=T0 + timedelta(minutes=2), commander="priya.raman@shopfront.example")
    cards["incident-acknowledged"] = incident_card(_view(ack))
    cards["incident-private"] = incident_card(_view(incident(8, title="payroll export leaks",
                                                             private=True)))
    # lowered after it needed a postmortem: still required ("To close:"), then waived
    lowered = incident(level="minor", status="resolved", postmortem_required=True,
                       resolved_at=T0 + timedelta(minutes=31), acknowledged_by="Guest User")
    cards["incident-lowered-postmortem-required"] = incident_card(_view(
        lowered, needs_postmortem=True, postmortem_missing=["summary", "root cause"]))
    cards["incident-postmortem-waived"] = incident_card(_view(
        lowered, needs_postmortem=True, postmortem_waiver=WAIVER))

    root = pagerduty_incident(12)
    dup = pagerduty_incident(13, parent_id=12, link_kind="duplicate", link_by="firebell",
                             link_reason="same fingerprint as INC-12 within 30 min (payment-gateway)")
    cards["incident-child-duplicate"] = incident_card(_view(dup, parent=root))
    cascade = incident(14, title="checkout-api: 5xx above 25% on POST /v2/orders", parent_id=12,
                       link_kind="cascade", link_by="firebell",
                       link_reason=("checkout-api calls payment-gateway (down since 09:00); started 2 min later; "
                                    "likely a symptom of INC-12"))
    cards["incident-child-cascade"] = incident_card(_view(cascade, parent=root))
    cards["incident-child-cascade-root-resolved"] = incident_card(_view(
        cascade, parent=replace(root, status="resolved", resolved_at=T0 + timedelta(minutes=40))))
    # the compact card a cascade child gets in its own team's channel (issue #14 part 1)
    cards["cascade-child-compact"] = cascade_child_card(CascadeView(cascade, root, "Payments"))
    cards["cascade-child-compact-longest-root-resolved"] = cascade_child_card(CascadeView(
        replace(cascade, title=LONG_TITLE, acknowledged_by="Priya Raman", link_reason=LONG_TITLE),
        replace(root, title=LONG_TITLE + " " + LONG_TITLE, status="resolved", acknowledged_by="Mei Tanaka"),
        "Payments and Ledger Platform Engineering"))
    # every fact at once: declared by PagerDuty's user, acknowledged, resolved, postmortem owner, standby
    cards["incident-every-fact"] = incident_card(_view(
        replace(root, status="resolved", acknowledged_by="Mei Tanaka", acknowledged_at=T0 + timedelta(minutes=4),
                resolved_at=T0 + timedelta(hours=2, minutes=9)),
        declared_by="Tom Brennan (in PagerDuty)", resolved_by="Mei Tanaka", standby="Sven Lindqvist",
        postmortem_owner="Mei Tanaka", postmortem_due=T0 + timedelta(days=5),
        postmortem_missing=["summary", "root cause"], needs_postmortem=True, timeline=_timeline(6)))

    # the fullest live card: long title, many children, every link, failures, notices, similar incidents
    services = list(catalog.services)
    children = ([pagerduty_incident(100 + k, parent_id=12, link_kind="duplicate") for k in range(14)]
                + [incident(200 + k, service=services[k % len(services)], parent_id=12, link_kind="cascade",
                            title=f"{services[k % len(services)]} errors") for k in range(20)])
    busy = replace(root, title=LONG_TITLE + " " + LONG_TITLE, acknowledged_by="Mei Tanaka",
                   commander="sarah.kim@shopfront.example", recurrence_of=3)
    full = _view(busy, children=children,
                 impacted_services=list(dict.fromkeys(c.service for c in children if c.link_kind == "cascade")),
                 links=[("War room", "https://teams.microsoft.com/l/chat/19%3a7b1c2d3e4f%40thread.v2/0"),
                        ("Postmortem", f"{BASE}/postmortems/{PM_TOKEN}"),
                        ("PAY-482", "https://shopfront.atlassian.net/browse/PAY-482")],
                 deliveries=_deliveries("INC-12"),
                 similar=[incident(k, title=LONG_TITLE, status="closed") for k in (3, 5, 9)],
                 running=running_state(overdue=True))
    cards["incident-root-many-children-links-failures"] = incident_card(full)
    # the `show` view: with its timeline, an ordinary one and the largest realistic one
    cards["incident-show-timeline"] = incident_card(_view(ack, timeline=_timeline(14)))
    cards["incident-show-largest-timeline"] = incident_card(replace(full, timeline=_timeline(600, text_chars=500)))
    # running it: bridge (ours and PagerDuty's), roles, the latest stakeholder update, the More forms
    cards["incident-running-bridge-roles-update"] = incident_card(_view(root, running=running_state()))
    cards["incident-running-update-overdue"] = incident_card(_view(ack, running=running_state(overdue=True)))
    cards["incident-running-open-bridge"] = incident_card(_view(incident(8, level="minor"), running=running_state(
        bridge=False, roles=False, update=False)))
    cards["incident-running-resolved"] = incident_card(_view(replace(root, status="resolved",
                                                                     resolved_at=T0 + timedelta(minutes=40)),
                                                             running=running_state(due=False)))
    return cards


def running_state(*, overdue: bool = False, bridge: bool = True, roles: bool = True, update: bool = True,
                  due: bool = True):
    """What the card shows about running an incident, at its fullest: 30 people on the role form, the longest
    update text, every role held."""
    from cards.running import LatestUpdate, Running
    from incidents.updates import TEXT_LIMIT

    catalog = _catalog()
    people = [(p.email, p.name) for p in catalog.people.values()]
    people += [(f"responder.{k}@shopfront.example", f"Responder Number {k:02d} with a long name") for k in range(30)]
    text = ("Payments are failing for EU shoppers; we rolled back release 1.8.3 and the error rate is falling. "
            "Next update when the queue has drained. “é”, ✓, 日本. " * 20)[:TEXT_LIMIT]
    return Running(
        bridge_url=("https://teams.microsoft.com/l/meetup-join/19%3ameeting_NzQ0ZTY4YjgtYjM1Ni00%40thread.v2/0"
                    "?context=%7b%22Tid%22%3a%2211111111-2222-3333-4444-555555555555%22%7d") if bridge else None,
        can_open_bridge=not bridge,
        roles=[("communications", "Tom Brennan"), ("scribe", "Daniel Okafor"),
               ("customer-liaison", "Noah Bergström")] if roles else [],
        latest_update=LatestUpdate("identified", text, "Mei Tanaka", T0 + timedelta(minutes=20)) if update else None,
        update_count=7 if update else 0,
        next_update_due=T0 + timedelta(minutes=50) if due else None, update_overdue=overdue,
        role_choices=("commander", *catalog.roles), people=people[:30])


def _rca_text(label: str, limit: int) -> str:
    text = f"{label}: " + ("Release 1.8.3 removed the client-side timeout to payment-gateway; under load the "
                           "checkout pods exhausted their worker pools — “é”, ✓, 日本. " * 80)
    return text[:limit]


def rca_cards() -> dict[str, dict]:
    pm_incident = incident(7, level="high-error-rate", status="resolved", resolved_at=T0 + timedelta(minutes=31),
                           commander="priya.raman@shopfront.example")
    page = f"{BASE}/postmortems/{PM_TOKEN}"
    full = {field: _rca_text(label, FIELD_LIMIT) for field, label in RCA_SECTIONS}
    full["impact_minutes"] = 31
    people = [p.email for p in _catalog().people.values()]
    items = [{"id": 40 + k, "title": _rca_text(f"Action {k + 1}", ACTION_TITLE_LIMIT), "owner": people[k % len(people)],
              "due_date": date(2025, 3, 21) + timedelta(days=k), "jira_key": f"CHK-{310 + k}",
              "jira_status": "In Progress" if k % 3 else None, "jira_done": k % 4 == 0} for k in range(12)]
    started = {"timeline": "09:02 triggered in Teams\n09:04 acknowledged by Priya Raman\n09:33 resolved"}
    errors = {"item_0_owner": "action 1: owner `nobody here` is not an e-mail address or a person in the catalog",
              "item_0_due": "action 1: due date must look like 2025-03-21",
              "summary": f"Summary is over {FIELD_LIMIT} characters"}
    # The owner picker's choices: the team, responders and role holders (at most 10, as the form offers).
    names = {p.email: p.name for p in _catalog().people.values()}
    choices = [(email, names[email]) for email in people[:10]]
    # Not the Teams variant (`choices.data`, Teams' typeahead): it is an Adaptive Cards 1.6 property that Teams
    # honours in 1.5 cards and the SDK at 1.5 reports as unsupported; tests/commands/test_rca_form.py covers it.
    cards = {
        "rca-form-empty": rca_form(pm_incident, started, [], page_url=page, impact_minutes=31, people=choices),
        "rca-form-full-12-items": rca_form(pm_incident, full, items, page_url=page, impact_minutes=31,
                                           people=choices, timeline_through=1234),
        "rca-form-errors": rca_form(pm_incident, {**started, "summary": "pods crashed"}, [], errors=errors,
                                    page_url=page, impact_minutes=31, people=choices),
        "postmortem-summary-draft": postmortem_card(pm_incident, {**started, "summary": "pods crashed"}, [],
                                                    missing=missing({"summary": "pods crashed"}, []),
                                                    page_url=page),
        "postmortem-summary-complete": postmortem_card(pm_incident, full, items, missing=[], page_url=page,
                                                       impact_usd=77_500.0,
                                                       jira_url="https://shopfront.atlassian.net/browse/CHK-301"),
    }
    return cards


def everyday_cards() -> dict[str, dict]:
    catalog = _catalog()
    services, levels = list(catalog.services), catalog.levels.levels
    rows = [incident(100 - k, title=LONG_TITLE, service=services[k % len(services)], level=levels[k % len(levels)],
                     status=("open", "resolved", "closed")[k % 3], parent_id=(60 if k % 5 == 4 else None),
                     triggered_at=T0 - timedelta(hours=k)) for k in range(25)]
    name = catalog.display_name
    oncall_rows = [(s.name, name(s.primary) or "—", name(s.standby) or "—") for s in catalog.services.values()]
    standby = [(role, name(catalog.standby.on_standby(role, T0)) or "—") for role in catalog.standby.roles]
    error = ("`checkout-apii` is not a service in the catalog. Did you mean checkout-api? Known services: "
             + ", ".join(services) + ".")
    return {
        "list-25-rows": incident_list_card(
            [ListRow(replace(r, parent_id=None, acknowledged_at=T0 if k % 2 else None),
                     team_name=catalog.team_name(r.team), children={"cascade": k % 3, "duplicate": k % 4},
                     acknowledged_by="Priya Raman" if k % 2 else None) for k, r in enumerate(rows)],
            heading="All incidents (137)", total=137, now=T0 + timedelta(days=2)),
        "list-empty": incident_list_card([], heading="Open incidents for Checkout (0)", total=0, now=T0),
        "help": help_card(help_sections(), levels),
        "help-welcome": help_card(help_sections(), levels,
                                  note="Hi! I'm Firebell. Here is what I can do."),
        "declare-form": declare_form(services, levels),
        "declare-form-error": declare_form(services, levels, title="checkout is down " * 12, error=error),
        "declare-form-private": declare_form(services, levels, title="payroll export leaks", private=True),
        "dialog-declare-from-message": message_declare_form(
            services, levels, title="Customers say the **cart** spins forever since 10:02.",
            quote="Customers say the **cart** spins forever since 10:02. <b>Orders</b> are failing. " * 30,
            author="Mei [Tanaka](https://x.example)", service="checkout-api"),
        "dialog-declare-from-message-error": message_declare_form(
            services, levels, title="", quote="lunch is here", author=None, service=None, private=True,
            error="A short title is required: what is broken?"),
        "notice-ok": notice_card("✅ INC-7 acknowledged by Priya Raman.", ok=True),
        "notice-error": notice_card("INC-7 cannot be closed yet: its postmortem is incomplete (missing: summary; "
                                    "root cause; at least one action item with an owner and a due date).",
                                    ok=False, hint="Type `incident rca INC-7` to fill in the RCA."),
        "oncall-all": oncall_card("On call now", oncall_rows, standby, "the catalog's on-call and weekly standby "
                                                                      "rotations"),
        "oncall-team": oncall_card("On call now for Checkout", oncall_rows[1:2], standby, "the catalog"),
        **status_cards(),
    }


def status_cards() -> dict[str, dict]:
    from cards.status import StatusRow, StatusSection, status_card

    systems = StatusSection("Outside systems", [
        StatusRow("Microsoft Graph", "configured (war rooms)"),
        StatusRow("JIRA", "not configured, so no postmortem and action-item tasks: set JIRA_URL, "
                          "JIRA_EMAIL, JIRA_API_TOKEN")])
    parked = StatusSection("Parked follow-ups", [
        StatusRow(f"jira_action_item · INC-{n}", "JIRA create issue: HTTP 400 " + "x" * 300, problem=True)
        for n in range(5)])
    healthy = StatusSection("Parked follow-ups", [], note="Nothing parked: every follow-up went out.")
    digests = StatusSection("Digests", [StatusRow("Last weekly", "2025-W11 to channel:checkout, "
                                                                  "2025-03-17 08:00 UTC"),
                                        StatusRow("Last monthly", "none yet")])
    bridge = StatusSection("Meeting bridge", [StatusRow(
        "Teams meeting", "not configured, so no meeting bridge: set FIREBELL_MEETING_ORGANIZER (the object id or "
                         "UPN of the user whose Teams meetings the bridges are; Graph needs OnlineMeetings.ReadWrite"
                         ".All and an application access policy granted to that user)")])
    return {"status-problems": status_card([systems, bridge, parked, digests]),
            "status-healthy": status_card([systems, healthy, digests])}


def paging_and_heartbeat_cards() -> dict[str, dict]:
    """`incident page` on the card (every state of a page, a failing one, the most pages a card shows, with the
    longest names), a heartbeat's incident, and `incident status` with its Heartbeats section."""
    from cards.status import StatusRow, StatusSection, status_card

    states = [Paged("Data Platform", "requested by Priya Raman, not in PagerDuty yet"),
              Paged("Payments", "PagerDuty #1234 · not acknowledged yet (with Mei Tanaka)"),
              Paged("Ana Costa", "PagerDuty #1235 · acknowledged by Ana Costa", acknowledged=True),
              Paged("order-db", "PagerDuty #1236 · resolved in PagerDuty")]
    failing = Delivery("PagerDuty page", "failed (PagerDuty API token is read-only: PAGERDUTY_API_TOKEN needs a "
                                         "full-access (or user) token to change incidents); /incident retry INC-7",
                       True)
    longest = [Paged("Noah Bergström-" + "Lindqvist " * 8, "PagerDuty #2147483647 · acknowledged by "
                     + "Ingrid Halvorsen-Okafor " * 8, acknowledged=k % 2 == 0) for k in range(5)]
    root = pagerduty_incident(12, acknowledged_by="Mei Tanaka", commander="sarah.kim@shopfront.example")
    heartbeat = incident(31, source="heartbeat", external_id="alert-pipeline@2025-03-14T09:00:00.000000Z",
                         title="No heartbeat from alert-pipeline for 7 min", service="monitoring", team="sre",
                         level="high-error-rate")
    beats = StatusSection("Heartbeats", [
        StatusRow("alert-pipeline", "MISSING for 12 min (INC-31); monitoring, every 5m, grace 2m", problem=True),
        StatusRow("nightly-export", "up, last beat 3 min ago; order-db, every 1h, grace 10m"),
        StatusRow("billing-cron", "waiting for a first beat (40 s so far); payment-gateway, every 15m, grace 5m"),
        StatusRow("search-indexer", "up, last beat 20 s ago; search-service, every 1m; FIREBELL_HEARTBEAT_SEARCH_"
                                    "INDEXER_TOKEN is not set, so its door refuses beats (401)", problem=True)])
    return {
        "incident-paged-every-state": incident_card(_view(incident(), pages=states, deliveries=[failing])),
        "incident-paged-longest-names": incident_card(_view(
            root, pages=longest, deliveries=_deliveries("INC-12") + [failing],
            similar=[incident(k, title=LONG_TITLE, status="closed") for k in (3, 5, 9)],
            links=[("War room", "https://teams.microsoft.com/l/chat/19%3a7b1c2d3e4f%40thread.v2/0"),
                   ("Postmortem", f"{BASE}/postmortems/{PM_TOKEN}")])),
        "incident-heartbeat-missing": incident_card(_view(heartbeat)),
        "status-heartbeats": status_card([beats]),
    }


# -- builders added by other parts of Firebell: included when they exist ----------------------------------------

def _figures(n: int = 0):
    from incidents.metrics import Figures, Percentiles

    if not n:
        return Figures()
    return Figures(new=n, resolved=n - 2, closed=n - 5, still_open=2, linked=n // 2,
                   by_level={"service-down": 3, "high-error-rate": n - 7, "high-latency": 2, "minor": 2},
                   by_service={s: n - k for k, s in enumerate(_catalog().services)},
                   by_team={t: n - k for k, t in enumerate(_catalog().teams)},
                   mtta=Percentiles(n - 2, 240.0, 1260.0), mttr=Percentiles(n - 2, 3900.0, 19800.0),
                   impact_minutes=640.0, impact_usd=1_234_567.0, impact_open=1)


def digest_cards() -> dict[str, dict]:
    from cards.digest import TeamRow, WeeklyDigest, weekly_digest_card
    from incidents.metrics import Costly, OverdueAction, OverduePostmortem, Recurring
    from incidents.periods import week_of

    catalog = _catalog()
    period = week_of(date(2025, 3, 10), catalog.timezone)
    people = {p.email: p.name for p in catalog.people.values()}
    teams = [TeamRow(key, t.name, _figures(12 - k), _figures(10)) for k, (key, t) in enumerate(catalog.teams.items())]
    full = WeeklyDigest(
        scope="company", name="All teams", period=period, figures=_figures(31), before=_figures(25), teams=teams,
        overdue_postmortems=[OverduePostmortem(k, LONG_TITLE, "checkout", "priya.raman@shopfront.example",
                                               T0 - timedelta(days=k)) for k in range(1, 11)],
        overdue_postmortems_total=14,
        overdue_actions=[OverdueAction(k, k, LONG_TITLE, "payments", "mei.tanaka@shopfront.example",
                                       date(2025, 3, 1) + timedelta(days=k), f"PAY-{k}") for k in range(1, 11)],
        overdue_actions_total=23,
        recurring=[Recurring(f"fp{k}", 5 - k, LONG_TITLE, "checkout-api", "checkout", 40 + k) for k in range(5)],
        costliest=[Costly(50 + k, LONG_TITLE, "payment-gateway", "payments", 95.0 - k, 237_500.0) for k in range(3)],
        people=people, updates=_update_figures())
    quiet = WeeklyDigest(scope="checkout", name="Checkout", period=period, figures=_figures(0), before=_figures(0))
    return {"digest-weekly-company": weekly_digest_card(full), "digest-weekly-team": weekly_digest_card(
        replace(full, scope="checkout", name="Checkout", teams=(), private=1)), "digest-weekly-quiet": weekly_digest_card(quiet)}


def _update_figures():
    from incidents.updates import UpdateFigures

    return [UpdateFigures(60 + k, LONG_TITLE, "checkout", "service-down", 12 - k, 1800.0 + 60 * k if k < 11 else None)
            for k in range(12)]


def report_cards() -> dict[str, dict]:
    from cards.report import HistoryRow, MonthlyReport, MonthlyTeamRow, history_card, monthly_report_card
    from incidents.metrics import Percentiles, TrendPoint
    from incidents.periods import month_of

    catalog = _catalog()
    period = month_of(date(2025, 3, 1), catalog.timezone)
    trend = [TrendPoint(f"2024-{m:02d}", f"{m:02d} 2024", 10 + m, Percentiles(5, 200.0 + m, 900.0),
                        Percentiles(5, 3600.0 + m, 9000.0), 120_000.0 * m) for m in range(10, 13)]
    trend += [TrendPoint(f"2025-{m:02d}", f"{m:02d} 2025", 20 + m, Percentiles(5, 180.0, 700.0),
                         Percentiles(5, 3000.0, 8000.0), 90_000.0 * m) for m in range(1, 4)]
    teams = [MonthlyTeamRow(key, t.name, _figures(9), 3, 4) for key, t in catalog.teams.items()]
    report = MonthlyReport("company", "All teams", period, _figures(31), trend, postmortems_done=11,
                           postmortems_needed=14, teams=teams)
    history = [HistoryRow("weekly digest", f"2025-W{10 - k:02d}", "SRE Team - Incidents", T0 - timedelta(weeks=k),
                          ("sent", "queued", "failed (Teams post message: HTTP 403)")[k % 3]) for k in range(40)]
    return {
        "report-monthly-company": monthly_report_card(report, chart_url=f"{BASE}/charts/monthly-2025-03.png"),
        "report-monthly-private": monthly_report_card(replace(report, private=2)),
        "report-monthly-team-empty": monthly_report_card(MonthlyReport("search", "Search", period, _figures(0),
                                                                       trend[:1])),
        "report-history": history_card(history[:30], heading="Report deliveries (40)", total=40),
        "report-history-empty": history_card([], heading="Report deliveries (0)", total=0),
    }


def reminder_cards() -> dict[str, dict]:
    from cards.reminder import DueItem, Who, action_reminder_card, postmortem_reminder_card, stale_nudge_card

    priya = Who("priya.raman@shopfront.example", "Priya Raman")
    items = [DueItem(k, LONG_TITLE, date(2025, 3, 1) + timedelta(days=k), f"CHK-{300 + k}",
                     f"https://shopfront.atlassian.net/browse/CHK-{300 + k}") for k in range(12)]
    return {
        "reminder-postmortem": postmortem_reminder_card(
            7, LONG_TITLE, priya, T0 + timedelta(days=7), 2,
            ["summary", "root cause", "at least one action item with an owner and a due date"],
            f"{BASE}/postmortems/{PM_TOKEN}"),
        "reminder-postmortem-no-owner": postmortem_reminder_card(7, "checkout is down", Who(None, "nobody yet"),
                                                                 T0, 1, [], None),
        "reminder-actions": action_reminder_card(priya, items, date(2025, 3, 20)),
        "reminder-stale": stale_nudge_card(7, LONG_TITLE, 9, 3 * 3600 + 120, priya),
        "reminder-stale-no-commander": stale_nudge_card(7, "checkout is down", 9, 5400, None),
    }


def maintenance_cards() -> dict[str, dict]:
    from cards.maintenance import maintenance_summary_card
    from incidents.maintenance import Tally

    window = {"id": 3, "target_kind": "service", "target": "payment-gateway", "starts_at": T0,
              "ends_at": T0 + timedelta(hours=2), "reason": "gateway upgrade to 4.2 " * 12,
              "recurring_key": None}
    open_ones = tuple((40 + k, LONG_TITLE) for k in range(25))
    return {
        "maintenance-summary-quiet": maintenance_summary_card(
            window, Tally(40, 40, ()), target_label="payment-gateway", ended_by="Mei Tanaka"),
        "maintenance-summary-still-open": maintenance_summary_card(
            {**window, "target_kind": "team", "target": "data-platform", "reason": None},
            Tally(60, 35, open_ones), target_label="Data Platform", ended_by=None),
    }


def search_cards() -> dict[str, dict]:
    from cards.search import Found, search_card

    found = [Found(pagerduty_incident(100 + k, title=LONG_TITLE, status=("open", "resolved", "closed")[k % 3]),
                   teams_url=("https://teams.microsoft.com/l/message/19%3Acheckout-incidents%40thread.tacv2/"
                              f"17000000000{k:02d}?parentMessageId=17000000000{k:02d}"),
                   postmortem_url=f"{BASE}/postmortems/{PM_TOKEN[:-3]}{100 + k}", all_words=k < 4)
             for k in range(10)]
    return {"search-10-results": search_card("payment gateway 503 timeout", found, more=True),
            "search-nothing": search_card("kafka lag", [], more=False)}


def stats_cards() -> dict[str, dict]:
    from cards.stats import stats_card
    from incidents.periods import Period

    period = Period("range", "2025-02-12..2025-03-14T09:00", T0 - timedelta(days=30), T0, "last 30 days")
    return {"stats-team-30d": stats_card("Checkout", period, _figures(31)),
            "stats-empty": stats_card("Search", period, _figures(0))}


def summary_cards() -> dict[str, dict]:
    from cards.summary import CloseSummary, close_summary_card

    catalog = _catalog()
    i = incident(7, level="high-error-rate", status="closed", acknowledged_by="Priya Raman",
                 first_acknowledged_at=T0 + timedelta(minutes=2), resolved_at=T0 + timedelta(minutes=31),
                 closed_at=T0 + timedelta(days=2), html_url="https://shopfront.pagerduty.com/incidents/Q1")
    pm = {field: _rca_text(label, FIELD_LIMIT) for field, label in RCA_SECTIONS}
    items = [{"title": _rca_text(f"Action {k + 1}", ACTION_TITLE_LIMIT), "owner": "priya.raman@shopfront.example",
              "due_date": date(2025, 3, 21), "jira_key": f"CHK-{310 + k}"} for k in range(12)]
    waived = CloseSummary(incident=replace(i, level="minor"), team_name="Checkout", waiver=WAIVER,
                          people={p.email: p.name for p in catalog.people.values()})
    return {"close-summary-waived": close_summary_card(waived),
            "close-summary": close_summary_card(CloseSummary(
        incident=i, team_name="Checkout", postmortem=pm, action_items=items, impact_usd=77_500.0, linked=4,
        people={p.email: p.name for p in catalog.people.values()}, page_url=f"{BASE}/postmortems/{PM_TOKEN}",
        teams_url="https://teams.microsoft.com/l/message/19%3Acheckout%40thread.tacv2/1700?parentMessageId=1700"))}


def running_message_cards() -> dict[str, dict]:
    from cards.reminder import Who
    from cards.running_messages import (ack_reminder_card, commander_reminder_card, role_card,
                                        stakeholder_update_card, update_reminder_card)
    from incidents.updates import PHASES, TEXT_LIMIT

    i = pagerduty_incident(12, title=LONG_TITLE)
    text = ("Card payments fail for about a third of EU shoppers; the payment gateway pods crash on start after "
            "release 1.8.3. We are rolling back. “é”, ✓, 日本. " * 20)[:TEXT_LIMIT]
    bridge = "https://teams.microsoft.com/l/meetup-join/19%3ameeting_NzQ0ZTY4YjgtYjM1Ni00%40thread.v2/0"
    cards = {f"stakeholder-update-{phase}": stakeholder_update_card(
        i, phase=phase, text=text, author="Mei Tanaka", posted_at=T0 + timedelta(minutes=20), number=n + 1,
        team_name="Payments", bridge_url=bridge) for n, phase in enumerate(PHASES)}
    cards["stakeholder-update-short-no-bridge"] = stakeholder_update_card(
        incident(7), phase="investigating", text="Looking into it.", author=None, posted_at=T0, number=1,
        team_name=None)
    tom, priya = Who("tom.brennan@shopfront.example", "Tom Brennan"), Who("priya.raman@shopfront.example",
                                                                           "Priya Raman")
    cards.update({
        "role-scribe": role_card(i, "scribe", tom, "Priya Raman"),
        "role-commander": role_card(i, "commander", priya, "Sarah Kim"),
        "reminder-no-commander": commander_reminder_card(i, priya, 11 * 60),
        "reminder-no-commander-no-oncall": commander_reminder_card(incident(7), None, 600),
        "reminder-update-first": update_reminder_card(i, priya, "on call", 31 * 60, "30 min", first=True),
        "reminder-update-commander": update_reminder_card(i, tom, "incident commander", 95 * 60, "90 s",
                                                          first=False),
        "reminder-update-nobody": update_reminder_card(incident(7), None, "on call", 3600, "1 h", first=False),
        "reminder-not-acknowledged": ack_reminder_card(i, priya, Who("daniel.okafor@shopfront.example",
                                                                     "Daniel Okafor"), 5 * 60 + 20, "5 min"),
        "reminder-not-acknowledged-no-standby": ack_reminder_card(incident(7), priya, None, 400, "5 min"),
        "reminder-not-acknowledged-nobody": ack_reminder_card(incident(7), None, None, 400, "90 s"),
    })
    return cards


OPTIONAL: dict[str, tuple[str, Callable[[], dict[str, dict]]]] = {
    "digest": ("cards.digest", digest_cards),
    "report": ("cards.report", report_cards),
    "reminder": ("cards.reminder", reminder_cards),
    "search": ("cards.search", search_cards),
    "stats": ("cards.stats", stats_cards),
    "summary": ("cards.summary", summary_cards),
    "running": ("cards.running_messages", running_message_cards),
    "maintenance": ("cards.maintenance", maintenance_cards),
}


def _exists(module: str) -> bool:
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name == module:
            return False
        raise
    return True


def missing_builders() -> list[str]:
    return [name for name, (module, _) in OPTIONAL.items() if not _exists(module)]


def all_cards() -> dict[str, dict]:
    cards = {**incident_cards(), **rca_cards(), **everyday_cards(), **paging_and_heartbeat_cards()}
    for _name, (module, build) in OPTIONAL.items():
        if _exists(module):
            cards.update(build())
    return cards


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "firebell-cards.json")
    out.write_text(json.dumps(all_cards(), indent=2, ensure_ascii=False, default=str))
    print(out)
