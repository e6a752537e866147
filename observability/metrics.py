"""Prometheus metrics, served at GET /metrics. One registry per app instance, so tests that run
several apps in one process do not share counters."""
from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST as CONTENT_TYPE  # the /metrics route's type
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.gc_collector import GCCollector
from prometheus_client.process_collector import ProcessCollector

__all__ = ["CONTENT_TYPE", "Metrics"]

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        # The process: resident memory, CPU seconds, open file descriptors, start time (from
        # /proc), and the garbage collector's collections per generation.
        ProcessCollector(registry=r)
        GCCollector(registry=r)
        self.requests = Histogram("firebell_http_request_seconds",
                                  "HTTP answer time by route (the pattern, not the path), "
                                  "method and status", ["route", "method", "status"],
                                  buckets=_LATENCY_BUCKETS, registry=r)
        self.deliveries = Counter("firebell_webhook_deliveries_total",
                                  "Webhook deliveries by source and result", ["source", "result"],
                                  registry=r)
        self.activities = Counter("firebell_activities_total", "Teams activities by type",
                                  ["type"], registry=r)
        self.jobs = Counter("firebell_outbox_jobs_total", "Outbox job runs by kind and outcome",
                            ["kind", "outcome"], registry=r)
        self.retries = Counter("firebell_outbox_retries_total", "Outbox retries by kind",
                               ["kind"], registry=r)
        self.parked = Counter("firebell_outbox_parked_total", "Jobs parked as failed, by kind",
                              ["kind"], registry=r)
        self.outbox_pending = Gauge("firebell_outbox_pending", "Jobs pending or running",
                                    registry=r)
        self.outbox_oldest = Gauge("firebell_outbox_oldest_due_seconds",
                                   "Age of the oldest due job", registry=r)
        self.outbox_failed = Gauge("firebell_outbox_failed", "Jobs parked as failed", registry=r)
        self.calls = Histogram("firebell_integration_call_seconds",
                               "Outside calls by system and outcome", ["system", "outcome"],
                               buckets=_LATENCY_BUCKETS, registry=r)
        self.correlations = Counter("firebell_correlation_decisions_total",
                                    "Correlation decisions by outcome", ["decision"], registry=r)
        self.ingest_seconds = Histogram("firebell_webhook_seconds", "Webhook answer time",
                                        ["source"], buckets=_LATENCY_BUCKETS, registry=r)

        # Heartbeats (dead-man's switches): refreshed from the database on every scrape.
        self.heartbeat_silence = Gauge(
            "firebell_heartbeat_seconds_since_beat", "Seconds since the heartbeat's last beat "
            "(since Firebell started watching it, before the first)", ["heartbeat"], registry=r)
        self.heartbeat_up = Gauge("firebell_heartbeat_up", "1 while the heartbeat beats within "
                                  "its interval and grace, 0 while it is missing", ["heartbeat"],
                                  registry=r)

    def render(self) -> bytes:
        return generate_latest(self.registry)
