"""A worker process killed with SIGKILL while it holds batches: another worker has them back
in service within the bound (heartbeat timeout + maintenance interval, 15 s + 5 s by
default), not after a random maintenance pass; /metrics-style figures show them meanwhile."""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import redis
from dramatiq.errors import ConnectionClosed

from omnidesk.metrics import Metrics, Scrape
from omnidesk.pipeline import Pipeline, make_broker
from omnidesk.redisbroker import queue_figures, redis_broker
from omnidesk.runtime import Runtime
from tests.faultproxy import FaultProxy
from tests.private_redis import PrivateRedis
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
        assert {k: ingest[k] for k in ("queued", "in_flight", "delayed", "dead")} == {
            "queued": 1,
            "in_flight": 1,
            "delayed": 2,
            "dead": 1,
        }
        assert ingest["oldest_age_s"] >= 0
        consumer.close()
        scrape = Scrape()
        scrape.update_broker(figures)
        text = Metrics().render(scrape).decode()
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


def test_figures_read_a_few_message_bodies_however_many_are_held(tmp_path: Path) -> None:
    """The figures run on every /healthz and /metrics scrape, in Redis's one thread: reading
    each held batch (up to megabytes) would block every client for seconds after an outage."""
    with PrivateRedis(tmp_path / "redis") as server:
        broker = make_broker(server.url, "figures")
        try:
            broker.declare_queue("ingest")
            for i in range(300):
                broker.enqueue(_message(f"held {i}"))
                broker.enqueue(_message(f"delayed {i}"), delay=3_600_000)
            for _ in range(3):
                broker.enqueue(_message("queued"))
            held = broker.do_fetch("ingest", 300)  # type: ignore[attr-defined]
            assert len(held) == 300
            client = redis.Redis.from_url(server.url)
            client.config_resetstat()
            figures = queue_figures(broker)["ingest"]
            stats = client.info("commandstats")
            bodies_read = sum(
                stats.get(f"cmdstat_{cmd}", {}).get("calls", 0)
                for cmd in ("hget", "hmget", "hgetall", "hvals")
            )
            assert bodies_read <= 4, f"{bodies_read} message bodies read for one queue"
            assert {k: figures[k] for k in ("queued", "in_flight", "delayed", "dead")} == {
                "queued": 3,
                "in_flight": 300,
                "delayed": 300,
                "dead": 0,
            }
            assert figures["oldest_age_s"] >= 0
        finally:
            broker.close()


def _message(text: str) -> Any:
    import dramatiq

    return dramatiq.Message(
        queue_name="ingest", actor_name="ingest", args=(text,), kwargs={}, options={}
    )


def test_a_fetch_whose_reply_is_lost_under_a_fresh_id_comes_back(
    runtime: Runtime, prefix: str
) -> None:
    """An outage took the worker's first id; the first fetch under the new one runs in Redis
    but its reply is lost. That id must go too, or its live heartbeat keeps the batch held
    for good by a worker that never saw it."""
    namespace = f"{prefix}:dramatiq"
    with FaultProxy(6379) as proxy:
        broker = make_broker(proxy.url, prefix, heartbeat_timeout_ms=200)
        Pipeline(runtime, broker).ingest.send("[]")
        try:
            broker.rotate_id()  # type: ignore[attr-defined]  # an earlier outage did this
            fresh = broker.broker_id  # type: ignore[attr-defined]
            proxy.lose_next_reply()
            with pytest.raises(ConnectionClosed):
                next(broker.consume("ingest", prefetch=1, timeout=100))
            held = f"{namespace}:__acks__.{fresh}.ingest"
            assert runtime.store.r.scard(held) == 1  # it ran: the fresh id holds the batch
            time.sleep(0.3)  # past the fresh id's heartbeat timeout
            broker.heartbeat()  # type: ignore[attr-defined]
            broker.maintain()  # type: ignore[attr-defined]
            assert runtime.store.r.scard(held) == 0, "the lost fetch's batch is held for good"
            assert runtime.store.r.llen(f"{namespace}:ingest") == 1  # back in the queue
            rotated = broker.broker_id  # type: ignore[attr-defined]
            proxy.refuse()  # an outage where nothing is sent costs no further id
            for _ in range(5):
                with pytest.raises(ConnectionClosed):
                    broker.do_fetch("ingest", 1)  # type: ignore[attr-defined]
            assert broker.broker_id == rotated  # type: ignore[attr-defined]
        finally:
            broker.close()


def test_a_failed_send_outside_the_consumers_keeps_the_worker_id(
    runtime: Runtime, prefix: str
) -> None:
    """A web form's hand-over that Redis drops restarts no consumer: taking a new id would
    only hand the batches this worker is running to another worker, to run twice."""
    with FaultProxy(6379) as proxy:
        broker = make_broker(proxy.url, prefix)
        pipeline = Pipeline(runtime, broker)
        try:
            pipeline.ingest.send("[]")  # the id is in use
            before = broker.broker_id  # type: ignore[attr-defined]
            proxy.lose_next_reply()
            with pytest.raises(ConnectionClosed):
                pipeline.ingest.send("[]")
            assert broker.broker_id == before  # type: ignore[attr-defined]
            proxy.lose_next_reply()
            with pytest.raises(ConnectionClosed):  # a consumer's fetch: that id must go
                broker.do_fetch("ingest", 1)  # type: ignore[attr-defined]
            assert broker.broker_id != before  # type: ignore[attr-defined]
        finally:
            broker.close()


def test_a_redis_that_hangs_is_an_outage_not_a_stalled_worker(prefix: str) -> None:
    """A Redis that stops answering without closing: the broker's client gives up after its
    own timeout (not whatever redis-py's default is), so the consumer restarts and retries
    like in any outage."""
    with FaultProxy(6379) as proxy:
        broker = redis_broker(proxy.url, f"{prefix}:dramatiq", socket_timeout_s=0.5)
        broker.declare_queue("ingest")
        try:
            broker.do_fetch("ingest", 1)  # type: ignore[attr-defined]
            proxy.stall()
            outcome: list[BaseException] = []

            def fetch() -> None:
                try:
                    broker.do_fetch("ingest", 1)  # type: ignore[attr-defined]
                except BaseException as exc:
                    outcome.append(exc)

            caller = threading.Thread(target=fetch, daemon=True)
            caller.start()
            # Six times the timeout: redis-py's own default (5 s in 8.2, none in older ones) would
            # still be waiting, so this shows the broker's timeout is the one in force.
            caller.join(3)
            assert not caller.is_alive(), "the fetch still waits on a hung Redis"
            assert len(outcome) == 1 and isinstance(outcome[0], ConnectionClosed)
        finally:
            proxy.release()
            broker.close()


def test_a_worker_stopping_gracefully_keeps_the_heartbeat_of_a_running_batch(
    runtime: Runtime, prefix: str
) -> None:
    """dramatiq drains running actors after `before_worker_shutdown`; a keeper stopped there
    lets a long batch's lease lapse, and another worker runs it too."""
    broker = make_broker(REDIS_URL, prefix, heartbeat_timeout_ms=1000, maintenance_interval_ms=100)
    pipeline = Pipeline(runtime, broker)
    started, release = threading.Event(), threading.Event()
    runs: list[int] = []
    real = runtime.process

    def long_batch(batch: Any) -> Any:
        runs.append(1)
        started.set()
        release.wait(30)
        return real(batch)

    runtime.process = long_batch  # type: ignore[method-assign]
    pipeline.handover_sync([web("a long batch", email="long@example.sa")])
    other = make_broker(REDIS_URL, prefix, heartbeat_timeout_ms=1000)  # another worker's view
    other.declare_queue("ingest")
    worker = pipeline.start_worker(threads=1)
    stopping = threading.Thread(target=worker.stop, args=(30_000,))
    namespace = f"{prefix}:dramatiq"
    try:
        assert started.wait(30)
        for consumer in worker.consumers.values():  # full consumers fetch (and beat) no more
            consumer.pause()
        for consumer in worker.consumers.values():
            assert consumer.paused_event.wait(5)
        stopping.start()  # a graceful stop: dramatiq waits for the running batch
        time.sleep(2.0)  # twice the heartbeat timeout
        other.maintain()  # type: ignore[attr-defined]
        assert runtime.store.r.llen(f"{namespace}:ingest") == 0, "another worker may run it"
        release.set()
        stopping.join(30)
        assert not stopping.is_alive()
        assert runs == [1] and runtime.store.ticket_count() == 1
        assert runtime.store.r.hlen(f"{namespace}:ingest.msgs") == 0  # acked
    finally:
        release.set()
        if stopping.is_alive():
            stopping.join(30)
        elif not stopping.ident:
            worker.stop(timeout=5_000)
        broker.close()
        other.close()
