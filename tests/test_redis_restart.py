"""Redis killed (SIGKILL) and restarted from its append-only file while worker processes
ingest: every payload handed over ends as exactly one ticket, none lost, none twice, each
with its SLA clocks. Redis out of memory mid-batch: the batch waits, then goes in. The Redis
is the test's own (tests/private_redis.py)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from omnidesk.configload import load_config
from omnidesk.errors import StoreUnavailable
from omnidesk.pipeline import Pipeline, make_broker
from omnidesk.runtime import Runtime
from omnidesk.sla.engine import SlaClocks
from omnidesk.store import Store
from tests.private_redis import PrivateRedis
from tests.storekit import web
from tests.workerkit import start_worker, stop, ticket_count, wait, write_config

PAYLOADS = 400
BATCH = 10


@pytest.mark.slow
def test_redis_killed_and_restarted_mid_batch_loses_and_duplicates_nothing(
    tmp_path: Path,
) -> None:
    prefix = "restart"
    with PrivateRedis(tmp_path / "redis") as server:
        config = write_config(server.url, prefix, tmp_path)
        loaded = load_config(config)
        store = Store.from_url(server.url, prefix)
        broker = make_broker(server.url, prefix)
        raws = [web(f"payload {i}", email=f"r{i}@example.sa") for i in range(PAYLOADS)]
        Pipeline(Runtime.from_config(loaded, store=store), broker).handover_sync(raws, BATCH)
        broker.close()
        count = ticket_count(store)
        workers = [start_worker(config, tmp_path / f"worker{i}.log") for i in range(2)]
        try:
            for share in (0.15, 0.4, 0.65):  # three crashes, each in the middle of the work
                assert wait(lambda s=share: count() >= s * PAYLOADS, timeout=30)
                assert count() < PAYLOADS, "the work ended before Redis could be killed"
                server.kill()
                time.sleep(0.5)
                server.start()
            wait(lambda: count() >= PAYLOADS, timeout=60, every=0.2)
            time.sleep(1.0)  # a stray redelivery would show up as a duplicate by now
        finally:
            for worker in workers:
                stop(worker)
        tickets = store.list_tickets(limit=2 * PAYLOADS)
        previews = sorted(t.preview for t in tickets)
        expected = sorted(f"payload {i}" for i in range(PAYLOADS))
        missing = sorted(set(expected) - set(previews))
        assert not missing, f"{len(missing)} payloads lost, e.g. {missing[:5]}"
        assert previews == expected  # nothing twice
        assert all(len(t.message_ids) == 1 for t in tickets)
        clocks = SlaClocks(store, loaded.data)
        unclocked = [t.id for t in tickets if not clocks.summary(t.id)]
        assert not unclocked, f"{len(unclocked)} tickets without SLA clocks"
        namespace = f"{prefix}:dramatiq"
        leftover = store.r.hlen(f"{namespace}:ingest.msgs") + store.r.hlen(
            f"{namespace}:ingest.DQ.msgs"
        )
        assert leftover == 0 and store.r.zcard(f"{namespace}:ingest.XQ") == 0


def test_redis_out_of_memory_mid_batch_is_waited_out_not_a_stuck_batch(tmp_path: Path) -> None:
    prefix = "oom"
    with PrivateRedis(tmp_path / "redis") as server:
        loaded = load_config(write_config(server.url, prefix, tmp_path))
        store = Store.from_url(server.url, prefix)
        runtime = Runtime.from_config(loaded, store=store)
        pipeline = Pipeline(runtime, make_broker(server.url, prefix))
        fetched, full = threading.Event(), threading.Event()
        real = runtime.process

        def after_redis_fills(batch: Any) -> Any:
            fetched.set()
            full.wait(30)
            return real(batch)

        runtime.process = after_redis_fills  # type: ignore[method-assign]
        pipeline.handover_sync([web("during an OOM", email="oom@example.sa")])
        worker = pipeline.start_worker(threads=1)
        try:
            assert fetched.wait(30)
            store.r.config_set("maxmemory", 1)  # every write now: "OOM command not allowed"
            full.set()
            time.sleep(1.0)  # the batch waits in place
            store.r.config_set("maxmemory", 0)
            assert wait(lambda: store.ticket_count() == 1, timeout=15)
            assert wait(lambda: store.r.hlen(f"{prefix}:dramatiq:ingest.msgs") == 0, timeout=15)
            assert store.r.zcard(f"{prefix}:dramatiq:ingest.XQ") == 0
            store.r.config_set("maxmemory", 1)
            with pytest.raises(StoreUnavailable):  # the web form answers 503, not 500
                pipeline.handover_sync([web("refused", email="late@example.sa")])
        finally:
            store.r.config_set("maxmemory", 0)
            worker.stop(timeout=5_000)
            pipeline.broker.close()
