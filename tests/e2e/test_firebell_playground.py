"""Firebell itself in the Microsoft 365 Agents Playground, driven through headless Chromium as a person would.

Firebell runs as ``python app.py`` (via tests/e2e/firebell_service.py: e2e catalog, fresh SQLite database, no
MicrosoftAppId, PagerDuty secret ``whsec-test-secret``), the Playground and Chromium talk to it inside a
loopback-only network namespace. Two Playground runs:

1. the team channel: subscribe, declare, Acknowledge / Change level / Resolve on the card (updated in place: one
   card for the incident all along), RCA from the card's button (the form comes as a new message; the live card
   stays), fill and save it (the postmortem summary shows and stays), then ``incident close`` and ``incident
   show`` (the timeline names who did what, as catalog people);
2. a signed PagerDuty webhook posted from inside the namespace -> the card appears in the channel subscribed as
   the default one
   (proactive post through the Playground's connector); ``incident list`` and ``incident help`` in the channel
   and in the personal chat; the declare form filled in and sent from the personal chat.

Every step leaves a screenshot in test-artifacts/e2e/<test>/; a failing step is named with its screenshot.
"""

from __future__ import annotations

import base64
import time
from pathlib import Path

import pytest

from tests.e2e.firebell_service import demo_alert, firebell_bot, wait_cards_settled_step, wait_roster_step
from tests.e2e.harness import PlaygroundConfig, require_prerequisites, run_scenario

pytestmark = pytest.mark.e2e

CFG = PlaygroundConfig()
CHANNEL = CFG.channel_name  # "Incidents"
MEGAN = CFG.users[0]
# The live incident card (and not the list, the RCA form or the postmortem summary): only it has "Triggered".
LIVE = ["INC-1 ·", "Triggered"]
FORM = "RCA for INC-1"
PD_FIXTURE = "01-payment-gateway-triggered.json"


@pytest.fixture(autouse=True)
def _prereqs():
    require_prerequisites()


def _run(steps, artifacts: Path, **kw):
    started = time.monotonic()
    result = run_scenario(steps, bot=firebell_bot(), config=CFG, artifacts_dir=artifacts, **kw)
    print(f"\n{artifacts.name}: {len(result.steps)} steps in {time.monotonic() - started:.1f} s "
          f"(artifacts: {artifacts})")
    result.assert_ok()
    for s in result.steps:
        assert s["screenshot"] and Path(s["screenshot"]).is_file(), s
    return result


def _card_answer(result, step: str) -> dict:
    data = result.step(step)["data"]
    assert data["http_status"] == 200, data
    return data["invoke_response"]


def test_channel_declare_ack_level_resolve_rca_close(e2e_artifacts: Path):
    rca = [
        ("Summary *", "Checkout answered 500 to every order for 22 minutes"),
        ("Customer impact (who, how many, how long) *", "All web shoppers in the EU, about 1,900 orders, 22 min"),
        ("Detection (how and when we knew) *", "Checkout 5xx alert paged Priya at 09:14"),
        ("Root cause *", "Release 1.8.3 removed the payment-gateway timeout"),
        ("Resolution and recovery *", "Rolled back to 1.8.2; queued orders replayed"),
        ("Action 1", "Contract test for the gateway timeout"),
        ("Due", "2030-03-21"),
    ]
    steps = [
        {"name": "open-channel", "action": "open_chat", "chat": CHANNEL},
        # Firebell maps Teams users to catalog people through its roster cache, filled by an outbox job a couple
        # of seconds after it first sees the team; permissions (subscribe, resolve, RCA...) need that mapping
        wait_roster_step(),
        {"name": "subscribe", "action": "send", "text": "incident subscribe checkout"},
        {"name": "subscribed", "action": "wait_text", "text": "This channel now gets Checkout incidents."},
        {"name": "declare", "action": "send", "text": "incident declare checkout is down"},
        {"name": "card", "action": "wait_card", "contains": [*LIVE, "INC-1 · OPEN · service-down",
                                                             "checkout is down", "Service: checkout-api"]},
        {"name": "one-card", "action": "expect_card_count", "contains": LIVE, "count": 1},
        {"name": "ack", "action": "click", "card": LIVE, "button": "Acknowledge"},
        {"name": "acked", "action": "wait_card", "contains": [
            *LIVE, "Acknowledged by: Alex Wilber", f"Incident commander: {CFG.current_user.name}"]},
        {"name": "acked-in-place", "action": "expect_card_count", "contains": LIVE, "count": 1},
        # every change also queues an outbox update of the card; one landing while "Change level" is open
        # re-renders the card and closes it (see README), so let it land first
        wait_cards_settled_step("ack-update-landed"),
        {"name": "open-level", "action": "click", "card": LIVE, "button": "Change level", "expect_invoke": False},
        {"name": "pick-level", "action": "choose", "card": LIVE, "input": "Level", "value": "high-error-rate"},
        # lowering an incident whose postmortem has started needs a reason (the timeline shows it)
        {"name": "fill-reason", "action": "fill", "card": LIVE, "input": "Reason", "value": "only EU shoppers"},
        {"name": "set-level", "action": "click", "card": LIVE, "button": "Set level"},
        {"name": "level-set", "action": "wait_card", "contains": [*LIVE, "INC-1 · OPEN · high-error-rate"]},
        {"name": "level-in-place", "action": "expect_card_count", "contains": LIVE, "count": 1},
        {"name": "resolve", "action": "click", "card": LIVE, "button": "Resolve", "as_user": MEGAN.name},
        {"name": "resolved", "action": "wait_card", "contains": [*LIVE, "INC-1 · RESOLVED · high-error-rate",
                                                                 "To close:"]},
        {"name": "resolved-in-place", "action": "expect_card_count", "contains": LIVE, "count": 1},
        # RCA from the live card: the form is posted as a new message and the click answers "Posted below."
        # (a transient note under the card; the next card update clears it); the live card stays where it is
        {"name": "rca", "action": "click", "card": LIVE, "button": "RCA"},
        {"name": "rca-form", "action": "wait_card", "contains": [FORM, "Partial saves are fine"]},
        {"name": "live-card-kept", "action": "expect_card_count", "contains": LIVE, "count": 1},
        *({"name": f"fill-{label.split(' ')[0].lower()}", "action": "fill", "card": FORM, "input": label,
           "value": value} for label, value in rca),
        # the owner is picked from people (the team, responders, role holders), not typed as an e-mail
        {"name": "pick-owner", "action": "choose", "card": FORM, "input": "Owner", "value": MEGAN.name},
        {"name": "rca-form-filled", "action": "screenshot"},
        {"name": "save-rca", "action": "click", "card": FORM, "button": "Save RCA"},
        {"name": "postmortem", "action": "wait_card", "contains": [
            "Postmortem INC-1 · complete", "Release 1.8.3 removed the payment-gateway timeout",
            f"Contract test for the gateway timeout — {MEGAN.email}, due 2030-03-21"]},
        # the live card catches up (nothing is missing to close any more) without replacing the summary
        {"name": "live-card-updated", "action": "wait_card", "contains": [*LIVE, "INC-1 · RESOLVED"],
         "not_contains": "To close:"},
        {"name": "summary-kept", "action": "expect_card_count", "contains": "Postmortem INC-1 · complete",
         "count": 1},
        # as_user on a typed message (the harness's relay sends it to Firebell as Megan)
        {"name": "note-as-megan", "action": "send", "text": "incident note INC-1 gateway timeouts since 09:12",
         "as_user": MEGAN.name},
        {"name": "noted", "action": "wait_text", "text": "Noted on INC-1."},
        {"name": "close", "action": "send", "text": "incident close INC-1"},
        {"name": "closed-reply", "action": "wait_text", "text": "INC-1 closed by Alex Wilber."},
        {"name": "closed-card", "action": "wait_card", "contains": [*LIVE, "INC-1 · CLOSED · high-error-rate"]},
        {"name": "closed-in-place", "action": "expect_card_count", "contains": LIVE, "count": 1},
        {"name": "show", "action": "send", "text": "incident show INC-1"},
        {"name": "timeline", "action": "wait_card", "contains": [
            f"gateway timeouts since 09:12 — {MEGAN.name}",
            "Timeline", "acknowledged in Teams — Alex Wilber", "level service-down → high-error-rate because only EU shoppers — Alex Wilber",
            f"resolved in Teams — {MEGAN.name}", "RCA saved (complete) — Alex Wilber",
            "closed in Teams — Alex Wilber"]},
    ]
    result = _run(steps, e2e_artifacts)

    assert result.step("declare")["data"]["conversation_id"] == CFG.channel_id  # a new post in the channel
    for step in ("ack", "set-level", "resolve"):
        answer = _card_answer(result, step)
        assert answer["type"] == "application/vnd.microsoft.card.adaptive", (step, answer)  # replaced in place
    assert _card_answer(result, "rca") == {"type": "application/vnd.microsoft.activity.message",
                                           "value": "Posted below."}
    saved = _card_answer(result, "save-rca")
    assert saved["type"] == "application/vnd.microsoft.card.adaptive"
    assert saved["value"]["body"][0]["text"].startswith("📘 **Postmortem INC-1**")


def test_pagerduty_alert_then_list_and_help_in_channel_and_personal_chat(e2e_artifacts: Path):
    body, headers = demo_alert(PD_FIXTURE)  # as if it happened now: the card's impact so far is sane
    steps = [
        {"name": "open-channel", "action": "open_chat", "chat": CHANNEL},
        wait_roster_step(),
        # the default channel: incidents whose team (here Payments) has no channel of its own
        {"name": "subscribe", "action": "send", "text": "incident subscribe default"},
        {"name": "subscribed", "action": "wait_text",
         "text": "This channel now gets incidents with no owning team or channel."},
        {"name": "no-card-yet", "action": "expect_no_card", "contains": "INC-1", "wait_ms": 500},
        {"name": "pagerduty", "action": "http_post", "url": "http://127.0.0.1:{bot_port}/webhooks/pagerduty",
         "headers": headers, "body_base64": base64.b64encode(body).decode()},
        # proactive: the worker posts the card through the Playground's /_connector, no message triggers it
        {"name": "alert-card", "action": "wait_card", "timeout_ms": 30000, "contains": [
            *LIVE, "INC-1 · OPEN · service-down", "PagerDuty #", "Service: payment-gateway", "Team: Payments"]},
        {"name": "one-alert-card", "action": "expect_card_count", "contains": LIVE, "count": 1},
        {"name": "ack", "action": "click", "card": LIVE, "button": "Acknowledge"},
        {"name": "acked", "action": "wait_card", "contains": [*LIVE, "Acknowledged by: Alex Wilber"]},
        {"name": "acked-in-place", "action": "expect_card_count", "contains": LIVE, "count": 1},
        {"name": "list", "action": "send", "text": "incident list"},
        {"name": "list-card", "action": "wait_card", "contains": [
            "Open incidents (1)", "INC-1 payment-gateway", "Payments · acknowledged by Alex Wilber", "Show"]},
        {"name": "help", "action": "send", "text": "incident help"},
        {"name": "help-card", "action": "wait_card", "contains": [
            # commands kept whole: a non-breaking hyphen, a word joiner after "|"
            "Firebell — incidents in Teams", "incident ack ‹INC\u2011n›", "incident subscribe ‹team|\u2060default›",
            "Levels: service-down"]},
        {"name": "open-personal", "action": "open_chat", "chat": "personal"},
        {"name": "dm-list", "action": "send", "text": "incident list"},
        {"name": "dm-list-card", "action": "wait_card", "contains": ["Open incidents (1)", "INC-1 payment-gateway"]},
        {"name": "dm-help", "action": "send", "text": "help"},
        {"name": "dm-help-card", "action": "wait_card", "contains": ["Firebell — incidents in Teams",
                                                                     "incident rca ‹INC\u2011n›"],
         "not_contains": "Hi! I'm Firebell"},
        {"name": "dm-show", "action": "send", "text": "show 1"},
        {"name": "dm-show-card", "action": "wait_card", "contains": [*LIVE, "Timeline", "acknowledged in Teams"]},
        # the declare form: its Service / Level pickers start on their placeholder ("let Firebell guess")
        {"name": "dm-declare", "action": "send", "text": "incident declare"},
        {"name": "declare-form", "action": "wait_card", "contains": ["Declare an incident", "What is broken?"]},
        {"name": "declare-title", "action": "fill", "card": "Declare an incident", "input": "What is broken?",
         "value": "search results are empty"},
        {"name": "declare-service", "action": "choose", "card": "Declare an incident", "input": "Service",
         "value": "search-service"},
        {"name": "declare-click", "action": "click", "card": "Declare an incident", "button": "Declare"},
        {"name": "declared", "action": "wait_card", "contains": [
            "INC-2 · OPEN", "search results are empty", "Service: search-service", "Team: Search"]},
        # the weekly digest on demand: this week so far (both incidents happened now)
        {"name": "back-to-channel", "action": "open_chat", "chat": CHANNEL},
        {"name": "weekly", "action": "send", "text": "incident report weekly"},
        {"name": "weekly-card", "action": "wait_card", "contains": ["Weekly incident digest", "this week so far"]},
        {"name": "weekly-digest", "action": "screenshot"},
    ]
    result = _run(steps, e2e_artifacts)

    hook = result.step("pagerduty")["data"]
    assert hook["status"] in (200, 202) and hook["json"]["status"] == "accepted", hook
    assert result.step("dm-list")["data"]["conversation_id"] == CFG.personal_chat_id
    assert result.step("dm-list")["data"]["mention"] is False
    assert result.step("list")["data"]["mention"] is True
    declared = _card_answer(result, "declare-click")  # the form is replaced in place by the new incident's card
    assert declared["type"] == "application/vnd.microsoft.card.adaptive"


def test_try_it_by_hand_script_starts_and_stops(e2e_artifacts: Path):
    """tests/e2e/try_firebell.py (the README's "try it by hand") still starts Firebell and the Playground in a
    loopback-only namespace, takes a PagerDuty alert, and stops everything."""
    import subprocess
    import sys

    from tests.e2e.harness import REPO_ROOT

    proc = subprocess.run([sys.executable, "tests/e2e/try_firebell.py", "--smoke", "--dir", str(e2e_artifacts)],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "readyz: {'status': 'ready'" in proc.stdout
    assert "'Megan Bowen'" in proc.stdout
    assert 'pagerduty: HTTP 200 {"status": "accepted"' in proc.stdout
