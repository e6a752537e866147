"""Self-test of the Adaptive Card checker (render_cards.mjs via harness.render_cards): a valid Teams card passes
and is screenshotted; deliberately broken cards are caught by the SDK and by the extra Teams rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.harness import render_cards, require_prerequisites
from tests.e2e.probe_bot import incident_card

pytestmark = pytest.mark.e2e


@pytest.fixture(autouse=True)
def _prereqs():
    require_prerequisites()


def _rules(entry: dict) -> set[str]:
    return {e.get("rule") or e.get("event") for e in entry["errors"]}


def test_valid_and_broken_cards(e2e_artifacts: Path):
    broken = {
        "type": "AdaptiveCard",
        "version": "1.5",
        "body": [
            {"type": "TextBlock", "text": "first", "id": "dup"},
            {"type": "TextBlokk", "text": "typo in the element type"},
            {"type": "Input.Text", "placeholder": "input without id"},
            {"type": "Input.ChoiceSet", "id": "dup", "choices": []},
            {"type": "ActionSet", "actions": [{"type": "Action.Execute", "title": "No verb here"}]},
            {"type": "FactSet", "facts": [{"title": "incident ack <INC-n>", "value": "Acknowledge"}]},
            {"type": "TextBlock", "text": "On call: <at>Priya Raman</at> (a mention is fine)"},
        ],
        "actions": [{"type": "Action.Execute", "title": f"Button {i}", "verb": f"v{i}"} for i in range(7)],
    }
    too_new = {"type": "AdaptiveCard", "version": "1.6", "body": [{"type": "TextBlock", "text": "v1.6 card"}]}
    too_big = {"type": "AdaptiveCard", "version": "1.5", "body": [{"type": "TextBlock", "text": "x" * 29000}]}

    report = render_cards(
        {"incident": incident_card(extra="Declared by Alex Wilber"), "broken": broken, "too_new": too_new,
         "too_big": too_big},
        e2e_artifacts,
    )

    assert report["sdk_version"] == "3.0.6"
    assert report["host_config"].endswith("adaptivecards-designer/lib/hostConfigs/microsoft-teams-light.json")
    assert report["ok"] is False

    ok = report["cards"]["incident"]
    assert ok["ok"] and ok["rendered"] and not ok["errors"], ok
    assert Path(ok["screenshot"]) == e2e_artifacts / "cards" / "incident.png"
    assert Path(ok["screenshot"]).stat().st_size > 1000
    assert [a["verb"] for a in ok["actions"]] == ["ack", "resolve", "set_level", "deny"]

    bad = report["cards"]["broken"]
    assert not bad["ok"] and Path(bad["screenshot"]).is_file()
    rules = _rules(bad)
    # from the adaptivecards SDK (parse + validateProperties)
    assert {"UnknownElementType", "PropertyCantBeNull", "DuplicateId", "CollectionCantBeEmpty", "TooManyActions"} <= rules
    # Teams rules checked by render_cards.mjs itself
    assert {"execute-verb", "max-actions", "unique-id", "input-id", "markdown-html"} <= rules
    verb_err = next(e for e in bad["errors"] if e.get("rule") == "execute-verb")
    assert verb_err["path"] == "$.body[4].actions[0]"
    (markdown_err,) = [e for e in bad["errors"] if e.get("rule") == "markdown-html"]  # <at> is not flagged
    assert markdown_err["path"] == "$.body[5].facts[0].title" and "<INC-n>" in markdown_err["message"]

    assert _rules(report["cards"]["too_new"]) == {"card-version"}
    assert _rules(report["cards"]["too_big"]) == {"size"}
    assert report["cards"]["too_big"]["size_bytes"] > 28 * 1024
