"""Older versions' report rollups (`<prefix>:ru:*`) are removed a bounded batch at a time,
and nothing else under the prefix is touched; the count is logged once."""

from __future__ import annotations

import asyncio
import logging

import pytest

from omnidesk.reports import legacy
from omnidesk.reports.legacy import RollupCleanup, drop_rollups
from omnidesk.store import Store
from tests.storekit import REDIS_URL


def test_every_rollup_key_goes_in_bounded_batches_and_nothing_else(
    prefix: str, caplog: pytest.LogCaptureFixture, monkeypatch
) -> None:
    store = Store.from_url(REDIS_URL, prefix)
    pipe = store.r.pipeline(transaction=False)
    for i in range(1200):
        pipe.hset(f"{prefix}:ru:tk:OD-2026-{i:06d}", "status", "open")
    pipe.set(f"{prefix}:ru:last", "1-0")
    pipe.set(f"{prefix}:rules", "kept")  # not a rollup: same first letters only
    pipe.set(f"{prefix}:ticket:OD-1", "kept")
    pipe.execute()
    batches: list[int] = []
    unlink = store.r.unlink

    def counted(*keys: str) -> int:
        batches.append(len(keys))
        return unlink(*keys)

    monkeypatch.setattr(store.r, "unlink", counted)
    monkeypatch.setattr(legacy, "PAUSE_S", 0.0)
    cleanup = RollupCleanup(store)
    with caplog.at_level(logging.INFO, logger="omnidesk.reports"):
        asyncio.run(cleanup.run(asyncio.Event()))
    assert cleanup.deleted == 1201
    assert not list(store.r.scan_iter(match=f"{prefix}:ru:*"))
    assert store.r.get(f"{prefix}:rules") == "kept" and store.r.get(f"{prefix}:ticket:OD-1")
    assert batches and max(batches) <= legacy.UNLINK_BATCH
    lines = [r.getMessage() for r in caplog.records if "old report rollups" in r.getMessage()]
    assert lines == [f"removed 1201 Redis keys of the old report rollups ({prefix}:ru:*)"]
    assert drop_rollups(store) == 0  # a second start finds nothing, says nothing
