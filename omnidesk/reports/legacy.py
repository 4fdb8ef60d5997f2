"""Removes the Redis rollups older versions kept (`<prefix>:ru:*`): report counters now
live in PostgreSQL only (omnidesk.reports.sql, omnidesk.reports.days), and those keys grew
with history. A daemon deletes them once at start-up, in the background, a bounded batch
at a time so the store never stalls on one huge command."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re

from omnidesk.store import Store, guarded

log = logging.getLogger("omnidesk.reports")

SCAN_COUNT = 1000  # keys Redis looks at per SCAN step
UNLINK_BATCH = 500  # keys per UNLINK (freed in Redis's background thread)
PAUSE_S = 0.01  # between batches: intake's commands go first


def rollup_pattern(store: Store) -> str:
    """SCAN MATCH for the old keys; the prefix's own glob characters are escaped."""
    prefix = re.sub(r"([\\*?\[\]])", r"\\\1", store.prefix)
    return f"{prefix}:ru:*"


@guarded
def drop_batch(store: Store, cursor: int) -> tuple[int, int]:
    """One SCAN step and the UNLINK of the rollup keys it found: (next cursor, deleted).
    Next cursor 0: the whole key space has been walked."""
    cursor, keys = store.r.scan(cursor, match=rollup_pattern(store), count=SCAN_COUNT)
    deleted = 0
    for i in range(0, len(keys), UNLINK_BATCH):
        deleted += int(store.r.unlink(*keys[i : i + UNLINK_BATCH]))
    return int(cursor), deleted


def drop_rollups(store: Store) -> int:
    """Delete every `<prefix>:ru:*` key now (tests, a one-off run); returns how many."""
    cursor, total = 0, 0
    while True:
        cursor, deleted = drop_batch(store, cursor)
        total += deleted
        if cursor == 0:
            return total


class RollupCleanup:
    """Background job: one walk over the key space, then done; Redis away is retried."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.deleted = 0

    async def run(self, stop: asyncio.Event, retry_s: float = 30.0) -> None:
        cursor = 0
        while not stop.is_set():
            try:
                cursor, deleted = await asyncio.to_thread(drop_batch, self.store, cursor)
            except Exception as exc:  # Redis away: the walk resumes from the same cursor
                log.warning("old rollup keys not removed yet: %s", exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=retry_s)
                continue
            self.deleted += deleted
            if cursor == 0:
                if self.deleted:
                    log.info("removed %d Redis keys of the old report rollups (%s)",
                             self.deleted, rollup_pattern(self.store))  # fmt: skip
                return
            await asyncio.sleep(PAUSE_S)
