"""The pre-intake step: who a batch's senders are, and which of its messages are already on
record, before the batch is routed and taken in.

Redis holds hot state only (issue 13): a customer with no ticket in Redis leaves it
(omnidesk.db.customer_evict), and a message's dedupe key leaves `P:seen` when its ticket
does. Without this step a returning customer would get a new customer id from intake.lua,
a message redelivered after its ticket left Redis would open a second ticket, and routing
would never see a customer's tags (the rules' `customer_tag` condition).

Per batch, whatever its size:
- one Redis round trip (lua/known.lua): the customer of each identity and its segment,
  region and tags; and which dedupe keys `P:seen` holds;
- at most one PostgreSQL round trip, and only for what Redis did not know: the customers of
  the other identities (followed through merges), and which of the unseen dedupe keys
  `messages` already holds (its UNIQUE constraint is the backstop past Redis's window);
- one more Redis round trip only when something is to be written: customers PostgreSQL
  knew, loaded back (lua/customer_load.lua) so intake.lua links the message to them, and
  the counters.

PostgreSQL away (or no `records` at all: offline routing, tests) is never the batch's
error: the step falls back to what Redis knows, logs one warning per outage, and counts
`records_lookup_skipped` (messages taken in without the PostgreSQL check).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

import psycopg

from omnidesk.db.connect import RecordsUnavailable, connect
from omnidesk.db.lookup import CustomerRecord, batch_lookup
from omnidesk.intake import IntakeResult, lookup_keys
from omnidesk.model import Customer, Inbound, Segment
from omnidesk.store import Store, guarded, lua, ms

log = logging.getLogger("omnidesk.known")

# After PostgreSQL failed, batches go on with Redis alone for this long before one of them
# asks again (a quick direct connection first, so a refused port or a missing database
# costs milliseconds, not the pool's borrow timeout).
RETRY_S = 15.0
PROBE_TIMEOUT_S = 2
_T = TypeVar("_T")


@dataclass
class Known:
    """What the step found for one batch."""

    # identity key -> its customer (in Redis, or loaded back from PostgreSQL)
    customers: dict[str, Customer] = field(default_factory=dict)
    # dedupe key -> (message id, ticket id) of a message PostgreSQL holds and Redis forgot
    recorded: dict[str, tuple[str, str]] = field(default_factory=dict)

    def customer_for(self, inbound: Inbound) -> Customer | None:
        """The customer intake.lua will link the message to: its first lookup identity that
        names one (omnidesk.intake.lookup_keys), in order, as the script looks them up."""
        for key in lookup_keys(inbound):
            found = self.customers.get(key)
            if found is not None:
                return found
        return None

    def duplicate(self, inbound: Inbound) -> IntakeResult | None:
        """A message recorded before (PostgreSQL only): what intake would say of it."""
        if inbound.content_id:
            return None
        hit = self.recorded.get(inbound.dedupe_key)
        if hit is None:
            return None
        return IntakeResult(outcome="duplicate", ticket_id=hit[1], message_id=hit[0])


class RecordsGate:
    """PostgreSQL as the intake path sees it: asked while it answers; after a failure, left
    alone for `retry_s`, then probed with one direct connection before the pool is used
    again. One warning per outage, one line when it is back."""

    def __init__(self, records: Any, retry_s: float = RETRY_S) -> None:
        self.records = records  # omnidesk.db.records.Records, or None: not configured
        self.retry_s = retry_s
        self._lock = threading.Lock()
        self._down = False
        self._probed = False
        self._next_try = 0.0

    @property
    def configured(self) -> bool:
        return self.records is not None

    def run(self, fn: Callable[[psycopg.Connection[Any]], _T]) -> tuple[bool, _T | None]:
        """(True, fn's result) when PostgreSQL answered; (False, None) when it is away."""
        if self.records is None:
            return False, None
        with self._lock:
            if self._down and time.monotonic() < self._next_try:
                return False, None
            probe = self._down or not self._probed
        try:
            if probe:
                connect(self.records.info, connect_timeout=PROBE_TIMEOUT_S).close()
            with self.records.connection() as conn:
                result = fn(conn)
        except (RecordsUnavailable, psycopg.Error) as exc:
            self._failed(exc)
            return False, None
        with self._lock:
            self._probed = True
            was_down, self._down = self._down, False
        if was_down:
            log.warning("PostgreSQL answers again: intake's record lookups resume")
        return True, result

    def _failed(self, exc: BaseException) -> None:
        with self._lock:
            first = not self._down
            self._down, self._probed = True, True
            self._next_try = time.monotonic() + self.retry_s
        if first:
            log.warning(
                "PostgreSQL lookups skipped until it answers (intake goes on with Redis "
                "alone; counted as records_lookup_skipped): %s",
                str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__,
            )


class KnownLookup:
    """The step itself; one per runtime, shared by the worker's threads."""

    def __init__(self, store: Store, records: Any = None) -> None:
        self.store = store
        self.gate = RecordsGate(records)
        self._read = store.r.register_script(lua("known"))
        self._load = store.r.register_script(lua("customer_load"))

    @guarded
    def look(self, inbounds: Sequence[Inbound]) -> Known:
        """Find the customers and recorded messages of `inbounds`; load the customers
        PostgreSQL knows back into Redis. Redis trouble is StoreUnavailable (the batch is
        retried, as for intake itself); PostgreSQL trouble is never the batch's."""
        known = Known()
        identities = list(
            dict.fromkeys(i.key for inbound in inbounds for i in inbound.author.identities)
        )
        checkable = [i for i in inbounds if not i.content_id]  # see Known.duplicate
        dedupe = list(dict.fromkeys(i.dedupe_key for i in checkable))
        if not identities and not dedupe:
            return known
        now = ms_now()
        args = json.dumps({"ids": identities, "seen": dedupe}, ensure_ascii=False)
        reply = json.loads(self._read(keys=[self.store.prefix], args=[now, args]))
        found = list(reply.get("ids") or [])
        hot = reply.get("customers") or {}
        seen = list(reply.get("seen") or [])
        for ik, cid in zip(identities, found, strict=True):
            if cid:
                segment, region, tags = hot.get(cid, ("", "", ""))
                known.customers[ik] = _customer(cid, segment, region, tags)
        cold = [ik for ik, cid in zip(identities, found, strict=True) if not cid]
        unseen = {k for k, s in zip(dedupe, seen, strict=True) if not s}
        triples = [
            (i.channel.value, i.account, i.external_id) for i in checkable if i.dedupe_key in unseen
        ]
        if not cold and not triples:
            return known

        answered, answer = self.gate.run(partial(batch_lookup, identity_keys=cold, dedupe=triples))
        records: dict[str, CustomerRecord] = {}
        if answered and answer is not None:
            records, known.recorded = answer
        for ik, rec in records.items():
            known.customers[ik] = _customer(rec.id, rec.segment, rec.region or "", rec.tags)
        self._write_back(known, records, inbounds, answered, cold, unseen, now)
        return known

    def _write_back(
        self,
        known: Known,
        records: dict[str, CustomerRecord],
        inbounds: Sequence[Inbound],
        answered: bool,
        cold: list[str],
        unseen: set[str],
        now: int,
    ) -> None:
        """One pipelined round trip, only when there is something to write."""
        pipe = self.store.r.pipeline(transaction=False)
        writes = 0
        by_customer: dict[str, list[str]] = {}
        for ik, rec in records.items():
            by_customer.setdefault(rec.id, []).append(ik)
        for hits in by_customer.values():
            rec = records[hits[0]]
            self._load(keys=[self.store.prefix], args=_load_args(rec, hits, now), client=pipe)
            writes += 1
        duplicates = sum(1 for i in inbounds if known.duplicate(i) is not None)
        if duplicates:
            pipe.hincrby(self.store.keys.stats(), "duplicates", duplicates)
            writes += 1
        if not answered and self.gate.configured:
            cold_set = set(cold)
            skipped = sum(
                1
                for i in inbounds
                if (not i.content_id and i.dedupe_key in unseen)
                or any(x.key in cold_set for x in i.author.identities)
            )
            pipe.hincrby(self.store.keys.stats(), "records_lookup_skipped", skipped)
            writes += 1
        if writes:
            pipe.execute()


def ms_now() -> int:
    return int(time.time() * 1000)


def _customer(cid: str, segment: str, region: str, tags: Any) -> Customer:
    """A customer as routing sees it: segment, region and tags (Facts.from_inbound)."""
    if isinstance(tags, str):
        try:
            tags = json.loads(tags) if tags else []
        except ValueError:
            tags = []
    try:
        seg = Segment(segment) if segment else Segment.UNKNOWN
    except ValueError:
        seg = Segment.UNKNOWN
    return Customer(
        id=cid,
        segment=seg,
        region=region or None,
        tags=[str(t) for t in tags] if isinstance(tags, list | tuple) else [],
    )


def _load_args(rec: CustomerRecord, hits: list[str], now: int) -> list[Any]:
    """customer_load.lua's ARGV: the hash as intake writes it (tags as JSON, as the CRM
    writes them), and every identity to link: the customer's own, and the ones that found
    it through a merge."""
    fields: list[str] = ["name", rec.name, "segment", rec.segment]
    if rec.region:
        fields += ["region", rec.region]
    created = rec.created_at
    if created is not None:
        fields += ["created_at", created.isoformat()]
    fields += ["tags", json.dumps(list(rec.tags), ensure_ascii=False)]
    created_ms = ms(created) if created is not None else now
    identities = list(dict.fromkeys([*rec.identities, *hits]))
    return [rec.id, created_ms, now, json.dumps(fields, ensure_ascii=False), *identities]
