"""Scale out: three Firebell processes on one PostgreSQL database, a storm spread across them
(and PagerDuty redelivering to a different replica than the first time). Every delivery is
handled once, every card posted once, no JIRA task or war room twice, and each scheduled digest
goes out once although every replica's scheduler tries."""
from __future__ import annotations

import asyncio
import re
from collections import Counter

import aiohttp
import pytest
from sqlalchemy import select

from incidents.catalog import load_catalog
from storage.db import Database
from storage.schema import card_messages, inbound_events, incidents, outbox, timeline
from tests.conftest import CATALOG, USING_POSTGRES
from tests.fakes.smtp import FakeSmtpServer
from tests.processes import (FirebellProcess, OutsideWorld, channel_id, deliver_all, plan_storm,
                             subscribe_channels, wait_until_drained)

CATALOG_DATA = load_catalog(CATALOG)
REF = re.compile(r"^INC-(\d+) ")
DIGEST = re.compile(r"^(Weekly incident digest|Monthly incident report): ")
LEADERSHIP = "leadership@shopfront.example"

pytestmark = pytest.mark.skipif(not USING_POSTGRES, reason=(
    "PostgreSQL only: replicas scale out on one PostgreSQL server (outbox claims with SKIP "
    "LOCKED, leases, unique deliveries); SQLite is one process's file"))


@pytest.mark.slow
async def test_three_replicas_share_a_storm_and_do_everything_once(database_url, connector,
                                                                   tmp_path):
    connector.enforce_rate_limits()  # Teams' limits are per conversation, whoever sends
    smtp = FakeSmtpServer()
    await smtp.start()
    db = Database(database_url)
    replicas: list[FirebellProcess] = []
    async with OutsideWorld(CATALOG_DATA) as world:
        env = {**world.env, "SMTP_HOST": smtp.host, "SMTP_PORT": str(smtp.port),
               "SMTP_STARTTLS": "false", "SMTP_FROM": "firebell@shopfront.example",
               "FIREBELL_DIGEST_EMAILS": LEADERSHIP, "FIREBELL_OUTBOX_LEASE_SECONDS": "30"}
        try:
            # The channels are subscribed first (by a replica that is then stopped), so that
            # the three replicas' schedulers all find digests due when they start together.
            setup = FirebellProcess(database_url, tmp_path, name="setup", env=env).start()
            replicas.append(setup)
            await setup.wait_ready()
            channels = await subscribe_channels(setup.url, connector,
                                                [*CATALOG_DATA.teams, "default"])
            await wait_until_drained(db, 20, procs=[setup])
            setup.stop()
            replicas.clear()
            replicas.extend(FirebellProcess(database_url, tmp_path, name=f"replica-{i}",
                                            env={**env, "FIREBELL_SCHEDULER": "on"})
                            for i in range(3))
            for replica in replicas:
                replica.start()
            await asyncio.gather(*(r.wait_ready() for r in replicas))

            # The storm, round robin; a redelivery goes to another replica than the original.
            plan = plan_storm(CATALOG_DATA, 600, seed=11)
            first_at: dict[str, int] = {}
            targets, moved = [], 0
            for n, delivery in enumerate(plan):
                replica = n % 3
                if delivery.event_id in first_at:
                    replica = (first_at[delivery.event_id] + 1) % 3
                    moved += 1
                first_at.setdefault(delivery.event_id, replica)
                targets.append((replicas[replica].url, delivery))
            async with aiohttp.ClientSession() as http:
                await deliver_all(http, targets)
            assert Counter(d.statuses[-1] for d in plan) == Counter({200: len(plan)})
            drained = await wait_until_drained(db, 120, procs=replicas)

            async with db.read() as conn:
                rows = (await conn.execute(select(incidents))).mappings().all()
                entries = (await conn.execute(select(timeline.c.data))).scalars().all()
                events = set((await conn.execute(select(inbound_events.c.key))).scalars())
                cards = (await conn.execute(select(card_messages))).mappings().all()
                jobs = (await conn.execute(select(outbox.c.kind, outbox.c.status,
                                                  outbox.c.claimed_by, outbox.c.attempts,
                                                  outbox.c.last_error, outbox.c.id))).all()
            # Each delivery handled once, whichever replica got it (and got it again).
            assert events >= {f"pd3:{d.event_id}" for d in plan}
            assert {r["external_id"] for r in rows} == {d.external_id for d in plan}
            per_event = Counter((e or {}).get("event_id") for e in entries
                                if (e or {}).get("event_id"))
            assert max(per_event.values()) == 1
            assert all(r["correlated"] for r in rows)
            assert [j for j in jobs if j.status == "failed"] == []
            workers = Counter(j.claimed_by for j in jobs if j.status == "done" and j.claimed_by)
            assert len(workers) >= 3, workers  # the replicas shared the outbox

            # Each card posted once; each root's card in its channel.
            posted, digests = _posts(connector)
            assert max(posted.values()) == 1, {k: n for k, n in posted.items() if n > 1}
            assert set(posted) == {(c["incident_id"], c["conversation_id"]) for c in cards}
            roots = [r for r in rows if r["parent_id"] is None]
            for root in roots:
                assert (root["id"], channel_id(root["team"])) in posted
            # No JIRA task, war room or incident e-mail twice.
            tasks, rooms = world.postmortem_tasks(), world.war_rooms()
            assert tasks and max(tasks.values()) == 1, tasks
            assert rooms and max(rooms.values()) == 1, rooms
            levels = CATALOG_DATA.levels
            for root in roots:
                ref = f"INC-{root['id']}"
                assert tasks[ref] == (1 if levels.needs_postmortem_for(root["level"]) else 0)
                assert rooms[ref] == (1 if levels.needs_war_room(root["level"]) else 0)
            mails = Counter((m.message["Subject"], tuple(sorted(m.rcpt_tos)))
                            for m in smtp.messages)
            assert max(mails.values()) == 1, (
                {k: n for k, n in mails.items() if n > 1}, [j for j in jobs if j.attempts > 1],
                [line for r in replicas for line in r.log_lines("e-mail|email|smtp")])

            # Each digest once per channel and per mailing list, although three schedulers ran.
            assert digests == Counter({(kind, conv): 1 for conv in channels.values()
                                       for kind in ("Weekly incident digest",
                                                    "Monthly incident report")})
            digest_mails = [k for k in mails if "incident digest —" in k[0]
                            or "incident report —" in k[0]]
            lists = {(t.email,) for t in CATALOG_DATA.teams.values()} | {(LEADERSHIP,)}
            assert Counter(rcpt for _, rcpt in digest_mails) == Counter(
                {rcpt: 2 for rcpt in lists})
            print(f"\nscale-out: {len(plan)} deliveries over 3 replicas ({moved} redelivered "
                  f"to another replica), {len(rows)} incidents, {len(roots)} roots, "
                  f"{len(posted)} card posts, {sum(tasks.values())} JIRA tasks, "
                  f"{sum(rooms.values())} war rooms, {sum(digests.values())} digest cards and "
                  f"{len(digest_mails)} digest e-mails, 0 doubles; jobs per worker "
                  f"{sorted(workers.values())}; drained in {drained:.1f}s; "
                  f"{connector.throttled} Teams 429s")
        finally:
            for replica in replicas:
                replica.stop()
            await db.close()
            await smtp.stop()


def _posts(connector) -> tuple[Counter, Counter]:
    """New messages with an incident card per (incident id, conversation), and digest cards
    per (kind, conversation)."""
    cards, digests = Counter(), Counter()
    for post in connector.posts:
        summary = post["activity"].get("summary") or ""
        if not post["activity"].get("attachments"):
            continue
        if found := REF.match(summary):
            cards[(int(found.group(1)), post["conversation_id"])] += 1
        elif found := DIGEST.match(summary):
            digests[(found.group(1), post["conversation_id"])] += 1
    return cards, digests
