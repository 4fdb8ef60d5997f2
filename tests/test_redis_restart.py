"""Redis killed (SIGKILL) and restarted from its append-only file while worker processes
ingest: every payload handed over ends as exactly one ticket, none lost, none twice, each
with its SLA clocks. The Redis is the test's own (tests/private_redis.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from omnidesk.configload import load_config
from omnidesk.errors import OmnideskError
from omnidesk.pipeline import Pipeline, make_broker
from omnidesk.runtime import Runtime
from omnidesk.store import Store
from omnidesk.sweeper import SlaClocks
from tests.private_redis import PrivateRedis
from tests.storekit import CONFIG, web

ROOT = Path(__file__).resolve().parent.parent
PAYLOADS = 400
BATCH = 10


def _config(url: str, prefix: str, root: Path) -> Path:
    service = f"service:\n  redis_url: {url}\n  key_prefix: {prefix}\n  state_dir: {root}/state\n"
    path = root / "config.yaml"
    path.write_text(service + CONFIG.read_text("utf-8"), "utf-8")
    return path


def _worker(config: Path, log: Path) -> subprocess.Popen[bytes]:
    args = [sys.executable, "-m", "omnidesk.pipeline", "--config", str(config), "--threads", "2"]
    with log.open("ab") as out:
        return subprocess.Popen(args, cwd=ROOT, stdout=out, stderr=out)


def _ticket_count(store: Store) -> Callable[[], int]:
    def count() -> int:
        try:
            return store.ticket_count()
        except OmnideskError:
            return -1  # Redis is down or loading right now

    return count


def _wait(check: Callable[[], bool], timeout: float, every: float = 0.01) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(every)
    return False


@pytest.mark.slow
def test_redis_killed_and_restarted_mid_batch_loses_and_duplicates_nothing(
    tmp_path: Path,
) -> None:
    prefix = "restart"
    with PrivateRedis(tmp_path / "redis") as server:
        config = _config(server.url, prefix, tmp_path)
        loaded = load_config(config)
        store = Store.from_url(server.url, prefix)
        broker = make_broker(server.url, prefix)
        raws = [web(f"payload {i}", email=f"r{i}@example.sa") for i in range(PAYLOADS)]
        Pipeline(Runtime.from_config(loaded, store=store), broker).handover_sync(raws, BATCH)
        broker.close()
        count = _ticket_count(store)
        workers = [_worker(config, tmp_path / f"worker{i}.log") for i in range(2)]
        try:
            for share in (0.15, 0.4, 0.65):  # three crashes, each in the middle of the work
                assert _wait(lambda s=share: count() >= s * PAYLOADS, timeout=30)
                assert count() < PAYLOADS, "the work ended before Redis could be killed"
                server.kill()
                time.sleep(0.5)
                server.start()
            _wait(lambda: count() >= PAYLOADS, timeout=25, every=0.2)
            time.sleep(1.0)  # a stray redelivery would show up as a duplicate by now
        finally:
            for worker in workers:
                worker.send_signal(signal.SIGTERM)
            for worker in workers:
                try:
                    worker.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    worker.kill()
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
        assert os.path.exists(tmp_path / "worker0.log")
