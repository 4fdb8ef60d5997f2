"""Prometheus metrics for /metrics. One registry per daemon so tests can run several.

Most figures live in Redis (shared by every daemon and worker), so they are read at
scrape time into a `Scrape`, which a custom collector turns into fresh metric families
for that scrape alone: a label that is gone (a queue emptied, a connector removed)
disappears from /metrics, and nothing is left over from the scrape before. Only
in-process timings are observed as they happen, into an ordinary Histogram.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from connectors.base import ConnectorStatus


class Scrape:
    """The figures read for one scrape, as metric families keyed by name."""

    def __init__(self) -> None:
        self.families: dict[str, Metric] = {}
        # SLA steps come from two reads (the store's counters and the sweeper's counts);
        # the later one wins per kind, so the family is built once both are in.
        self.sla_steps: dict[str, float] = {}

    def metric_families(self) -> Iterator[Metric]:
        yield from self.families.values()
        if self.sla_steps:
            steps = GaugeMetricFamily(
                "omnidesk_sla_steps", "SLA warnings and breaches so far", labels=["kind"]
            )
            for kind, value in self.sla_steps.items():
                steps.add_metric([kind], value)
            yield steps

    def _gauge(self, name: str, doc: str, labels: Iterable[str] = ()) -> GaugeMetricFamily:
        family = self.families.get(name)
        if family is None:
            family = self.families[name] = GaugeMetricFamily(name, doc, labels=list(labels))
        assert isinstance(family, GaugeMetricFamily)
        return family

    def _counter(self, name: str, doc: str, labels: Iterable[str]) -> CounterMetricFamily:
        """A counter kept in Redis (only ever incremented); exposed as `<name>_total`."""
        family = self.families.get(name)
        if family is None:
            family = self.families[name] = CounterMetricFamily(name, doc, labels=list(labels))
        assert isinstance(family, CounterMetricFamily)
        return family

    def update_dependency(self, dependency: str, up: bool) -> None:
        """Whether Redis, the broker or PostgreSQL answered for this scrape."""
        self._gauge(
            "omnidesk_dependency_up", "1 when Redis / the broker answers", ["dependency"]
        ).add_metric([dependency], 1 if up else 0)

    def update_records(self, up: bool | None, backlog: int, written: int) -> None:
        """The outbox writer: PostgreSQL reachable, events not yet written, written here."""
        if up is not None:
            self.update_dependency("postgresql", up)
        self._gauge(
            "omnidesk_records_backlog", "Events in the Redis stream not yet written to PostgreSQL"
        ).add_metric([], backlog)
        self._gauge(
            "omnidesk_records_written",
            "Events this daemon has written to PostgreSQL since it started",
        ).add_metric([], written)

    def update_broker(self, figures: dict[str, dict[str, float]]) -> None:
        """Per broker queue: messages by state, and the oldest one's age
        (omnidesk.redisbroker.queue_figures)."""
        messages = self._gauge(
            "omnidesk_broker_messages",
            "Broker messages per queue by state: queued, in_flight (fetched by a worker, not "
            "acked), delayed (retries waiting out their backoff), dead (dead-lettered)",
            ["queue", "state"],
        )
        oldest = self._gauge(
            "omnidesk_broker_oldest_age_seconds",
            "Age of the oldest message still to be done (queued, in flight or delayed)",
            ["queue"],
        )
        for queue, values in figures.items():
            for state, value in values.items():
                if state == "oldest_age_s":
                    oldest.add_metric([queue], value)
                else:
                    messages.add_metric([queue, state], value)

    def update_store(self, counts: dict[str, Any]) -> None:
        """Store.counts(): the pipeline's counters, tickets by status and queue, quarantine."""
        messages_in = self._counter(
            "omnidesk_messages_in", "Messages taken in, by channel", ["channel"]
        )
        pipeline = self._counter(
            "omnidesk_pipeline",
            "Pipeline counters (opened, duplicates, auto_ignored, quarantined, delivery:...)",
            ["counter"],
        )
        for name, value in counts.get("stats", {}).items():
            if name.startswith("in:"):
                messages_in.add_metric([name[3:]], value)
            elif name.startswith("sla:"):
                self.sla_steps[name[4:]] = value
            else:
                pipeline.add_metric([name], value)
        by_status = self._gauge("omnidesk_tickets", "Tickets by status", ["status"])
        for status, value in counts.get("tickets_by_status", {}).items():
            by_status.add_metric([status], value)
        by_queue = self._gauge(
            "omnidesk_queue_tickets", "Tickets ever routed to a queue", ["queue"]
        )
        for queue, value in counts.get("tickets_by_queue", {}).items():
            by_queue.add_metric([queue], value)
        depth = self._gauge("omnidesk_queue_depth", "Open unassigned tickets per queue", ["queue"])
        for queue, value in counts.get("waiting_by_queue", {}).items():
            depth.add_metric([queue], value)
        self._gauge("omnidesk_quarantine_size", "Payloads in the quarantine").add_metric(
            [], counts.get("quarantine", 0)
        )

    def update_sla(self, counts: dict[str, Any]) -> None:
        """The sweeper's counts: standings per queue, buckets, steps fired."""
        clocks = self._gauge(
            "omnidesk_sla_clocks",
            "Tickets by queue and SLA standing: running, paused (no clock running), warned (a "
            "ladder step fired), breached (a running clock past its due time)",
            ["queue", "state"],
        )
        for queue, standings in counts.get("by_queue", {}).items():
            for state, value in standings.items():
                clocks.add_metric([queue, state], value)
        buckets = self._gauge(
            "omnidesk_sla_buckets",
            "Sweeper buckets (~100 tickets each) by state (scheduled: a wakeup is pending; "
            "held: a sweeper is firing it)",
            ["state"],
        )
        for state in ("scheduled", "held"):
            buckets.add_metric([state], counts.get(state, 0))
        for kind in ("warned", "breached"):
            self.sla_steps[kind] = counts.get(kind, 0)

    def update_connectors(self, statuses: Iterable[ConnectorStatus]) -> None:
        """Each connector's in-process status (its counters restart with the daemon)."""
        labels = ["connector", "kind"]
        received = self._gauge("omnidesk_connector_received", "Payloads received", labels)
        handed_over = self._gauge(
            "omnidesk_connector_handed_over", "Payloads handed to the pipeline", labels
        )
        running = self._gauge(
            "omnidesk_connector_running", "1 when the connector is running", labels
        )
        errors = self._gauge(
            "omnidesk_connector_errors", "Connector errors by kind", ["connector", "error"]
        )
        last_fetch = self._gauge(
            "omnidesk_connector_last_fetch_seconds", "Unix time of the last fetch", ["connector"]
        )
        for st in statuses:
            received.add_metric([st.name, st.kind], st.received)
            handed_over.add_metric([st.name, st.kind], st.handed_over)
            running.add_metric([st.name, st.kind], 1 if st.state == "running" else 0)
            for kind, count in st.errors.items():
                errors.add_metric([st.name, kind], count)
            if st.last_fetch is not None:
                last_fetch.add_metric([st.name], st.last_fetch.timestamp())


class _ScrapeCollector(Collector):
    """Yields the families of the scrape being rendered, and nothing between scrapes."""

    def __init__(self) -> None:
        self.current: Scrape | None = None

    def collect(self) -> Iterator[Metric]:
        if self.current is not None:
            yield from self.current.metric_families()


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.routing_latency = Histogram(
            "omnidesk_ingest_seconds",
            "Normalize+route+intake time per batch",
            registry=self.registry,
            buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5),
        )
        self._scrapes = _ScrapeCollector()
        self._rendering = threading.Lock()  # one scrape's families at a time
        self.registry.register(self._scrapes)

    def render(self, scrape: Scrape | None = None) -> bytes:
        """The exposition text: this registry's metrics plus `scrape`'s figures."""
        with self._rendering:
            self._scrapes.current = scrape
            try:
                return generate_latest(self.registry)
            finally:
                self._scrapes.current = None
