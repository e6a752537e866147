"""Heartbeats through the running app: beats at POST /webhooks/heartbeat/<name> and as
Alertmanager's Watchdog, the sweep that opens "No heartbeat from <name> for N min" once interval
and grace have passed (one incident per silence, also with two replicas sweeping), the incident
resolving itself when beats resume, and the state in `incident status` and /metrics. The
example catalog's heartbeat: alert-pipeline, service monitoring (team SRE), every 5m, grace 2m,
Alertmanager's Watchdog alert beats it too."""
import asyncio
import json
from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select

from app import Firebell, settings_from_env
from handlers.incident.heartbeats import sweep
from storage import heartbeats as beats_store
from storage.schema import heartbeats, incidents
from tests.harness import HEARTBEAT_TOKEN, card_text
from tests.reports.test_report_delivery import moving_clock

T0 = datetime(2025, 3, 14, 9, 0, tzinfo=timezone.utc)
URL = "/webhooks/heartbeat/alert-pipeline"


async def _beat(h, *, name="alert-pipeline", token=HEARTBEAT_TOKEN, body=b"", headers=None):
    sent = {"Authorization": f"Bearer {token}"} if token else {}
    sent.update(headers or {})
    async with h.http.post(f"{h.url}/webhooks/heartbeat/{name}", data=body,
                           headers=sent) as resp:
        return resp.status, await resp.json(content_type=None), resp.headers


def _at(h, minutes: float) -> None:
    h.ctx.clock = moving_clock(T0 + timedelta(minutes=minutes))


async def _walk(h, start: float, end: float) -> dict[str, str]:
    """Time passes from `start` to `end` minutes with the sweep looking every minute, as the
    scheduler's (every 10 s) would; the last look's states."""
    minute, states = start, {}
    while minute <= end:
        _at(h, minute)
        states = await sweep(h.ctx)
        minute += 1
    if minute - 1 < end:
        _at(h, end)
        states = await sweep(h.ctx)
    return states


async def _count(h, table) -> int:
    async with h.ctx.db.read() as conn:
        return (await conn.execute(select(func.count()).select_from(table))).scalar_one()


async def _heartbeat_incidents(h):
    return [i for i in await h.incidents() if i.source == "heartbeat"]


def _watchdog(status="firing", *, extra_alerts=(), group="{}:{alertname=\"Watchdog\"}"):
    alert = {"status": status, "labels": {"alertname": "Watchdog", "severity": "none"},
             "annotations": {"summary": "An alert that should always be firing"},
             "startsAt": "2025-03-14T08:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
             "fingerprint": "e0f1watchdog"}
    alerts = [alert, *extra_alerts]
    return json.dumps({"version": "4", "groupKey": group, "status": status, "receiver": "firebell",
                       "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {},
                       "externalURL": "https://alertmanager.shopfront.example",
                       "alerts": alerts}).encode()


async def test_a_silence_opens_one_incident_that_resolves_itself_when_beats_resume(harness):
    h = harness
    await h.subscribe("sre", channel="general")
    _at(h, 0)
    status, body, _ = await _beat(h)
    assert (status, body) == (200, {"heartbeat": "alert-pipeline", "status": "beat"})
    assert await _walk(h, 0, 6.5) == {"alert-pipeline": "up"}    # within 5m + 2m of the beat
    assert await _heartbeat_incidents(h) == []

    assert await _walk(h, 7.5, 7.5) == {"alert-pipeline": "missing"}  # 7.5 min silent
    assert await sweep(h.ctx) == {"alert-pipeline": "missing"}   # a second look: same incident
    (incident,) = await _heartbeat_incidents(h)
    assert incident.title == "No heartbeat from alert-pipeline for 7 min"
    assert (incident.service, incident.team, incident.level, incident.status) == \
        ("monitoring", "sre", "high-error-rate", "open")
    await h.settle()
    (card,) = h.cards_in("general")
    assert "No heartbeat from alert-pipeline for 7 min" in card_text(card)
    assert "OPEN" in card_text(card)

    _at(h, 9)                                            # the sender is back
    assert (await _beat(h))[0] == 200
    incident = await h.incident(incident.id)
    assert incident.status == "resolved"
    assert "beats from alert-pipeline resumed" in [e["text"] for e in await h.timeline(incident.id)]
    await h.settle()
    assert "RESOLVED" in card_text(h.cards_in("general")[0])
    assert await sweep(h.ctx) == {"alert-pipeline": "up"}
    assert len(await _heartbeat_incidents(h)) == 1

    assert await _walk(h, 10, 17) == {"alert-pipeline": "missing"}  # silent again: a new one
    assert len(await _heartbeat_incidents(h)) == 2


async def test_the_sweep_resolves_a_silence_whose_end_it_hears_of_first(harness):
    """A beat recorded without ending the silence (here: straight in storage, as a replica
    whose write raced the sweep would leave it) is found by the next sweep."""
    h = harness
    await _walk(h, 0, 8)
    (incident,) = await _heartbeat_incidents(h)
    async with h.ctx.db.write() as conn:
        await beats_store.beat(conn, "alert-pipeline", h.ctx.now())
    assert await sweep(h.ctx) == {"alert-pipeline": "up"}
    assert (await h.incident(incident.id)).status == "resolved"


async def test_bad_beats_get_404_401_400_413_and_change_nothing(harness):
    h = harness
    _at(h, 0)
    assert (await _beat(h, name="no-such-beat"))[0] == 404
    status, body, headers = await _beat(h, token="wrong-token")
    assert status == 401 and "invalid bearer token" in body["error"]
    assert headers["WWW-Authenticate"].startswith("Bearer")
    assert (await _beat(h, token=None))[0] == 401
    status, body, _ = await _beat(h, body=b"alive!")
    assert status == 400 and "not valid JSON" in body["error"]
    assert (await _beat(h, body=b'["alive"]'))[0] == 400
    assert (await _beat(h, body=b'{"a": "' + b"x" * 5000 + b'"}'))[0] == 413
    assert await _count(h, heartbeats) == 0
    # Empty, or a small JSON object: a beat.
    assert (await _beat(h, body=b'{"job": "nightly-export", "ok": true}'))[0] == 200
    assert (await _beat(h, body=b"  "))[0] == 200
    async with h.ctx.db.read() as conn:
        row = await beats_store.get(h.ctx.db, conn, "alert-pipeline")
    assert row["beats"] == 2 and row["last_beat_at"] is not None


async def test_alertmanagers_watchdog_is_a_beat_not_an_incident(harness):
    h = harness
    _at(h, 0)
    await sweep(h.ctx)
    resp = await h.alertmanager("watchdog", body=_watchdog())
    assert resp.status == 200
    assert await _count(h, incidents) == 0
    assert await _walk(h, 1, 8) == {"alert-pipeline": "missing"}  # 8 min after its beat
    (silence,) = await _heartbeat_incidents(h)
    _at(h, 9)
    assert (await h.alertmanager("watchdog", body=_watchdog())).status == 200
    assert (await h.incident(silence.id)).status == "resolved"
    # A resolved Watchdog (Prometheus stopped refreshing it) is no beat and no incident either.
    _at(h, 10)
    assert (await h.alertmanager("watchdog", body=_watchdog("resolved"))).status == 202
    assert await _walk(h, 10, 17) == {"alert-pipeline": "missing"}
    assert len(await h.incidents()) == 2


async def test_a_watchdog_grouped_with_real_alerts_beats_and_leaves_them_their_incident(harness):
    h = harness
    _at(h, 0)
    real = {"status": "firing", "labels": {"alertname": "SearchDown", "service": "search-service"},
            "annotations": {"summary": "search-service down"}, "startsAt": "2025-03-14T08:59:00Z",
            "endsAt": "0001-01-01T00:00:00Z", "fingerprint": "f00dsearch"}
    resp = await h.alertmanager("mixed", body=_watchdog(extra_alerts=[real], group="{}:{}"))
    assert resp.status == 200
    (incident,) = await h.incidents()
    assert incident.title == "search-service down"
    assert [a["fingerprint"] for a in incident.details["alerts"]] == ["f00dsearch"]
    async with h.ctx.db.read() as conn:
        assert (await beats_store.get(h.ctx.db, conn, "alert-pipeline"))["beats"] == 1


async def test_firebell_down_longer_than_the_allowed_silence_is_not_every_senders_outage(
        harness):
    h = harness
    _at(h, 0)
    await _beat(h)
    await sweep(h.ctx)
    _at(h, 120)                       # no sweep for two hours (Firebell was down): watch again
    assert await sweep(h.ctx) == {"alert-pipeline": "waiting"}
    assert await _heartbeat_incidents(h) == []
    assert await _walk(h, 121, 127.5) == {"alert-pipeline": "missing"}  # then a real silence
    (incident,) = await _heartbeat_incidents(h)
    assert incident.title == "No heartbeat from alert-pipeline for 7 min"


async def test_two_replicas_sweeping_one_silence_open_one_incident(harness):
    h = harness
    other = Firebell(h.settings)
    try:
        await _walk(h, 0, 6)
        for ctx in (h.ctx, other.ctx):
            ctx.clock = moving_clock(T0 + timedelta(minutes=8))
        results = await asyncio.gather(h.firebell.periodic.sweep_heartbeats(),
                                       other.periodic.sweep_heartbeats())
        assert {"alert-pipeline": "missing"} in results
        # Without the lease (it lapsed mid-run): the silence's natural id still opens one.
        await asyncio.gather(sweep(h.ctx), sweep(other.ctx))
        assert len(await _heartbeat_incidents(h)) == 1
    finally:
        await other.db.close()
        await other.clients.close()


async def test_status_and_metrics_show_each_heartbeat(harness):
    h = harness
    _at(h, 0)
    await _beat(h)
    reply = await h.say("incident status", who="sarah")
    text = card_text(reply["attachments"][0]["content"])
    assert "Heartbeats" in text and "alert-pipeline: up, last beat" in text
    async with h.http.get(f"{h.url}/metrics") as resp:
        metrics = await resp.text()
    assert 'firebell_heartbeat_up{heartbeat="alert-pipeline"} 1.0' in metrics
    assert 'firebell_webhook_deliveries_total{result="ok",source="heartbeat"} 1.0' in metrics

    await _walk(h, 1, 10)
    (incident,) = await _heartbeat_incidents(h)
    reply = await h.say("incident status", who="sarah")
    text = card_text(reply["attachments"][0]["content"])
    assert f"alert-pipeline: MISSING for 10 min ({incident.ref})" in text
    async with h.http.get(f"{h.url}/metrics") as resp:
        metrics = await resp.text()
    assert 'firebell_heartbeat_up{heartbeat="alert-pipeline"} 0.0' in metrics
    silence = next(line for line in metrics.splitlines()
                   if line.startswith('firebell_heartbeat_seconds_since_beat{'))
    assert 600 <= float(silence.split()[-1]) < 660


def test_app_reads_each_heartbeats_token_from_the_variable_its_entry_names():
    env = {"FIREBELL_HEARTBEAT_ALERT_PIPELINE_TOKEN": " s3cret "}
    assert settings_from_env(env).webhooks.heartbeats == {"alert-pipeline": "s3cret"}
    assert settings_from_env({}).webhooks.heartbeats == {"alert-pipeline": ""}


async def test_a_heartbeat_without_its_token_refuses_beats_and_status_says_what_to_set(
        database_url, connector):
    from dataclasses import replace

    from tests.harness import Harness, make_settings
    settings = make_settings(database_url)
    settings = replace(settings, webhooks=replace(settings.webhooks, heartbeats={}))
    h = await Harness(settings, connector).start()
    try:
        status, body, _ = await _beat(h)
        assert status == 401 and "FIREBELL_HEARTBEAT_ALERT_PIPELINE_TOKEN" in body["error"]
        reply = await h.say("incident status", who="sarah")
        assert "FIREBELL_HEARTBEAT_ALERT_PIPELINE_TOKEN is not set" in \
            card_text(reply["attachments"][0]["content"])
        assert (await h.alertmanager("watchdog", body=_watchdog())).status == 200  # still beats
    finally:
        await h.stop()
