"""`firebell send-test-alert [--url …]`: a sample PagerDuty V3 `incident.triggered` event, with
the current time and fresh ids, signed with the first of PAGERDUTY_WEBHOOK_SECRETS and posted
to a running Firebell's /webhooks/pagerduty: the quickest proof that the webhook, the catalog's
routing and the channel card work end to end."""
from __future__ import annotations

import json
import secrets
from datetime import datetime, timezone

import httpx

from cli.errors import CliError
from cli.offline import load_settings
from handlers.ingest.signature import sign
from incidents.catalog import CatalogError, load_catalog


def sample_event(service: str, now: datetime) -> dict:
    stamp = now.astimezone(timezone.utc)
    incident_id = "PTEST" + secrets.token_hex(4).upper()
    return {"event": {
        "id": "01TEST" + secrets.token_hex(10).upper(),
        "event_type": "incident.triggered", "resource_type": "incident",
        "occurred_at": stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "agent": None, "client": None,
        "data": {
            "id": incident_id, "type": "incident", "number": secrets.randbelow(90000) + 10000,
            "status": "triggered", "incident_key": secrets.token_hex(16),
            "created_at": stamp.isoformat(timespec="seconds").replace("+00:00", "Z"),
            "title": f"{service}: test alert from `firebell send-test-alert`",
            "html_url": f"https://example.pagerduty.com/incidents/{incident_id}",
            "service": {"id": "PTEST01", "summary": service, "type": "service_reference"},
            "assignees": [], "escalation_policy": None, "teams": [], "priority": None,
            "urgency": "high", "conference_bridge": None, "resolve_reason": None}}}


def send(url: str | None) -> int:
    settings = load_settings()
    if not settings.webhooks.pagerduty:
        raise CliError("PAGERDUTY_WEBHOOK_SECRETS is not set, so Firebell refuses every "
                       "PagerDuty delivery (401): set it here and for the server")
    try:
        services = list(load_catalog(settings.catalog_path).services)
    except CatalogError as exc:
        raise CliError(str(exc)) from None
    body = json.dumps(sample_event(services[0] if services else "test-service",
                                   datetime.now(timezone.utc))).encode()
    target = (url or f"http://127.0.0.1:{settings.port}").rstrip("/") + "/webhooks/pagerduty"
    headers = {"Content-Type": "application/json",
               "X-PagerDuty-Signature": sign(settings.webhooks.pagerduty[0], body),
               "X-Webhook-Id": "firebell-test-" + secrets.token_hex(8)}
    try:
        answer = httpx.post(target, content=body, headers=headers, timeout=10)
    except httpx.HTTPError as exc:
        raise CliError(f"could not reach {target}: {exc or type(exc).__name__} "
                       "(is Firebell running? --url says where)") from None
    if answer.status_code >= 300:
        raise CliError(f"{target} answered {answer.status_code}: {answer.text[:300]}")
    print(f"sent a signed test alert to {target}: {answer.status_code} {answer.text[:200]}")
    return 0
