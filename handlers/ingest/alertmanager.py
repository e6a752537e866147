"""Prometheus Alertmanager webhooks (version 4) to AlertEvents.

One incident per alert group (`groupKey`); the alerts inside it are tracked by their
`fingerprint`. A group stays firing while any of its alerts fires.

An alert the catalog names as a heartbeat (`alertname: Watchdog` on a `heartbeats:` entry) is
no incident: firing, it is a beat of that heartbeat; it is taken out of its group before the
group is read, so a group of nothing else opens nothing.
"""
from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any, Callable, Mapping

from handlers.ingest.body import parse_json_object
from handlers.ingest.delivery import (Delivery, Rejected, mapping, optional_time, parse_time,
                                        text)
from incidents import alerts as a
from incidents.alerts import AlertEvent
from incidents.fingerprint import alert_fingerprint

MAX_ALERTS = 500
_NEVER = "0001-01-01T00:00:00Z"   # Go's zero time: how Alertmanager says "not ended"


WatchdogOf = Callable[[Mapping[str, str]], "str | None"]   # alert labels -> heartbeat name


def parse_alertmanager(body: bytes, watchdog_of: WatchdogOf | None = None) -> Delivery:
    doc = parse_json_object(body)
    group_key = text(doc.get("groupKey"), 1000)
    status = doc.get("status")
    raw_alerts = doc.get("alerts")
    if not group_key or status not in ("firing", "resolved") or not isinstance(raw_alerts, list):
        raise Rejected(400, "not an Alertmanager webhook: expected groupKey, status "
                            "(firing|resolved) and an alerts list")
    if str(doc.get("version", "4")) != "4":
        raise Rejected(400, f"unsupported Alertmanager webhook version {doc.get('version')!r}; "
                            "Firebell speaks version 4")
    alerts = tuple(_alert(x, i) for i, x in enumerate(raw_alerts[:MAX_ALERTS]))
    alerts, beats = _without_watchdogs(alerts, watchdog_of)
    if beats is not None and not alerts:
        return Delivery("alertmanager", None, (), beats=beats)
    common = {k: str(v) for k, v in mapping(doc.get("commonLabels")).items()}
    group = {k: str(v) for k, v in mapping(doc.get("groupLabels")).items()}
    annotations = mapping(doc.get("commonAnnotations"))
    firing = [x for x in alerts if x["status"] == "firing"]
    kind = a.TRIGGERED if firing else a.RESOLVED
    labels = {**group, **common}
    alertname = labels.get("alertname") or "alert"
    return Delivery("alertmanager", None, (AlertEvent(
        source="alertmanager", event_id=_event_id(group_key, alerts), kind=kind,
        external_id=group_key, occurred_at=_when(alerts, firing),
        title=_title(alertname, labels, annotations, alerts),
        service=text(labels.get("service") or labels.get("job"), 200),
        html_url=text(doc.get("externalURL"), 500),
        labels=labels, alerts=alerts,
        detail=f"{len(firing)} of {len(alerts)} alerts firing",
        fingerprint=alert_fingerprint(alertname, group or common),
    ),), beats=beats or ())


def _without_watchdogs(alerts: tuple[dict[str, Any], ...], watchdog_of: WatchdogOf | None
                       ) -> tuple[tuple[dict[str, Any], ...], tuple[str, ...] | None]:
    """The group's other alerts, and the heartbeats its firing watchdog alerts beat (None when
    it had no watchdog alert at all). A resolved watchdog is no beat: it means the alert
    pipeline stopped refreshing it."""
    if watchdog_of is None:
        return alerts, None
    named = [(x, watchdog_of(x["labels"])) for x in alerts]
    if not any(name for _, name in named):
        return alerts, None
    beats = tuple(dict.fromkeys(name for x, name in named if name and x["status"] == "firing"))
    return tuple(x for x, name in named if not name), beats


def _alert(raw: Any, i: int) -> dict[str, Any]:
    x = mapping(raw)
    status = x.get("status")
    if status not in ("firing", "resolved"):
        raise Rejected(400, f"alerts[{i}].status must be firing or resolved")
    originals: dict[str, str] = {}
    ends = optional_time(x.get("endsAt"), f"alerts[{i}].endsAt", originals, "ends_at")
    alert = {
        "fingerprint": text(x.get("fingerprint"), 64) or f"alert-{i}",
        "status": status,
        "starts_at": parse_time(x.get("startsAt"), f"alerts[{i}].startsAt").isoformat(),
        "ends_at": ends.isoformat() if ends else None,
        "summary": text(mapping(x.get("annotations")).get("summary"), 500),
        "labels": {k: str(v)[:200] for k, v in list(mapping(x.get("labels")).items())[:50]},
    }
    # Any endsAt outside the accepted range reads as "not ended", like Go's zero time; all but
    # the zero time are kept as sent.
    if originals and originals["ends_at"] != _NEVER:
        alert["ends_at_original"] = originals["ends_at"]
    return alert


def _when(alerts: tuple[dict[str, Any], ...], firing: list[dict[str, Any]]) -> datetime:
    if firing:
        return min(datetime.fromisoformat(x["starts_at"]) for x in firing)
    ends = [datetime.fromisoformat(x["ends_at"]) for x in alerts if x["ends_at"]]
    starts = [datetime.fromisoformat(x["starts_at"]) for x in alerts]
    if not (ends or starts):
        raise Rejected(400, "an Alertmanager webhook needs at least one alert")
    return max(ends or starts)


def _title(alertname: str, labels: dict[str, str], annotations: dict[str, Any],
           alerts: tuple[dict[str, Any], ...]) -> str:
    summary = text(annotations.get("summary"), 1024) or next(
        (x["summary"] for x in alerts if x["summary"]), None)
    if summary:
        return summary
    where = labels.get("service") or labels.get("job") or labels.get("instance")
    return f"{alertname} on {where}" if where else alertname


def _event_id(group_key: str, alerts: tuple[dict[str, Any], ...]) -> str:
    # Alertmanager has no delivery id; the same group state sent twice is the same event.
    state = "|".join(sorted(f"{x['fingerprint']}:{x['status']}:{x['starts_at']}:{x['ends_at']}"
                            for x in alerts))
    return "am:" + hashlib.sha256(f"{group_key}|{state}".encode()).hexdigest()[:40]
