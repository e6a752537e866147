"""Retake the README's Playground screenshots of the RCA form and the weekly digest (docs/rca-form.png,
docs/weekly-digest.png): Firebell and the Microsoft 365 Agents Playground in a loopback-only namespace, driven
through headless Chromium as in tests/e2e/test_firebell_playground.py.

    python tests/e2e/docs_screenshots.py            # writes docs/rca-form.png and docs/weekly-digest.png

A declared incident (acknowledged, resolved) and a PagerDuty alert happening now (tests/e2e/firebell_service.py
demo_alert), so this week's digest has something in it; the RCA form with an action item whose owner is picked.
"""

from __future__ import annotations

import base64
import shutil
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.e2e.firebell_service import demo_alert, firebell_bot, wait_cards_settled_step, wait_roster_step
from tests.e2e.harness import ARTIFACTS_ROOT, REPO_ROOT, PlaygroundConfig, missing_prerequisites, run_scenario

CFG = PlaygroundConfig()
FORM = "RCA for INC-1"
SHOTS = {"rca-form-filled": "rca-form.png", "weekly-digest-shown": "weekly-digest.png"}


def steps() -> list[dict]:
    body, headers = demo_alert("01-payment-gateway-triggered.json")
    return [
        {"name": "open-channel", "action": "open_chat", "chat": CFG.channel_name},
        wait_roster_step(),
        {"name": "subscribe", "action": "send", "text": "incident subscribe checkout"},
        {"name": "subscribed", "action": "wait_text", "text": "This channel now gets Checkout incidents."},
        {"name": "subscribe-default", "action": "send", "text": "incident subscribe default"},
        {"name": "subscribed-default", "action": "wait_text",
         "text": "This channel now gets incidents with no owning team or channel."},
        {"name": "pagerduty", "action": "http_post", "url": "http://127.0.0.1:{bot_port}/webhooks/pagerduty",
         "headers": headers, "body_base64": base64.b64encode(body).decode()},
        {"name": "alert-card", "action": "wait_card", "timeout_ms": 30000, "contains": ["INC-1 ·", "Triggered"]},
        {"name": "ack", "action": "click", "card": ["INC-1 ·", "Triggered"], "button": "Acknowledge"},
        wait_cards_settled_step("ack-landed"),
        # checkout follows two minutes later: a cascade child of INC-1 in the digest ("+1 linked")
        {"name": "declare", "action": "send", "text": "incident declare checkout is down"},
        {"name": "card", "action": "wait_card", "contains": ["INC-2 ·", "checkout is down"]},
        {"name": "rca", "action": "send", "text": "incident rca INC-1"},
        {"name": "rca-form", "action": "wait_card", "contains": [FORM, "Partial saves are fine"]},
        {"name": "fill-title", "action": "fill", "card": FORM, "input": "Action 1",
         "value": "Alert on pods not ready before health checks fail"},
        {"name": "pick-owner", "action": "choose", "card": FORM, "input": "Owner", "value": "Mei Tanaka"},
        {"name": "fill-due", "action": "fill", "card": FORM, "input": "Due", "value": "2030-03-21"},
        {"name": "rca-form-filled", "action": "screenshot"},
        {"name": "weekly", "action": "send", "text": "incident report weekly"},
        {"name": "weekly-card", "action": "wait_card", "contains": ["Weekly incident digest", "this week so far"]},
        {"name": "weekly-digest-shown", "action": "screenshot"},
    ]


def main() -> int:
    missing = missing_prerequisites()
    if missing:
        print("missing prerequisites:\n  " + "\n  ".join(missing), file=sys.stderr)
        return 2
    result = run_scenario(steps(), bot=firebell_bot(), config=CFG, artifacts_dir=ARTIFACTS_ROOT / "docs-screenshots",
                          name="docs-screenshots")
    result.assert_ok()
    for step, target in SHOTS.items():
        shutil.copyfile(result.step(step)["screenshot"], REPO_ROOT / "docs" / target)
        print(f"docs/{target} <- {result.step(step)['screenshot']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
