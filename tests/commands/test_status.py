"""`incident status`: Firebell's own health for incident commanders and admins."""
from sqlalchemy import update

from storage import outbox as jobs
from storage.schema import outbox
from tests.harness import card_text


async def test_status_shows_set_up_outbox_failures_and_digests_to_commanders(harness):
    h = harness
    await h.subscribe("checkout")
    await h.say("incident declare checkout is down")
    await h.settle()
    async with h.ctx.db.write() as conn:  # one follow-up failed for good
        await jobs.enqueue(h.ctx.db, conn, "post_card", now=h.ctx.now(), incident_id=1,
                           payload={"conversation_id": "19:gone@thread.tacv2"},
                           once_key="post_card:1:gone")
        await conn.execute(update(outbox).where(outbox.c.kind == "post_card").values(
            status="failed", last_error="Teams post message: HTTP 403 Forbidden",
            finished_at=h.ctx.now()))
    reply = await h.say("incident status", who="sarah")
    text = card_text(reply["attachments"][0]["content"])
    assert "JIRA: not configured, so no postmortem and action-item tasks: set JIRA_URL" in text
    assert "Parked (failed for good): 1" in text
    assert "post_card · INC-1: Teams post message: HTTP 403 Forbidden" in text
    assert "Last weekly: none yet" in text


async def test_status_is_for_commanders_and_admins(harness):
    h = harness
    reply = await h.say("incident status", who="priya")
    assert "only the incident commanders (Sarah Kim) and admins may see Firebell's status" \
        in reply["text"]
    assert not reply.get("attachments")
