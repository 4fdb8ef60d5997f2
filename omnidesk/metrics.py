"""Prometheus metrics for /metrics. One registry per daemon so tests can run several.

Most figures live in Redis (shared by every daemon and worker), so they are read at
scrape time into gauges; only in-process timings are observed as they happen.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Gauge, Histogram, generate_latest

from connectors.base import ConnectorStatus


class Metrics:
    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self.messages_in = Gauge(
            "omnidesk_messages_in_total", "Messages taken in, by channel", ["channel"], registry=r
        )
        self.stats = Gauge(
            "omnidesk_pipeline_total",
            "Pipeline counters (opened, duplicates, auto_ignored, quarantined, delivery:...)",
            ["counter"],
            registry=r,
        )
        self.tickets = Gauge("omnidesk_tickets", "Tickets by status", ["status"], registry=r)
        self.tickets_by_queue = Gauge(
            "omnidesk_queue_tickets", "Tickets ever routed to a queue", ["queue"], registry=r
        )
        self.queue_depth = Gauge(
            "omnidesk_queue_depth", "Open unassigned tickets per queue", ["queue"], registry=r
        )
        self.quarantine = Gauge(
            "omnidesk_quarantine_size", "Payloads in the quarantine", registry=r
        )
        self.routing_latency = Histogram(
            "omnidesk_ingest_seconds",
            "Normalize+route+intake time per batch",
            registry=r,
            buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5),
        )
        self.connector_received = Gauge(
            "omnidesk_connector_received", "Payloads received", ["connector", "kind"], registry=r
        )
        self.connector_handed_over = Gauge(
            "omnidesk_connector_handed_over",
            "Payloads handed to the pipeline",
            ["connector", "kind"],
            registry=r,
        )
        self.connector_errors = Gauge(
            "omnidesk_connector_errors",
            "Connector errors by kind",
            ["connector", "error"],
            registry=r,
        )
        self.connector_up = Gauge(
            "omnidesk_connector_running",
            "1 when the connector is running",
            ["connector", "kind"],
            registry=r,
        )
        self.connector_last_fetch = Gauge(
            "omnidesk_connector_last_fetch_seconds",
            "Unix time of the last fetch",
            ["connector"],
            registry=r,
        )
        self.up = Gauge(
            "omnidesk_dependency_up",
            "1 when Redis / the broker answers",
            ["dependency"],
            registry=r,
        )
        self.records_backlog = Gauge(
            "omnidesk_records_backlog",
            "Events in the Redis stream not yet written to PostgreSQL",
            registry=r,
        )
        self.records_written = Gauge(
            "omnidesk_records_written",
            "Events this daemon has written to PostgreSQL since it started",
            registry=r,
        )
        self.sla = Gauge(
            "omnidesk_sla_steps", "SLA warnings and breaches so far", ["kind"], registry=r
        )
        self.sla_clocks = Gauge(
            "omnidesk_sla_clocks",
            "Tickets by queue and SLA standing: running, paused (no clock running), warned (a "
            "ladder step fired), breached (a running clock past its due time)",
            ["queue", "state"],
            registry=r,
        )
        self.broker_messages = Gauge(
            "omnidesk_broker_messages",
            "Broker messages per queue by state: queued, in_flight (fetched by a worker, not "
            "acked), delayed (retries waiting out their backoff), dead (dead-lettered)",
            ["queue", "state"],
            registry=r,
        )
        self.broker_oldest = Gauge(
            "omnidesk_broker_oldest_age_seconds",
            "Age of the oldest message still to be done (queued, in flight or delayed)",
            ["queue"],
            registry=r,
        )
        self.sla_buckets = Gauge(
            "omnidesk_sla_buckets",
            "Sweeper buckets (~100 tickets each) by state (scheduled: a wakeup is pending; "
            "held: a sweeper is firing it)",
            ["state"],
            registry=r,
        )

    def update_records(self, up: bool | None, backlog: int, written: int) -> None:
        """The outbox writer: PostgreSQL reachable, events not yet written, written here."""
        if up is not None:
            self.up.labels(dependency="postgresql").set(1 if up else 0)
        self.records_backlog.set(backlog)
        self.records_written.set(written)

    def update_broker(self, figures: dict[str, dict[str, float]]) -> None:
        """Per broker queue: messages by state, and the oldest one's age
        (omnidesk.redisbroker.queue_figures)."""
        for queue, values in figures.items():
            for state, value in values.items():
                if state == "oldest_age_s":
                    self.broker_oldest.labels(queue=queue).set(value)
                else:
                    self.broker_messages.labels(queue=queue, state=state).set(value)

    def update_store(self, counts: dict[str, Any]) -> None:
        for name, value in counts.get("stats", {}).items():
            if name.startswith("in:"):
                self.messages_in.labels(channel=name[3:]).set(value)
            elif name.startswith("sla:"):
                self.sla.labels(kind=name[4:]).set(value)
            else:
                self.stats.labels(counter=name).set(value)
        for status, value in counts.get("tickets_by_status", {}).items():
            self.tickets.labels(status=status).set(value)
        for queue, value in counts.get("tickets_by_queue", {}).items():
            self.tickets_by_queue.labels(queue=queue).set(value)
        for queue, value in counts.get("waiting_by_queue", {}).items():
            self.queue_depth.labels(queue=queue).set(value)
        self.quarantine.set(counts.get("quarantine", 0))

    def update_sla(self, counts: dict[str, Any]) -> None:
        for queue, standings in counts.get("by_queue", {}).items():
            for state, value in standings.items():
                self.sla_clocks.labels(queue=queue, state=state).set(value)
        for state in ("scheduled", "held"):
            self.sla_buckets.labels(state=state).set(counts.get(state, 0))
        for kind in ("warned", "breached"):
            self.sla.labels(kind=kind).set(counts.get(kind, 0))

    def update_connectors(self, statuses: Iterable[ConnectorStatus]) -> None:
        for st in statuses:
            self.connector_received.labels(connector=st.name, kind=st.kind).set(st.received)
            self.connector_handed_over.labels(connector=st.name, kind=st.kind).set(st.handed_over)
            self.connector_up.labels(connector=st.name, kind=st.kind).set(
                1 if st.state == "running" else 0
            )
            for kind, count in st.errors.items():
                self.connector_errors.labels(connector=st.name, error=kind).set(count)
            if st.last_fetch is not None:
                self.connector_last_fetch.labels(connector=st.name).set(st.last_fetch.timestamp())

    def render(self) -> bytes:
        return generate_latest(self.registry)
