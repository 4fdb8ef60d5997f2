"""A worker process killed with SIGKILL while it holds batches: another worker has them back
in service within the bound (heartbeat timeout + maintenance interval, 15 s + 5 s by
default), not after a random maintenance pass; /metrics-style figures show them meanwhile."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import pytest

from omnidesk.metrics import Metrics
from omnidesk.pipeline import Pipeline, make_broker
from omnidesk.redisbroker import queue_figures
from omnidesk.runtime import Runtime
from tests.storekit import REDIS_URL, web
from tests.workerkit import start_worker, stop, ticket_count, wait, write_config

PAYLOADS = 1200
BOUND_S = 60.0  # issue 12: held batches are back in service within 60 s


def _held(runtime: Runtime, prefix: str, worker: str = "*") -> int:
    """Messages fetched by `worker` (any by default) and not acked, on the ingest queue."""
    r = runtime.store.r
    match = f"{prefix}:dramatiq:__acks__.{worker}.ingest"
    return sum(r.scard(k) for k in r.scan_iter(match=match))


@pytest.mark.slow
def test_batches_of_a_killed_worker_are_back_within_the_bound(
    runtime: Runtime, prefix: str, tmp_path: Path
) -> None:
    raws = [web(f"complaint {i}", email=f"k{i}@example.sa") for i in range(PAYLOADS)]
    broker = make_broker(REDIS_URL, prefix)
    pipeline = Pipeline(runtime, broker)
    asyncio.run(pipeline.handover(raws, batch_size=100))
    config = write_config(REDIS_URL, prefix, tmp_path)  # the default heartbeat and interval
    count = ticket_count(runtime.store)
    first = start_worker(config, tmp_path / "first.log")
    try:
        assert wait(lambda: count() > 0, timeout=30)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    killed_at = time.monotonic()
    members = runtime.store.r.zrange(f"{prefix}:dramatiq:__heartbeats__", 0, -1)
    (dead,) = set(members) - {broker.broker_id}  # type: ignore[attr-defined]  # not the test's
    assert 0 < count() < PAYLOADS and _held(runtime, prefix, dead) > 0  # it died holding batches
    figures = queue_figures(broker)["ingest"]
    assert figures["in_flight"] > 0 and figures["oldest_age_s"] > 0
    second = start_worker(config, tmp_path / "second.log")
    try:
        # back in service: out of the dead worker's hands, into the queue or the second's
        back = wait(lambda: _held(runtime, prefix, dead) == 0, timeout=BOUND_S, every=0.2)
        recovered_s = time.monotonic() - killed_at
        assert back, f"the dead worker still held batches {BOUND_S:.0f} s after the kill"
        assert recovered_s < BOUND_S
        assert wait(lambda: count() >= PAYLOADS, timeout=120, every=0.2)
    finally:
        stop(second)
        broker.close()
    assert _held(runtime, prefix) == 0
    tickets = runtime.store.list_tickets(limit=2 * PAYLOADS)
    assert sorted(t.preview for t in tickets) == sorted(f"complaint {i}" for i in range(PAYLOADS))


def test_queue_figures_count_each_state_and_reach_metrics(runtime: Runtime, prefix: str) -> None:
    broker = make_broker(REDIS_URL, prefix)
    pipeline = Pipeline(runtime, broker)
    try:
        sent = [pipeline.ingest.send("[]") for _ in range(3)]  # queued
        pipeline.ingest.send_with_options(args=("[]",), delay=3_600_000)  # delayed
        retry = sent[0].copy(options={"retries": 2})
        broker.enqueue(retry, delay=3_600_000)  # a retry waiting out its backoff
        consumer = broker.consume("ingest", prefetch=2, timeout=100)
        first, second = next(consumer), next(consumer)
        assert first is not None and second is not None
        first.fail()
        consumer.nack(first)  # dead-lettered; `second` stays in flight
        figures = queue_figures(broker)
        ingest = figures["ingest"]
        assert {k: ingest[k] for k in ("queued", "in_flight", "delayed", "retrying", "dead")} == {
            "queued": 1,
            "in_flight": 1,
            "delayed": 2,
            "retrying": 1,
            "dead": 1,
        }
        assert ingest["oldest_age_s"] >= 0
        consumer.close()
        metrics = Metrics()
        metrics.update_broker(figures)
        text = metrics.render().decode()
        assert 'omnidesk_broker_messages{queue="ingest",state="dead"} 1.0' in text
        assert 'omnidesk_broker_oldest_age_seconds{queue="ingest"}' in text
    finally:
        broker.close()


def test_a_worker_whose_consumers_all_wait_keeps_its_heartbeat(
    runtime: Runtime, prefix: str
) -> None:
    """Consumers heartbeat only when they fetch; a worker whose every consumer is full with
    long batches would look dead and have its batches taken while it works on them."""
    broker = make_broker(REDIS_URL, prefix, heartbeat_timeout_ms=1000, maintenance_interval_ms=100)
    worker = Pipeline(runtime, broker).start_worker(threads=1)
    key = f"{prefix}:dramatiq:__heartbeats__"
    try:
        worker.pause()  # no consumer fetches from now on
        before = broker.client.zscore(key, broker.broker_id)  # type: ignore[attr-defined]
        time.sleep(2.5)
        after = broker.client.zscore(key, broker.broker_id)  # type: ignore[attr-defined]
        assert before is not None and after is not None and after - before >= 1000
    finally:
        worker.resume()
        worker.stop(timeout=5_000)
        broker.close()
