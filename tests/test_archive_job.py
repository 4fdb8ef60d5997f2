"""Archiving on a schedule: two daemons on the same Redis run the archive pass every slot of
`service.archive_interval_s`, each slot exactly once; old closed tickets leave the hot store
(once, in the month file), old raw payloads are pruned, the rest stays."""

from __future__ import annotations

import asyncio
import gzip
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from omnidesk.archive import Archive
from omnidesk.archive_job import ArchiveJob
from omnidesk.errors import TransientError
from omnidesk.quarantine import Quarantine
from omnidesk.service import Daemon, DaemonOptions
from omnidesk.store import Store
from tests.storekit import CONFIG, REDIS_URL, web

INTERVAL_S = 0.4


def write_config(path: Path, prefix: str, state: Path) -> None:
    service = (
        f"service:\n  redis_url: {REDIS_URL}\n  key_prefix: {prefix}\n  state_dir: {state}\n"
        f"  archive_after_days: 1\n  archive_retention_days: 30\n"
        f"  archive_interval_s: {INTERVAL_S}\n"
    )
    path.write_text(service + CONFIG.read_text("utf-8"), "utf-8")


def age(store: Store, ticket_id: str, days: float) -> None:
    """Backdate a ticket's last change (tests cannot wait a day)."""
    then = (datetime.now(UTC) - timedelta(days=days)).isoformat()
    store.r.hset(store.key("ticket", ticket_id), "updated_at", then)


async def test_two_daemons_archive_each_slot_once_and_prune_old_payloads(
    runtime, prefix: str, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    store = runtime.store
    opened = [
        r.ticket_id
        for r in runtime.process(
            [web(f"question {i}", email=f"c{i}@example.sa") for i in range(3)]
        ).results
    ]
    old_closed, new_closed, old_open = opened
    store.set_status(old_closed, "closed", actor="sara")
    store.set_status(new_closed, "closed", actor="sara")
    age(store, old_closed, 3)
    age(store, old_open, 3)
    raw = Archive(state)
    stale, fresh = raw.put(b"a payload from last year"), raw.put(b"a payload from today")
    year_ago = time.time() - 400 * 86400
    os.utime(raw.path(stale), (year_ago, year_ago))

    config = tmp_path / "queue_config.yaml"
    write_config(config, prefix, state)
    options = DaemonOptions(config=str(config), workers=0, http=False, drain_timeout=5)
    runs_key = store.key("archive", "runs")
    async with Daemon(options), Daemon(options):
        deadline = time.monotonic() + 5
        while store.r.hlen(runs_key) < 4 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
    runs = {int(slot): int(n) for slot, n in store.r.hgetall(runs_key).items()}
    assert len(runs) >= 4, runs
    assert set(runs.values()) == {1}, runs  # every slot once, though two daemons tried

    assert store.get_ticket(old_closed) is None
    assert store.get_ticket(new_closed) is not None  # closed, but not long enough ago
    assert store.get_ticket(old_open) is not None  # old, but still open
    month = datetime.now(UTC).strftime("%Y-%m")
    with gzip.open(state / "archive" / f"{month}.jsonl.gz", "rt") as fh:
        assert fh.read().count(f'"id": "{old_closed}"') == 1
    assert raw.get(stale) is None
    assert raw.get(fresh) == b"a payload from today"


def test_a_failed_pass_releases_its_slot_for_the_next_try(runtime, tmp_path: Path) -> None:
    store = runtime.store
    (result,) = runtime.process([web("old complaint", email="z@example.sa")]).results
    store.set_status(result.ticket_id, "closed")
    age(store, result.ticket_id, 400)
    blocker = tmp_path / "state" / "archive"
    blocker.write_text("not a folder")  # the month files cannot be written
    job = ArchiveJob(store, lambda: runtime.config.data, clock=lambda: 1_000_000.0)
    with pytest.raises(TransientError, match="archive"):
        job.run_once()
    assert store.r.get(job.key(int(1_000_000.0 // 3600))) is None  # free for a retry
    assert store.get_ticket(result.ticket_id) is not None  # nothing lost
    blocker.unlink()
    summary = job.run_once()
    assert summary is not None and summary["tickets"] == 1
    assert job.run_once() is None  # the same slot: already done
    assert store.get_ticket(result.ticket_id) is None


def test_the_pass_purges_quarantined_items_past_their_age(runtime, tmp_path: Path) -> None:
    """A quiet quarantine gets no put to purge it: the scheduled pass does."""
    store = runtime.store
    quarantine = Quarantine(store, runtime.config.data.service.quarantine)
    old = quarantine.put(web("junk one", email="q1@example.sa"), "bad_json", "not JSON")
    new = quarantine.put(web("junk two", email="q2@example.sa"), "bad_json", "not JSON")
    max_age_s = runtime.config.data.service.quarantine.max_age_days * 86400
    store.r.zadd(store.key("quarantine"), {old: time.time() - max_age_s - 60})
    job = ArchiveJob(store, lambda: runtime.config.data, clock=lambda: 2_000_000.0)
    summary = job.run_once()
    assert summary is not None and summary["quarantine_purged"] == 1
    assert quarantine.get(old) is None
    assert quarantine.get(new) is not None
