"""Prometheus metrics for /metrics. One registry per daemon so tests can run several."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.messages_in = Counter(
            "omnidesk_messages_in", "Payloads received, by channel", ["channel"], registry=r
        )
        self.handed_over = Counter(
            "omnidesk_handed_over", "Payloads handed to the pipeline", ["connector"], registry=r
        )
        self.connector_errors = Counter(
            "omnidesk_connector_errors",
            "Connector errors by kind",
            ["connector", "kind"],
            registry=r,
        )
        self.routing_latency = Histogram(
            "omnidesk_routing_seconds",
            "Normalize+route+intake time",
            registry=r,
            buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5),
        )
        self.tickets = Gauge(
            "omnidesk_tickets", "Tickets by queue and status", ["queue", "status"], registry=r
        )
        self.queue_depth = Gauge(
            "omnidesk_queue_depth", "Tickets waiting per queue", ["queue"], registry=r
        )
        self.quarantine = Gauge(
            "omnidesk_quarantine_size", "Payloads in the quarantine", registry=r
        )
        self.sla_events = Gauge(
            "omnidesk_sla_events", "SLA warnings and breaches so far", ["kind"], registry=r
        )
        self.sla_clocks = Gauge(
            "omnidesk_sla_clocks", "SLA clocks by state and queue", ["queue", "state"], registry=r
        )
        self.up = Gauge(
            "omnidesk_dependency_up",
            "1 when Redis / the broker answers",
            ["dependency"],
            registry=r,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
