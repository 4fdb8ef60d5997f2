"""The eviction pass on a schedule: two daemons on the same Redis run it every slot of
`service.archive_interval_s`, each slot exactly once; closed tickets past the grace that
PostgreSQL holds leave Redis (marked cold there), old raw payloads are pruned, the rest
stays."""

from __future__ import annotations

import asyncio
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from omnidesk.archive import Archive
from omnidesk.archive_job import ArchiveJob
from omnidesk.db.connect import RecordsUnavailable
from omnidesk.db.records import Records
from omnidesk.db.writer import RecordWriter
from omnidesk.quarantine import Quarantine
from omnidesk.service import Daemon, DaemonOptions
from omnidesk.store import Store
from tests.storekit import CONFIG, REDIS_URL, web

INTERVAL_S = 0.4


def write_config(path: Path, prefix: str, state: Path) -> None:
    service = (
        f"service:\n  redis_url: {REDIS_URL}\n  key_prefix: {prefix}\n  state_dir: {state}\n"
        f"  evict_closed_after_s: 86400\n  archive_retention_days: 30\n"
        f"  archive_interval_s: {INTERVAL_S}\n"
    )
    path.write_text(service + CONFIG.read_text("utf-8"), "utf-8")


def age(store: Store, ticket_id: str, days: float) -> None:
    """Backdate a ticket's last change (tests cannot wait a day)."""
    then = (datetime.now(UTC) - timedelta(days=days)).isoformat()
    store.r.hset(store.key("ticket", ticket_id), "updated_at", then)


def rows(url: str, sql: str, *params: object) -> list[tuple[object, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql, params).fetchall()


async def test_two_daemons_evict_each_slot_once_and_prune_old_payloads(
    runtime, prefix: str, tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OMNIDESK_DATABASE_URL", pg_url)
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
        deadline = time.monotonic() + 10
        while (
            store.r.hlen(runs_key) < 4 or store.get_ticket(old_closed) is not None
        ) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
    runs = {int(slot): int(n) for slot, n in store.r.hgetall(runs_key).items()}
    assert len(runs) >= 4, runs
    assert set(runs.values()) == {1}, runs  # every slot once, though two daemons tried

    assert store.get_ticket(old_closed) is None
    assert store.get_ticket(new_closed) is not None  # closed, but within the grace
    assert store.get_ticket(old_open) is not None  # old, but still open
    hot = dict(rows(pg_url, "SELECT id, hot FROM tickets"))
    assert hot == {old_closed: False, new_closed: True, old_open: True}
    assert not (state / "archive").exists()  # no gzip archive is written any more
    assert raw.get(stale) is None
    assert raw.get(fresh) == b"a payload from today"


def test_a_failed_pass_releases_its_slot_for_the_next_try(
    runtime, tmp_path: Path, pg_url: str
) -> None:
    """PostgreSQL away: nothing leaves Redis, the slot is free for the next round."""
    store = runtime.store
    (result,) = runtime.process([web("old complaint", email="z@example.sa")]).results
    store.set_status(result.ticket_id, "closed")
    asyncio.run(RecordWriter(store, pg_url).drain())
    config = lambda: runtime.config.data  # noqa: E731
    down = ArchiveJob(
        store,
        config,
        clock=lambda: 1_000_000.0,
        records=lambda: Records("postgresql://postgres@127.0.0.1:1/x"),
    )
    with pytest.raises(RecordsUnavailable):
        down.run_once()
    assert store.r.get(down.key(int(1_000_000.0 // 3600))) is None  # free for a retry
    assert store.get_ticket(result.ticket_id) is not None  # nothing lost
    now = time.time()  # one instant: the second pass must land in the same hourly slot
    job = ArchiveJob(store, config, clock=lambda: now, records=lambda: Records(pg_url))
    summary = job.run_once()
    assert summary is not None and summary["tickets"] == 1
    assert job.run_once() is None  # the same slot: already done
    assert store.get_ticket(result.ticket_id) is None


def test_the_pass_purges_quarantined_items_past_their_age(
    runtime, tmp_path: Path, pg_url: str
) -> None:
    """A quiet quarantine gets no put to purge it: the scheduled pass does."""
    store = runtime.store
    quarantine = Quarantine(store, runtime.config.data.service.quarantine)
    old = quarantine.put(web("junk one", email="q1@example.sa"), "bad_json", "not JSON")
    new = quarantine.put(web("junk two", email="q2@example.sa"), "bad_json", "not JSON")
    max_age_s = runtime.config.data.service.quarantine.max_age_days * 86400
    store.r.zadd(store.key("quarantine"), {old: time.time() - max_age_s - 60})
    job = ArchiveJob(
        store,
        lambda: runtime.config.data,
        clock=lambda: 2_000_000.0,
        records=lambda: Records(pg_url),
    )
    summary = job.run_once()
    assert summary is not None and summary["quarantine_purged"] == 1
    assert quarantine.get(old) is None
    assert quarantine.get(new) is not None
