"""The daemon's housekeeping pass on a schedule: done tickets that PostgreSQL holds leave
Redis (omnidesk.db.evict: resolved ones after `service.reopen_window_days`, closed ones at
once), old gzip ticket-archive months (from before PostgreSQL) and raw payloads past
`service.archive_retention_days` are deleted, and quarantined items past
`service.quarantine.max_age_days` are purged (a quiet quarantine has no put to purge them).

Time is cut into slots of `service.archive_interval_s`; the daemon that wins
``SET NX <prefix>:archive:run:<slot>`` runs that slot's pass, so with several daemons each
slot runs exactly once. A daemon coming up runs the current slot if nobody has. A failed pass
deletes its key, so the next round (of any daemon) tries again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from omnidesk.archive import Archive
from omnidesk.archiving import TicketArchive
from omnidesk.config import QueueConfigFile
from omnidesk.db.evict import eviction_for
from omnidesk.quarantine import Quarantine
from omnidesk.store import Store

log = logging.getLogger("omnidesk.archive")
RETRY_AFTER_FAILURE_S = 60.0


class ArchiveJob:
    def __init__(
        self,
        store: Store,
        config: Callable[[], QueueConfigFile],  # read each round, so a SIGHUP reload applies
        *,
        clock: Callable[[], float] = time.time,
        records: Any = None,  # omnidesk.db.records.Records; default: service.database_url's
    ) -> None:
        self.store = store
        self.config = config
        self.clock = clock
        self._records = records
        self.owner = f"{socket.gethostname()}:{os.getpid()}"

    def records(self, service: Any) -> Any:
        """PostgreSQL: the daemon's pool, else one of this job's own."""
        if self._records is None:
            from omnidesk.db.records import Records

            self._records = Records.for_service(service)
        return self._records

    def key(self, slot: int) -> str:
        return self.store.key("archive", "run", str(slot))

    def run_once(self) -> dict[str, Any] | None:
        """This slot's pass, if no daemon has claimed it; returns what it did, else None."""
        service = self.config().service
        interval = service.archive_interval_s
        slot = int(self.clock() // interval)
        key = self.key(slot)
        ttl = int(2 * interval) + 60  # outlives the slot: nobody can claim it a second time
        if not self.store.r.set(key, f"running {self.owner}", nx=True, ex=ttl):
            return None
        try:
            evicted = eviction_for(self.store, self.records(service), service).run(
                datetime.fromtimestamp(self.clock(), UTC)
            )
            months = TicketArchive(service.state_dir).prune(service.archive_retention_days)
            payloads = Archive(service.state_dir).prune(service.archive_retention_days)
            quarantined = Quarantine(self.store, service.quarantine).purge()
        except Exception:
            self.store.r.delete(key)  # let a later round retry this slot
            raise
        summary = {
            "slot": slot,
            "by": self.owner,
            "tickets": len(evicted.evicted),
            "customers": len(evicted.customers),
            "waiting": len(evicted.skipped),
            "writer": evicted.state,
            "months_pruned": len(months),
            "payloads_pruned": payloads,
            "quarantine_purged": quarantined,
        }
        pipe = self.store.r.pipeline(transaction=False)
        pipe.set(key, json.dumps(summary), ex=ttl)
        pipe.hincrby(self.store.key("archive", "runs"), str(slot), 1)
        pipe.execute()
        if months or payloads or quarantined:
            log.info(
                "pruned %d archive months, %d raw payloads and %d quarantined items",
                len(months), payloads, quarantined,
            )  # fmt: skip
        return summary

    async def run(self, stop: asyncio.Event) -> None:
        """Background job: one pass per slot, until stopped."""
        while not stop.is_set():
            delay: float
            try:
                await asyncio.to_thread(self.run_once)
                interval = self.config().service.archive_interval_s
                delay = interval - (self.clock() % interval) + 0.01  # just past the boundary
            except Exception as exc:  # Redis, PostgreSQL or disk trouble: the next round retries
                log.warning("eviction/archive pass failed: %s", exc)
                delay = min(RETRY_AFTER_FAILURE_S, self.config().service.archive_interval_s)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=delay)
