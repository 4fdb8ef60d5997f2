"""Eviction: done tickets leave Redis once PostgreSQL holds them, so Redis is bounded by open
work, not by history.

A resolved ticket leaves after its reopen window (`service.reopen_window_days`; until then a
reply reopens it, which only Redis's intake script can decide), a closed one at once (or
after `service.evict_closed_after_s`). Candidates come from PostgreSQL's partial index
``tickets_hot_done`` (hot, resolved or closed), oldest change first, never from a scan of
Redis. Each batch is one Lua script (omnidesk/lua/evict.lua) that checks, atomically with
the deletion, that the records writer has written every event naming the ticket: no entry
from the writer group's low water mark on names it. A ticket that fails the check (or was
reopened) stays for a later pass. Then the rows are marked ``hot = false``; a crash
between the two leaves a row marked hot whose Redis keys are gone, which the next pass
finds ("gone") and marks.

Customers of the evicted tickets become candidates (``P:evict:customers``, added by the
same script) and each pass offers every candidate to `omnidesk.db.customer_evict`, which
removes those with no ticket left in Redis that PostgreSQL holds (loaded back on their next
message); one kept by its grace is offered again next pass, so none stays for good.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from omnidesk.db.customer_evict import EVICT_GRACE, evict_customers
from omnidesk.db.writer import GROUP
from omnidesk.replies import texts
from omnidesk.store import Store, guarded

log = logging.getLogger("omnidesk.evict")

CANDIDATES = (
    "SELECT id, updated_at FROM tickets WHERE hot AND status IN ('resolved', 'closed')"
    " AND updated_at < %(closed_before)s"
    " AND (status = 'closed' OR (updated_at < %(resolved_before)s"
    "      AND coalesce(resolved_at, updated_at) < %(resolved_before)s))"
    " AND (updated_at, id) > (%(after_t)s, %(after_id)s)"
    " ORDER BY updated_at, id LIMIT %(limit)s"
)


@dataclass
class EvictionResult:
    """What one pass did."""

    evicted: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # not yet written, or reopened
    gone: list[str] = field(default_factory=list)  # already out of Redis: marked cold
    customers: list[str] = field(default_factory=list)  # customers that left Redis too
    state: str = "ok"  # or "nogroup" / "behind": the writer has not caught up


class Eviction:
    def __init__(
        self,
        store: Store,
        records: Any,  # omnidesk.db.records.Records: PostgreSQL
        *,
        reopen_window: timedelta,
        closed_after: timedelta = timedelta(0),
        batch: int = 500,
        max_tail: int = 20_000,
        customer_grace: timedelta = EVICT_GRACE,
        customers: bool = True,  # False: leave customers be (tests of evict_customers alone)
    ) -> None:
        self.store = store
        self.records = records
        self.reopen_window = reopen_window
        self.closed_after = closed_after
        self.batch = batch
        self.max_tail = max_tail  # more unwritten entries than this: wait for the writer
        self.customer_grace = customer_grace  # see omnidesk.db.customer_evict
        self.customers = customers
        self._script = store.script("evict")
        self._prune = store.script("evict_candidates")

    def candidates(
        self, conn: Any, now: datetime, after: tuple[datetime, str] | None = None
    ) -> list[tuple[str, datetime]]:
        """Done tickets still hot whose window has passed, per PostgreSQL (its index)."""
        after_t, after_id = after or (datetime(1970, 1, 1, tzinfo=UTC), "")
        rows = conn.execute(
            CANDIDATES,
            {
                "closed_before": now - self.closed_after,
                "resolved_before": now - self.reopen_window,
                "after_t": after_t,
                "after_id": after_id,
                "limit": self.batch,
            },
        ).fetchall()
        return [(r[0], r[1]) for r in rows]

    @guarded
    def evict(self, ticket_ids: list[str], now: datetime) -> tuple[str, list[list[str]]]:
        """One batch through evict.lua: (state, [evicted, skipped, gone, customers])."""
        reply = self._script(
            keys=[self.store.prefix],
            args=[
                GROUP,
                int(now.timestamp() * 1000),
                int(self.reopen_window.total_seconds() * 1000),
                self.max_tail,
                *ticket_ids,
            ],
        )
        return reply[0], [list(x) for x in reply[1:]]

    def run(self, now: datetime | None = None) -> EvictionResult:
        """One pass over every candidate, a batch at a time."""
        now = now or datetime.now(UTC)
        out = EvictionResult()
        after: tuple[datetime, str] | None = None
        while True:
            with self.records.connection() as conn:
                rows = self.candidates(conn, now, after)
            if not rows:
                break
            after = rows[-1][1], rows[-1][0]
            state, (evicted, skipped, gone, _owners) = self.evict([r[0] for r in rows], now)
            if state != "ok":
                out.state = state
                log.info("eviction waits: the records writer is %s", state)
                break
            cold = evicted + gone
            if cold:
                with self.records.connection() as conn:
                    conn.execute("UPDATE tickets SET hot = false WHERE id = ANY(%s)", (cold,))
            out.evicted += evicted
            out.skipped += skipped
            out.gone += gone
            if len(rows) < self.batch:
                break
        if self.customers and out.state == "ok":
            out.customers = self.evict_customers()
        if out.evicted:
            log.info(
                "evicted %d done tickets and %d customers from redis; %d wait for the writer",
                len(out.evicted), len(out.customers), len(out.skipped),
            )  # fmt: skip
        return out

    def evict_customers(self, chunk: int = 1000) -> list[str]:
        """Offer every candidate customer (P:evict:customers: owners of evicted tickets, and
        those a grace or an unwritten identity kept last time) to `evict_customers`, then
        drop the candidates that need no more tries. Bounded by customers without a ticket
        in Redis that could not leave yet."""
        key = self.store.keys.evict_customers()
        removed: list[str] = []
        cursor = 0
        while True:
            cursor, members = self.store.r.sscan(key, cursor, count=chunk)
            if members:
                removed += evict_customers(
                    self.store, self.records, texts(members), grace=self.customer_grace
                )
                self._prune(keys=[self.store.prefix], args=members)
            if cursor == 0:
                return removed


def eviction_for(store: Store, records: Any, service: Any) -> Eviction:
    """The pass as `service:` configures it."""
    return Eviction(
        store,
        records,
        reopen_window=timedelta(days=service.reopen_window_days),
        closed_after=timedelta(seconds=service.evict_closed_after_s),
    )
