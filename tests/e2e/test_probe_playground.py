"""Proves the whole e2e chain with the throwaway probe bot (tests/e2e/probe_bot.py):

channel @mention -> card appears -> Acknowledge -> card updated in place -> inputs + Set level -> webhook POSTed
from inside the namespace -> proactive posts show up in the Playground UI; plus the quirks the harness relies on
(no @mention in a channel = the bot never sees the message, personal chat, acting as another user) and the
failure report (failed step named, screenshot left behind).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.harness import PlaygroundConfig, ServiceSpec, require_prerequisites, run_scenario

pytestmark = pytest.mark.e2e

CFG = PlaygroundConfig()


@pytest.fixture(autouse=True)
def _prereqs():
    require_prerequisites()


def _activities(result, step_name: str) -> list[dict]:
    return result.step(step_name)["data"]["json"]


def test_channel_mention_card_update_in_place_and_proactive(probe_bot: ServiceSpec, e2e_artifacts: Path):
    steps = [
        {"name": "declare", "action": "send", "chat": CFG.channel_name, "text": "database down", "mention": True},
        {"name": "card", "action": "wait_card", "contains": ["Incident INC-1", "Status: Triggered", "database down"]},
        {"name": "ack", "action": "click", "card": "database down", "button": "Acknowledge"},
        {"name": "acked", "action": "wait_card", "contains": ["Status: Acknowledged", "Acknowledged by Alex Wilber"]},
        {"name": "in-place", "action": "expect_card_count", "contains": "Incident INC-1", "count": 1},
        {"name": "level", "action": "choose", "card": "Incident INC-1", "input": "Level", "value": "SEV1 - critical"},
        {"name": "note", "action": "fill", "card": "Incident INC-1", "input": "Note", "value": "failover started"},
        {"name": "set-level", "action": "click", "card": "Incident INC-1", "button": "Set level"},
        {"name": "level-set", "action": "wait_card", "contains": "Level set to SEV1 by Alex Wilber; note: failover started"},
        {"name": "resolve-as-megan", "action": "click", "card": "Incident INC-1", "button": "Resolve", "as_user": "Megan Bowen"},
        {"name": "resolved", "action": "wait_card", "contains": "Resolved by Megan Bowen (update_activity)"},
        {"name": "still-one-card", "action": "expect_card_count", "contains": "Incident INC-1", "count": 1},
        {"name": "webhook", "action": "http_post", "url": "{bot_url}/api/probe/webhook?target=channel",
         "body_base64": "AAECAwQ=", "headers": {"Content-Type": "application/octet-stream", "X-Probe": "hook-1"},
         "expect_status": 202},
        {"name": "webhook-post", "action": "wait_card", "contains": "Webhook received: 5 bytes, X-Probe=hook-1"},
        {"name": "ask-proactive", "action": "send", "thread": "database down", "text": "proactive"},
        {"name": "proactive", "action": "wait_card", "contains": "Proactive hello from probe"},
        {"name": "activities", "action": "http", "method": "GET", "url": "{bot_url}/api/probe/activities"},
    ]
    result = run_scenario(steps, bot=probe_bot, config=CFG, artifacts_dir=e2e_artifacts)
    result.assert_ok()

    # every step left a screenshot
    for s in result.steps:
        assert s["screenshot"] and Path(s["screenshot"]).is_file(), s

    declare = result.step("declare")["data"]
    assert declare["conversation_id"] == CFG.channel_id  # a new post goes to the channel itself...
    reply = result.step("ask-proactive")["data"]
    assert reply["conversation_id"] == f"{CFG.channel_id};messageid={declare['message_id']}"  # ...a reply to its thread

    ack = result.step("ack")["data"]
    assert ack["http_status"] == 200 and ack["invoke_response"]["type"] == "application/vnd.microsoft.card.adaptive"
    assert result.step("webhook")["data"]["json"]["bytes"] == 5

    acts = _activities(result, "activities")
    messages = [a for a in acts if a["type"] == "message"]
    invokes = [a for a in acts if a["type"] == "invoke"]
    first = messages[0]
    assert first["channelId"] == "msteams"
    assert first["serviceUrl"] == "http://localhost:56150/_connector"
    assert first["text"] == "<at>Firebell</at> database down"
    assert first["conversation"]["conversationType"] == "channel"
    assert first["conversation"]["tenantId"] == CFG.tenant_id
    assert first["conversation"]["id"] == f"{CFG.channel_id};messageid={declare['message_id']}"
    assert first["channelData"]["team"]["id"] == CFG.team_id
    assert first["channelData"]["channel"]["id"] == CFG.channel_id
    assert first["channelData"]["tenant"]["id"] == CFG.tenant_id
    assert first["from"] == {"id": "user-id-0", "name": "Alex Wilber", "aadObjectId": CFG.current_user.aad_object_id}
    assert first["recipient"] == {"id": CFG.bot_id, "name": CFG.bot_name}
    mention = next(e for e in first["entities"] if e["type"] == "mention")
    assert mention["mentioned"]["id"] == CFG.bot_id and mention["text"] == "<at>Firebell</at>"

    assert [i["value"]["action"]["verb"] for i in invokes] == ["ack", "set_level", "resolve"]
    assert all(i["name"] == "adaptiveCard/action" and i["replyToId"] for i in invokes)
    assert invokes[1]["value"]["action"]["data"] == {"incident": "INC-1", "level": "SEV1", "note": "failover started"}
    megan = CFG.users[0]
    assert invokes[2]["from"] == {"id": megan.id, "name": megan.name, "aadObjectId": megan.aad_object_id}


def test_personal_chat_and_channel_without_mention(probe_bot: ServiceSpec, e2e_artifacts: Path):
    steps = [
        {"name": "dm", "action": "send", "chat": "personal", "text": "hello from a DM"},
        # the probe looks the user up through the Playground's connector (GET .../members/{id}) -> e-mail
        {"name": "dm-card", "action": "wait_card", "contains": ["hello from a DM", "alex.wilber@example.com"]},
        {"name": "deny", "action": "click", "card": "hello from a DM", "button": "Deny"},
        {"name": "deny-text", "action": "wait_text", "text": "Denied by probe"},
        {"name": "boom", "action": "send", "text": "boom"},
        {"name": "boom-click", "action": "click", "card": "Boom card", "button": "Boom", "allow_error": True},
        {"name": "no-mention", "action": "send", "chat": "General", "text": "nobody hears this", "mention": False},
        {"name": "no-card", "action": "expect_no_card", "contains": "nobody hears this", "wait_ms": 2500},
        {"name": "activities", "action": "http", "method": "GET", "url": "{bot_url}/api/probe/activities"},
    ]
    result = run_scenario(steps, bot=probe_bot, config=CFG, artifacts_dir=e2e_artifacts, default_timeout_ms=15000)
    result.assert_ok()
    assert result.step("dm")["data"]["conversation_id"] == CFG.personal_chat_id
    assert result.step("deny")["data"]["invoke_response"] == {
        "type": "application/vnd.microsoft.activity.message", "value": "Denied by probe"}
    assert result.step("boom-click")["data"]["http_status"] >= 500  # a failing invoke is visible to the test
    texts = [a.get("text") for a in _activities(result, "activities") if a["type"] == "message"]
    assert "nobody hears this" not in " ".join(t or "" for t in texts)  # channel message without @mention
    dm = next(a for a in _activities(result, "activities") if a["type"] == "message")
    assert dm["conversation"] == {"conversationType": "personal", "tenantId": CFG.tenant_id, "id": CFG.personal_chat_id}


def test_failing_step_is_named_and_leaves_a_screenshot(probe_bot: ServiceSpec, e2e_artifacts: Path):
    steps = [
        {"name": "hello", "action": "send", "chat": "personal", "text": "hi"},
        {"name": "card", "action": "wait_card", "contains": "Incident INC-1"},
        {"name": "never", "action": "wait_card", "contains": "this text never appears", "timeout_ms": 1500},
        {"name": "not-reached", "action": "sleep", "ms": 10},
    ]
    result = run_scenario(steps, bot=probe_bot, config=CFG, artifacts_dir=e2e_artifacts)
    assert not result.ok
    assert result.failed_step["index"] == 3 and result.failed_step["name"] == "never"
    shot = Path(result.failed_step["screenshot"])
    assert shot.is_file() and shot.name == "03-never-FAILED.png"
    assert [s["name"] for s in result.steps] == ["hello", "card", "never"]
    message = result.describe_failure()
    assert "step 3 'never' (wait_card) FAILED" in message and str(shot) in message
    with pytest.raises(AssertionError, match="never"):
        result.assert_ok()
