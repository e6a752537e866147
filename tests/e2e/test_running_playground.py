"""Running an incident in the Microsoft 365 Agents Playground, as a person would: a meeting bridge (Firebell talks
to the Graph stand-in inside the loopback-only namespace), a role and stakeholder updates, from the card's "More"
and typed; then an incident declared from a channel message ("Declare incident", a message-extension action).
Screenshots of every step in test-artifacts/e2e/<test>/."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.e2e.bridge_service import bridge_bot, graph_service
from tests.e2e.firebell_service import wait_cards_settled_step, wait_roster_step
from tests.e2e.harness import PlaygroundConfig, require_prerequisites, run_scenario

pytestmark = pytest.mark.e2e

CFG = PlaygroundConfig()
CHANNEL = CFG.channel_name
MEGAN, ADELE = CFG.users[0], CFG.users[1]
LIVE = ["INC-1 ·", "Triggered"]
CHATTER = "EU customers see card payments declined at checkout since 14:02"


@pytest.fixture(autouse=True)
def _prereqs():
    require_prerequisites()


def _more(step: str, form: str) -> list[dict]:
    """Open the live card's More, then one of its forms (both ShowCards: no invoke). A card update landing
    meanwhile would re-render the card and close them, so the cards settle first."""
    return [wait_cards_settled_step(f"{step}-settled"),
            {"name": f"{step}-more", "action": "click", "card": LIVE, "button": "More", "expect_invoke": False},
            {"name": f"{step}-form", "action": "click", "card": LIVE, "button": form, "expect_invoke": False}]


def test_bridge_role_and_stakeholder_updates(e2e_artifacts: Path):
    steps = [
        {"name": "open-channel", "action": "open_chat", "chat": CHANNEL},
        wait_roster_step(),
        {"name": "subscribe", "action": "send", "text": "incident subscribe checkout"},
        {"name": "subscribed", "action": "wait_text", "text": "This channel now gets Checkout incidents."},
        {"name": "stakeholders", "action": "send", "text": "incident subscribe stakeholders checkout"},
        {"name": "stakeholders-subscribed", "action": "wait_text",
         "text": "This channel now gets the stakeholder updates of Checkout incidents."},
        {"name": "declare", "action": "send", "text": "incident declare checkout errors level=high-error-rate"},
        {"name": "card", "action": "wait_card", "contains": [*LIVE, "INC-1 · OPEN · high-error-rate",
                                                             "Next stakeholder update due"],
         "not_contains": "Join bridge"},
        # the bridge, typed: a Teams meeting made through Graph; the card gets its Join bridge button
        {"name": "bridge", "action": "send", "text": "incident bridge INC-1"},
        {"name": "bridge-reply", "action": "wait_text", "text": "Opening a Teams meeting for INC-1"},
        {"name": "bridge-on-card", "action": "wait_card", "contains": [*LIVE, "Join bridge"]},
        # a role from the card: More → Assign role → Scribe, Megan Bowen → Assign
        *_more("role", "Assign role"),
        {"name": "pick-role", "action": "choose", "card": LIVE, "input": "Role", "value": "Scribe"},
        {"name": "pick-person", "action": "choose", "card": LIVE, "input": "Person", "value": MEGAN.name},
        {"name": "assign", "action": "click", "card": LIVE, "button": "Assign"},
        {"name": "role-on-card", "action": "wait_card", "contains": [*LIVE, f"Scribe: {MEGAN.name}"]},
        {"name": "role-mention", "action": "wait_card", "contains": [MEGAN.name, "has the scribe role on INC-1"]},
        # a stakeholder update from the card: More → Update → identified + text → Post update
        *_more("update", "Update"),
        {"name": "pick-phase", "action": "choose", "card": LIVE, "input": "Phase", "value": "identified"},
        {"name": "fill-update", "action": "fill", "card": LIVE, "input": "What stakeholders should know",
         "value": "Release 1.8.3 broke checkout; rolling back"},
        {"name": "post-update", "action": "click", "card": LIVE, "button": "Post update"},
        {"name": "update-on-card", "action": "wait_card", "contains": [
            *LIVE, "Stakeholder update 1", "Release 1.8.3 broke checkout; rolling back"]},
        {"name": "update-posted", "action": "wait_card", "contains": [
            "INC-1 · update 1", "IDENTIFIED", "Release 1.8.3 broke checkout; rolling back", "Join bridge"]},
        # and typed (a role too)
        {"name": "typed-role", "action": "send", "text": f"incident role INC-1 communications @{ADELE.name}"},
        {"name": "typed-role-reply", "action": "wait_text",
         "text": f"{ADELE.name} now has the communications role on INC-1."},
        {"name": "typed-update", "action": "send",
         "text": "incident update INC-1 monitoring Rolled back; error rate back to normal"},
        {"name": "typed-update-reply", "action": "wait_text", "text": "Update 2 on INC-1 sent to its stakeholders."},
        {"name": "update-2-on-card", "action": "wait_card", "contains": [
            *LIVE, "Stakeholder update 2", "Rolled back; error rate back to normal",
            f"Communications: {ADELE.name}"]},
        {"name": "show", "action": "send", "text": "incident show INC-1"},
        {"name": "timeline", "action": "wait_card", "contains": [
            "Timeline", "meeting bridge opened", f"scribe: {MEGAN.name} — Alex Wilber",
            "stakeholder update 1 (identified): Release 1.8.3 broke checkout; rolling back — Alex Wilber",
            f"communications: {ADELE.name} — Alex Wilber",
            "stakeholder update 2 (monitoring): Rolled back; error rate back to normal — Alex Wilber"]},
        # declare from a message: someone says something in the channel (not to Firebell: no mention), and
        # "Declare incident" on that message (the Playground's message-extension panel, command id typed)
        {"name": "chatter", "action": "send", "mention": False, "text": CHATTER},
        {"name": "declare-from-message", "action": "message_action", "message": CHATTER,
         "command_id": "declareIncident",
         "fill": {"What is broken?": "Payments declined at checkout in the EU"},
         "choose": {"Service": "checkout-api", "Level": "high-error-rate"},
         "submit": "Declare", "expect": "INC-2 declared: Payments declined at checkout in the EU"},
        {"name": "declared-card", "action": "wait_card", "contains": [
            "INC-2 ·", "Triggered", "INC-2 · OPEN · high-error-rate", "Payments declined at checkout in the EU"]},
    ]
    started = time.monotonic()
    result = run_scenario(steps, bot=bridge_bot(), services=[graph_service()], config=CFG,
                          artifacts_dir=e2e_artifacts)
    print(f"\n{e2e_artifacts.name}: {len(result.steps)} steps in {time.monotonic() - started:.1f} s")
    result.assert_ok()
    for step in ("assign", "post-update"):
        answer = result.step(step)["data"]["invoke_response"]
        assert answer["type"] == "application/vnd.microsoft.card.adaptive", (step, answer)  # replaced in place
    asked = result.step("declare-from-message")["data"]
    # the task module Firebell answered the fetchTask with: the message quoted, its author, the service guessed
    assert asked["fetch_task"]["task"]["type"] == "continue", asked["fetch_task"]
    assert f"Message from Alex Wilber: {CHATTER}" in asked["form_text"], asked["form_text"]
    form = asked["fetch_task"]["task"]["value"]["card"]["content"]
    guessed = {i["id"]: i.get("value") for i in form["body"] if i.get("type", "").startswith("Input.")}
    assert guessed["service"] == "checkout-api" and guessed["title"] == CHATTER, guessed
    assert asked["submit_action"]["task"]["type"] == "message", asked["submit_action"]
