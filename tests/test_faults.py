"""Under fire: Firebell killed mid-storm, outside systems failing, the database going away.
What was acknowledged is never lost, every side effect happens once, and Firebell recovers by
itself. Each test runs on SQLite and, with DATABASE_URL set, on PostgreSQL (the database-proxy
test only there)."""
from __future__ import annotations

import asyncio
import re
import signal
import time
from collections import Counter

import aiohttp
import pytest
from sqlalchemy import select

from incidents.catalog import load_catalog
from storage.db import Database
from storage.schema import card_messages, inbound_events, incidents, outbox, timeline
from tests.conftest import CATALOG
from tests.processes import (FirebellProcess, deliver_all, plan_storm, subscribe_channels,
                             wait_until_drained)

CATALOG_DATA = load_catalog(CATALOG)
REF = re.compile(r"^INC-(\d+) ")


# -- kill -9 ------------------------------------------------------------------------------------

@pytest.mark.slow
async def test_kill_9_mid_storm_loses_nothing_acknowledged_and_posts_each_card_once(
        database_url, connector, tmp_path):
    connector.enforce_rate_limits()  # Teams' per-conversation limits, answered with 429
    app = FirebellProcess(database_url, tmp_path, env={"FIREBELL_OUTBOX_LEASE_SECONDS": "15"})
    app.start()
    db = Database(database_url)
    try:
        await app.wait_ready()
        await subscribe_channels(app.url, connector, [*CATALOG_DATA.teams, "default"])
        plan = plan_storm(CATALOG_DATA, 1000)
        kill_after = 400
        acked_first_pass: list = []

        def on_answer(delivery, outcome):
            if isinstance(outcome, int) and 200 <= outcome < 300:
                acked_first_pass.append(delivery)
                if len(acked_first_pass) == kill_after:
                    app.proc.send_signal(signal.SIGKILL)

        async with aiohttp.ClientSession() as http:
            await deliver_all(http, [(app.url, d) for d in plan], on_answer=on_answer)
        assert app.proc.wait(timeout=10) == -signal.SIGKILL
        failed = [d for d in plan if not d.acknowledged]
        assert len(acked_first_pass) >= kill_after and failed, "the kill came too late"

        # Restarted on the same database: everything acknowledged before the kill is there.
        app.start()
        await app.wait_ready()
        stored = await _event_keys(db)
        lost = [d.event_id for d in acked_first_pass if f"pd3:{d.event_id}" not in stored]
        assert lost == [], f"{len(lost)} acknowledged deliveries lost, e.g. {lost[:5]}"
        committed_unanswered = sum(f"pd3:{d.event_id}" in stored for d in failed)

        # PagerDuty redelivers what got no 2xx: the same bytes, the same X-Webhook-Id.
        async with aiohttp.ClientSession() as http:
            await deliver_all(http, [(app.url, d) for d in failed])
        assert [d for d in plan if not d.acknowledged] == []
        assert await _event_keys(db) >= {f"pd3:{d.event_id}" for d in plan}
        drained = await wait_until_drained(db, 45, procs=[app])

        async with db.read() as conn:
            rows = (await conn.execute(select(incidents))).mappings().all()
            entries = (await conn.execute(select(timeline.c.incident_id, timeline.c.kind,
                                                 timeline.c.data))).mappings().all()
            cards = (await conn.execute(select(card_messages))).mappings().all()
            parked = (await conn.execute(select(outbox.c.kind, outbox.c.last_error)
                                         .where(outbox.c.status == "failed"))).all()
        assert len(rows) == len({d.external_id for d in plan}) == 600
        assert {r["external_id"] for r in rows} == {d.external_id for d in plan}
        assert all(r["correlated"] for r in rows), "an incident was never correlated"
        assert parked == []
        # Each event handled once: one timeline entry per event id.
        per_event = Counter((e["data"] or {}).get("event_id") for e in entries
                            if (e["data"] or {}).get("event_id"))
        assert per_event and max(per_event.values()) == 1
        assert sum(e["kind"] == "triggered" for e in entries) == 600

        posted = _posts_per_card(connector)
        roots = [r for r in rows if r["parent_id"] is None]
        assert max(posted.values()) == 1, {k: n for k, n in posted.items() if n > 1}
        for card in cards:  # every card Firebell recorded is exactly one message in Teams
            assert card["activity_id"], f"INC-{card['incident_id']}: card never posted"
            assert posted[(card["incident_id"], card["conversation_id"])] == 1
        assert set(posted) == {(c["incident_id"], c["conversation_id"]) for c in cards}
        for root in roots:  # every root has its card in its team's channel
            assert (root["id"], f"19:{root['team']}-incidents@thread.tacv2") in posted
        print(f"\nkill -9: 1000 sent, {len(acked_first_pass)} acknowledged before the kill "
              f"(all found), {len(failed)} re-sent ({committed_unanswered} of them committed "
              f"but unanswered), {len(roots)} roots, {len(posted)} card posts, 0 doubles, "
              f"drained in {drained:.1f}s, {connector.throttled} Teams 429s")
    finally:
        app.kill()
        await db.close()


async def _event_keys(db: Database) -> set[str]:
    async with db.read() as conn:
        return set((await conn.execute(select(inbound_events.c.key))).scalars())


def _posts_per_card(connector) -> Counter:
    """New messages carrying an incident card, per (incident id, conversation)."""
    counts: Counter = Counter()
    for post in connector.posts:
        summary = post["activity"].get("summary") or ""
        found = REF.match(summary)
        if found and post["activity"].get("attachments"):
            counts[(int(found.group(1)), post["conversation_id"])] += 1
    return counts
