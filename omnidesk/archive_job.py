"""The daemon's housekeeping pass on a schedule: done tickets that PostgreSQL holds leave
Redis (omnidesk.db.evict: resolved ones after `service.reopen_window_days`, closed ones at
once), old gzip ticket-archive months (from before PostgreSQL) and raw payloads past
`service.archive_retention_days` are deleted, and quarantined items past
`service.quarantine.max_age_days` are purged (a quiet quarantine has no put to purge them),
and, when `service.retention.personal_data_years` is set, closed tickets past it lose their
personal data in PostgreSQL, Redis and the archives (omnidesk.db.retention.apply_retention).
PostgreSQL being away skips that step for the slot (logged); the rest of the pass runs.

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
        records: Callable[[], Any] | None = None,  # the daemon's Records (PostgreSQL), if any
    ) -> None:
        self.store = store
        self.config = config
        self.clock = clock
        self.records = records
        self._own: Any = None
        self.owner = f"{socket.gethostname()}:{os.getpid()}"

    def pool(self, service: Any) -> Any:
        """PostgreSQL for the eviction: the daemon's pool, else one of this job's own."""
        records = self.records() if self.records is not None else None
        if records is not None:
            return records
        if self._own is None:
            from omnidesk.db.records import Records

            self._own = Records.for_service(service)
        return self._own

    def key(self, slot: int) -> str:
        return self.store.keys.archive_run(slot)

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
            months = TicketArchive(service.state_dir).prune(service.archive_retention_days)
            payloads = Archive(service.state_dir).prune(service.archive_retention_days)
            quarantined = Quarantine(self.store, service.quarantine).purge()
            retention = self.retention(service)
            # last: PostgreSQL away fails the pass here, and the slot is tried again
            evicted = eviction_for(self.store, self.pool(service), service).run(
                datetime.fromtimestamp(self.clock(), UTC)
            )
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
            "retention": retention,
        }
        pipe = self.store.r.pipeline(transaction=False)
        pipe.set(key, json.dumps(summary), ex=ttl)
        pipe.hincrby(self.store.keys.archive_runs(), str(slot), 1)
        pipe.execute()
        if months or payloads or quarantined:
            log.info(
                "pruned %d archive months, %d raw payloads and %d quarantined items",
                len(months), payloads, quarantined,
            )  # fmt: skip
        return summary

    def retention(self, service: Any) -> dict[str, Any] | str | None:
        """The retention policy's erasure for this slot: what it did, why it was skipped, or
        None when no policy is set."""
        years = service.retention.personal_data_years
        records = self.records() if self.records is not None else None
        if years is None:
            return None
        if records is None:
            return "skipped: no database"
        from omnidesk.db.connect import RecordsUnavailable
        from omnidesk.db.retention import apply_retention

        try:
            with records.connection() as conn:
                return apply_retention(conn, years, store=self.store, state_dir=service.state_dir)
        except RecordsUnavailable as exc:  # the next slot tries again
            log.warning("retention skipped: %s", exc)
            return f"skipped: {exc}"

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
