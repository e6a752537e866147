"""GET /metrics in Prometheus format, and structured logs with the incident id."""
import json
import logging

from observability.logs import JsonFormatter


async def test_metrics_count_deliveries_jobs_and_decisions(harness):
    h = harness
    await h.subscribe("payments")
    await h.pagerduty("01-payment-gateway-triggered.json")
    await h.pagerduty("01-payment-gateway-triggered.json")  # a redelivery
    await h.pagerduty("02-checkout-api-triggered.json", headers={"X-PagerDuty-Signature": "v1=0"})
    await h.settle()
    async with h.http.get(f"{h.url}/metrics") as resp:
        assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/plain")
        text = await resp.text()
    lines = {line.split(" ")[0]: float(line.split(" ")[1]) for line in text.splitlines()
             if line and not line.startswith("#")}
    assert lines['firebell_webhook_deliveries_total{result="ok",source="pagerduty"}'] == 2
    assert lines['firebell_webhook_deliveries_total{result="rejected_401",source="pagerduty"}'] == 1
    assert lines['firebell_correlation_decisions_total{decision="root"}'] == 1
    assert lines['firebell_outbox_jobs_total{kind="post_card",outcome="done"}'] >= 1
    assert lines['firebell_integration_call_seconds_count{outcome="done",system="teams"}'] >= 1
    assert "firebell_outbox_pending" in lines and "firebell_outbox_failed" in lines
    assert lines["firebell_outbox_oldest_due_seconds"] >= 0


def test_json_logs_carry_the_incident_id():
    record = logging.LogRecord("firebell.outbox", logging.WARNING, __file__, 1,
                               "job %s failed", ("42",), None)
    record.incident = "INC-7"
    line = json.loads(JsonFormatter().format(record))
    assert line["incident"] == "INC-7" and line["message"] == "job 42 failed"
    assert line["level"] == "warning" and line["time"].endswith("+00:00")


async def test_metrics_show_the_process_and_each_route_and_access_log_is_optional(
        database_url, connector, caplog):
    from tests.harness import Harness, make_settings
    h = await Harness(make_settings(database_url, access_log=True), connector).start()
    try:
        with caplog.at_level(logging.INFO, logger="firebell.access"):
            async with h.http.get(f"{h.url}/healthz") as resp:
                assert resp.status == 200
            async with h.http.get(f"{h.url}/charts/nothing-here.png?token=secret") as resp:
                assert resp.status == 404
            async with h.http.get(f"{h.url}/metrics") as resp:
                text = await resp.text()
    finally:
        await h.stop()
    for name in ("process_resident_memory_bytes", "process_cpu_seconds_total",
                 "process_open_fds", "python_gc_collections_total"):
        assert f"\n{name}" in text, name
    assert ('firebell_http_request_seconds_count{method="GET",route="/healthz",status="200"} 1.0'
            in text)
    assert ('firebell_http_request_seconds_count{method="GET",route="/charts/{key}.png",'
            'status="404"} 1.0' in text)
    logged = [r.getMessage() for r in caplog.records if r.name == "firebell.access"]
    assert any(m.startswith("GET /healthz 200 ") for m in logged), logged
    assert any(m.startswith("GET /charts/nothing-here.png 404 ") for m in logged)
    assert not any("secret" in m for m in logged)  # query strings are never logged


async def test_no_access_log_unless_asked(harness, caplog):
    with caplog.at_level(logging.INFO, logger="firebell.access"):
        async with harness.http.get(f"{harness.url}/healthz") as resp:
            assert resp.status == 200
    assert not [r for r in caplog.records if r.name == "firebell.access"]
