"""SLA records in Redis: one packed `SlaState` per ticket, in buckets of ~100 tickets.

With the store prefix ``P``:

    P:sla:b:<bucket>  hash  the ticket id's last two digits -> "<version>|<wake>|<packed
                            SlaState>" (`codec.pack_state`, ~86 bytes fresh; <wake>: the
                            ticket's `wake_score`, base 36); <bucket> is the ticket id less
                            those digits, so ~100 tickets share a hash (bucket "" holds ids
                            not ending in two digits, each under its whole id: `slot`)
    P:sla:due         zset  bucket -> ms of the earliest wakeup among its tickets (a ticket's
                            wakeup: its next unfired ladder step, or its earliest running
                            deadline if sooner, so it turns overdue); while a sweeper holds
                            the bucket, its lease (expiry ms + 0.5, the fencing token of that
                            claim). Never later than any of its tickets' wakeups; it may be
                            earlier (a claim then finds nothing due and re-scores it).
    P:sla:dirty       set   leased buckets written since they were claimed (re-read at once)
    P:sla:overdue     zset  ticket -> deadline ms: running tickets past their earliest
                            deadline (`at_risk` lists these first)
    P:sla:n           hash  "<queue>|<standing>" -> tickets (`ticket.standing`: running, paused,
                            warned, breached), for /metrics; P:ticket:<id> sla_n says where
                            each ticket is counted
    P:stats           hash  sla_warned / sla_breached: steps fired; sla_held: buckets leased

Every write is a compare-and-set on the version (omnidesk/lua/sla_*.lua), so an intake
transition and a sweeper never overwrite each other: the loser re-reads and re-applies.

The due index is kept per bucket, not per ticket, for memory (bench/sla.py measures it): a
ZSET entry costs ~110 bytes, as much as the record itself (records are over the 64-byte
listpack limit, so the buckets are real hash tables, ~170 bytes per record with its field
and entry). The claim script reads each record's wake and returns only the due ones; tickets
close in id were opened close in time, so their wakeups cluster.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any, cast

import redis
from redis.commands.core import Script
from redis.typing import EncodableT

from omnidesk.config import QueueConfigFile
from omnidesk.errors import PartialFailure
from omnidesk.model import Ticket
from omnidesk.sla.codec import epoch_us, pack_state, unpack_state
from omnidesk.sla.errors import SlaConflict, SlaError
from omnidesk.sla.policy import SlaContext
from omnidesk.sla.ticket import (
    SlaState,
    earliest_due,
    marks,
    open_state,
    standing,
    state_next_wakeup,
)
from omnidesk.store import Store, guarded, ms

Now = Callable[[], datetime]

MAX_RETRIES = 50  # compare-and-set retries before giving up on one ticket

_SLOT = re.compile(r"(.*)([0-9][0-9])\Z", re.S)  # sla_lib.lua: ^(.-)(%d%d)$
_DIGITS36 = "0123456789abcdefghijklmnopqrstuvwxyz"


def slot(ticket_id: str) -> tuple[str, str]:
    """(bucket, field) of a ticket's record; sla_lib.lua's sla_slot computes the same, and
    bucket + field is always the ticket id."""
    m = _SLOT.match(ticket_id)
    return (m.group(1), m.group(2)) if m else ("", ticket_id)


def record_body(packed: bytes, wake: str) -> bytes:
    """What follows "<version>|" in a record: the wakeup (ms) in base 36, then the state."""
    digits, rest = "", int(wake or 0)
    while rest:
        rest, d = divmod(rest, 36)
        digits = _DIGITS36[d] + digits
    return digits.encode() + b"|" + packed


def split_record(raw: bytes) -> tuple[bytes, bytes]:
    """(version, packed state) of a stored record."""
    version, _, rest = raw.partition(b"|")
    return version, rest.partition(b"|")[2]


def wake_score(state: SlaState, now: datetime) -> tuple[str, str]:
    """The ticket's wakeup in ms ("" = none): its next unfired step, or its earliest running
    deadline if sooner and still ahead (so it turns overdue); and that deadline in ms if it
    has passed ("" = not overdue)."""
    step, deadline = state_next_wakeup(state), earliest_due(state)
    return score_us(
        None if step is None else epoch_us(step),
        None if deadline is None else epoch_us(deadline),
        epoch_us(now),
    )


def score_us(step: int | None, deadline: int | None, now: int) -> tuple[str, str]:
    """`wake_score` from epoch microseconds."""
    ahead = deadline if deadline is not None and deadline > now else None
    times = [t for t in (step, ahead) if t is not None]
    wake = str(-(-min(times) // 1000)) if times else ""  # rounded up: due by the ms it names
    overdue = str(deadline // 1000) if deadline is not None and ahead is None else ""
    return wake, overdue


class SlaRecords:
    """Reading and writing the records; the hooks, the sweeper and the queries build on it."""

    store: Store
    config: QueueConfigFile
    ctx: SlaContext
    clock: Now
    rb: redis.Redis
    _scripts: dict[str, Script]

    @staticmethod
    def bucket(ticket_id: str) -> str:
        return slot(ticket_id)[0]

    def slot_key(self, ticket_id: str) -> tuple[str, str]:
        """The small hash holding this ticket's record, and its field there."""
        bucket, field = slot(ticket_id)
        return self.store.keys.sla_bucket(bucket), field

    def _decode(self, ticket_id: str, raw: bytes | None) -> tuple[SlaState | None, int]:
        if not raw:
            return None, 0
        version, packed = split_record(raw)
        if not version.isdigit():
            raise SlaError(f"stored SLA state of {ticket_id} is unreadable: no version")
        return unpack_state(packed, ticket_id), int(version)

    @guarded
    def load(self, ticket_id: str) -> tuple[SlaState | None, int]:
        raw = cast(bytes | None, self.rb.hget(*self.slot_key(ticket_id)))  # a binary client
        return self._decode(ticket_id, raw)

    def state(self, ticket_id: str) -> SlaState | None:
        return self.load(ticket_id)[0]

    @guarded
    def first_response_dues(self, ticket_ids: list[str]) -> dict[str, datetime]:
        """When each ticket's policy promises a first response, while that clock runs (the
        receipts' `{first_response_due}`), in one round trip; tickets without such a clock
        are left out. Tickets opened together under one policy share one packed record
        (`open_many`), so each distinct record is decoded once."""
        pipe = self.rb.pipeline(transaction=False)
        for tid in ticket_ids:
            pipe.hget(*self.slot_key(tid))
        dues: dict[bytes, datetime | None] = {}
        out = {}
        for tid, raw in zip(ticket_ids, pipe.execute(), strict=True):
            if not raw:
                continue
            if raw not in dues:
                state = self._decode(tid, raw)[0]
                clock = state.clocks.get("first_response") if state is not None else None
                running = clock is not None and clock.state != "stopped"
                dues[raw] = clock.due_at if running and clock is not None else None
            due = dues[raw]
            if due is not None:
                out[tid] = due
        return out

    @guarded
    def _write(self, ticket_id: str, version: int, state: SlaState, now: datetime) -> int:
        """Compare-and-set the record, and with it the ticket's next due time, in one script
        (sla_write.lua): the due time follows the order of the records' versions."""
        wake, overdue = wake_score(state, now)
        due = earliest_due(state)
        args: list[EncodableT] = [
            ticket_id,
            version,
            record_body(pack_state(state), wake),
            wake,
            standing(marks(state, now)),
            overdue,
            ms(due) if due is not None else "",
            due.isoformat() if due is not None else "",
            int(time.time() * 1000),  # the due_changed event's time, as Store.set_due_many's
        ]
        return int(self._scripts["sla_write"](keys=[self.store.prefix], args=args))

    def _update(
        self, ticket_id: str, at: datetime, change: Callable[[SlaState | None], SlaState | None]
    ) -> SlaState | None:
        """Load, apply `change`, compare-and-set; re-read and re-apply on a conflict."""
        for _ in range(MAX_RETRIES):
            state, version = self.load(ticket_id)
            new = change(state)
            if new is None or new == state:
                return state
            if self._write(ticket_id, version, new, at) >= 0:
                return new
        raise SlaConflict(f"SLA state of {ticket_id} kept changing; gave up")

    @guarded
    def open_many(
        self,
        tickets: Iterable[Ticket],
        now: datetime | None = None,
        *,
        set_due: bool = False,
        opened_at: Mapping[str, datetime] | None = None,
    ) -> int:
        """Start the clocks of many new tickets at once: pipelined, one compare-and-set per
        ticket, so tickets that already have clocks keep them. Returns how many were opened.
        With `set_due`, the opened tickets' queue order follows their first due time, in the
        same script (intake does this; a bulk load may skip it). Tickets opened at the same
        moment under the same policy share one packed state (the record leaves the ticket id
        out), so it is computed once. A ticket whose clocks cannot be computed (a policy a
        reload removed) does not stop the others: they are written, then `PartialFailure`
        names it. `opened_at`: when intake opened tickets whose `updated_at` may have moved
        since (the repair sweep's, a redelivered batch's), their clocks' start
        (`started_at`)."""
        at = now or self.clock()
        opened_at = opened_at or {}
        open_script = self._scripts["sla_open_many"]
        made: dict[tuple[str, str, datetime], tuple[bytes, str, datetime | None, str, str]] = {}
        opened: list[tuple[str, datetime | None]] = []
        queued: list[tuple[str, datetime | None]] = []
        args: list[Any] = []

        def flush() -> None:
            flags = open_script(keys=[self.store.prefix], args=[ms(at), *args], client=self.rb)
            opened.extend(item for item, flag in zip(queued, flags, strict=True) if int(flag))
            queued.clear()
            del args[:]

        failed: dict[str, Exception] = {}
        for ticket in tickets:
            key = self.opening(ticket, at, opened_at.get(ticket.id))
            if key is None:
                continue
            if key not in made:
                try:
                    made[key] = self._fresh_record(ticket.id, *key, at)
                except Exception as exc:  # pure computation: this ticket's, for good
                    failed[ticket.id] = exc
                    continue
            body, wake, due, rank, overdue = made[key]
            if set_due and due is not None:
                args += [ticket.id, body, wake, str(ms(due)), due.isoformat(), rank, overdue]
            else:
                args += [ticket.id, body, wake, "", "", rank, overdue]
            queued.append((ticket.id, due))
            if len(queued) >= 500:
                flush()
        if queued:
            flush()
        if failed:
            raise PartialFailure(failed, done=len(opened))
        return len(opened)

    def _fresh_record(
        self, ticket_id: str, policy: str, calendar: str, start: datetime, at: datetime
    ) -> tuple[bytes, str, datetime | None, str, str]:
        """A new ticket's record body, wakeup, first due time, standing and overdue score."""
        state = open_state(self.ctx, ticket_id, policy, calendar, start)
        wake, overdue = wake_score(state, at)
        return (
            record_body(pack_state(state), wake),
            wake,
            earliest_due(state),
            standing(marks(state, at)),
            overdue,  # a repair can start clocks already past a deadline
        )

    def opening(
        self, ticket: Ticket, now: datetime, opened: datetime | None = None
    ) -> tuple[str, str, datetime] | None:
        """What a new ticket's clocks open with, its policy, queue calendar and start (None:
        no policy); `first_dues`, `open_many` and `on_opened` all take it from here, so the
        due time intake stores is the one the clocks start with."""
        policy = self._policy_for(ticket)
        if policy is None:
            return None
        start = self.started_at(ticket, now, opened)
        return policy, self._queue_calendar(ticket.queue), start

    @staticmethod
    def started_at(ticket: Ticket, now: datetime, opened: datetime | None = None) -> datetime:
        """When a ticket's clocks start: when intake opened it. That is `opened` (the hash's
        `opened_ms`, `Store.opened_at`) where the caller has read it (the repair sweep, a
        follow-up's hook finding no clocks, a batch's redelivery): clocks a hook missed
        start as they would have, though a follow-up has since moved `updated_at`. Else
        `updated_at`, which for a ticket intake has just opened is that same time (the one
        `first_dues` takes the first due time from). A time after `now` (a clock that is
        behind, a test's) gives now."""
        stored = ticket.updated_at
        if opened is not None and stored.tzinfo and opened < stored - timedelta(milliseconds=1):
            stored = opened  # moved since: `opened` keeps only the ms, `updated_at` the µs
        return stored if stored.tzinfo is not None and stored <= now else now

    def first_dues(self, drafts: list[Ticket]) -> list[datetime | None]:
        """Intake's hook before its script: the first due time of each ticket it may open,
        the one `open_many` then starts its clocks with (the same policy, calendar and
        start). Computed once per policy and calendar: a batch's drafts share one start."""
        at = self.clock()
        dues: dict[tuple[str, str, datetime], datetime | None] = {}
        out: list[datetime | None] = []
        for draft in drafts:
            key = self.opening(draft, at)
            if key is None:
                out.append(None)
                continue
            if key not in dues:
                try:
                    dues[key] = earliest_due(open_state(self.ctx, draft.id, *key))
                except Exception:  # pure computation: `open_many` reports it, by ticket id
                    dues[key] = None
            out.append(dues[key])
        return out

    def on_opened_many(
        self, tickets: list[Ticket], opened_at: Mapping[str, datetime] | None = None
    ) -> None:
        """Intake's batch hook: a whole batch's new tickets get their clocks in one go;
        those a redelivery read back start when intake opened them (`opened_at`)."""
        self.open_many(tickets, set_due=True, opened_at=opened_at)

    def _queue_calendar(self, queue: str) -> str:
        q = self.config.queues.get(queue)
        return q.calendar if q is not None else "national"

    def _policy_for(self, ticket: Ticket) -> str | None:
        if ticket.sla_policy:
            return ticket.sla_policy
        q = self.config.queues.get(ticket.queue)
        return q.sla_policy if q is not None else None
