"""SLA clocks kept in Redis, and the sweeper that fires their escalation ladders.

The clocks themselves are pure (`omnidesk.sla`); this module persists them and runs them.
With the store prefix ``P``:

    P:sla:b:<bucket>  hash  the ticket id's last two digits -> "<version>|<wake>|<packed
                            SlaState>" (`sla.pack_state`, ~86 bytes fresh; <wake>: the
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
    P:sla:n           hash  "<queue>|<standing>" -> tickets (`sla.standing`: running, paused,
                            warned, breached), for /metrics; P:ticket:<id> sla_n says where
                            each ticket is counted
    P:stats           hash  sla_warned / sla_breached: steps fired; sla_held: buckets leased

Every write is a compare-and-set on the version (omnidesk/lua/sla_*.lua), so an intake
transition and a sweeper never overwrite each other: the loser re-reads and re-applies.
The sweeper works in batches: one script claims due buckets holding about `batch` tickets
under a lease and returns their records, Python computes every transition, and one script
commits the batch: per ticket, only the lease holder on the version it read writes the state,
applies the ladder actions and appends the events (notifications and metrics follow in
Python), and each bucket is re-scored by its earliest wakeup. The next batch is claimed and
computed while Redis runs a commit. Each step fires once per clock, across sweepers and
restarts. A step that fell due while no sweeper ran fires when one comes back, and its event
says how late (``late_s``).

The due index is kept per bucket, not per ticket, for memory (bench/sla.py measures it): a
ZSET entry costs ~110 bytes, as much as the record itself (records are over the 64-byte
listpack limit, so the buckets are real hash tables, ~170 bytes per record with its field
and entry). The claim script reads each record's wake and returns only the due ones; tickets
close in id were opened close in time, so their wakeups cluster.

Hooks the rest of the daemon calls (each loads, applies the pure transition, writes back):
`on_opened` (`open_many` for a bulk load), `on_customer_message`, `on_agent_reply`,
`on_status`, `on_transfer`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import redis
from redis.typing import EncodableT

from omnidesk import sla
from omnidesk.config import Action, QueueConfigFile
from omnidesk.errors import OmnideskError, PartialFailure
from omnidesk.intake import IntakeHooks
from omnidesk.model import Status, Ticket, utcnow
from omnidesk.replies import data, data_or_none, scored_data, texts
from omnidesk.sla import ClockSummary, SlaContext, SlaState
from omnidesk.store import Store, guarded, lua, ms, redis_errors

log = logging.getLogger("omnidesk.sweeper")

NotifyFn = Callable[[dict[str, str]], None]  # {ticket, queue, target, via, text}
CountFn = Callable[[str, str], None]  # (sla_warned | sla_breached, queue)
Now = Callable[[], datetime]

LATE_AFTER_S = 5.0  # a step fired later than this after its due time is flagged late
MAX_RETRIES = 50  # compare-and-set retries before giving up on one ticket
SWEEP_BUCKETS = 10_000  # one sweep claims at most this many buckets (~1,000,000 tickets)
RETRY_S = 60.0  # a ticket the sweeper cannot compute is tried again this much later
REPAIR_AFTER = timedelta(seconds=60)  # see `SlaClocks.started_at`
RISK_BUCKETS = 200  # at_risk reads at most this many buckets (~20,000 tickets)
RISK_OVERDUE = 20_000  # and at most this many overdue tickets


class SlaConflict(OmnideskError):
    """A ticket's SLA state kept changing under us; the next sweep tries again."""


@dataclass(frozen=True)
class Fired:
    """One ladder step that fired."""

    ticket: str
    queue: str
    target: str
    index: int
    at: float  # fraction of the target
    due_at: datetime
    fired_at: datetime
    late_by: float  # seconds from due to fired
    breached: bool
    actions: list[str] = field(default_factory=list)

    @property
    def late(self) -> bool:
        return self.late_by > LATE_AFTER_S


@dataclass
class _Planned:
    """A claimed batch, computed: the commit script's arguments and each ticket's steps."""

    token: str
    now: datetime
    args: list[Any]
    templates: list[dict[str, Any]] = field(default_factory=list)
    template_ids: dict[tuple[str, int, str, float], int] = field(default_factory=dict)
    tickets: list[tuple[str, list[tuple[list[Action], dict[str, Any]]]]] = field(
        default_factory=list
    )


# (bucket, earliest wakeup (ms) of its tickets not claimed, [(ticket, record), ...])
Claimed = list[tuple[str, int | None, list[tuple[str, bytes]]]]


@dataclass(frozen=True)
class AtRisk:
    ticket: str
    queue: str
    target: str
    due_at: datetime
    remaining_seconds: float  # business seconds; negative when overdue


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
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
    step, deadline = sla.state_next_wakeup(state), earliest_due(state)
    return score_us(
        None if step is None else sla.epoch_us(step),
        None if deadline is None else sla.epoch_us(deadline),
        sla.epoch_us(now),
    )


def score_us(step: int | None, deadline: int | None, now: int) -> tuple[str, str]:
    """`wake_score` from epoch microseconds."""
    ahead = deadline if deadline is not None and deadline > now else None
    times = [t for t in (step, ahead) if t is not None]
    wake = str(-(-min(times) // 1000)) if times else ""  # rounded up: due by the ms it names
    overdue = str(deadline // 1000) if deadline is not None and ahead is None else ""
    return wake, overdue


def earliest_due(state: SlaState) -> datetime | None:
    """The nearest deadline among clocks still running (what the queue orders by)."""
    times = [c.due_at for c in state.clocks.values() if c.state == "running" and c.due_at]
    return min(times) if times else None


def describe(action: Action) -> str:
    if action.notify:
        return f"notify {action.notify}" + (f" via {action.via}" if action.via else "")
    if action.raise_priority:
        return f"raise priority {action.raise_priority}"
    if action.set_priority:
        return f"set priority {action.set_priority}"
    if action.move_to:
        return f"move to {action.move_to}"
    if action.reassign:
        return "reassign"
    return f"tag {action.tag}"


class SlaClocks:
    """The SLA service: transitions for intake and agents, and the sweeper.

    `clock` is injectable (tests move time by hand). `notify` receives each notify action
    (the daemon wires it to the dramatiq `notify` actor); `count` each fired step (metrics);
    `on_fired` each fired step as soon as its batch is committed (the benchmark's lateness).
    """

    def __init__(
        self,
        store: Store,
        config: QueueConfigFile,
        *,
        clock: Now = utcnow,
        notify: NotifyFn | None = None,
        count: CountFn | None = None,
        on_fired: Callable[[Fired], None] | None = None,
        lease_seconds: float = 60.0,
        batch: int = 200,
        name: str | None = None,
    ) -> None:
        self.store = store
        self.config = config
        self.ctx = SlaContext.from_config(config)
        self.clock = clock
        self.notify = notify
        self.count = count
        self.on_fired = on_fired
        self.lease_ms = int(lease_seconds * 1000)
        self.batch = batch
        self.name = name or f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._steps: dict[tuple[str, int], tuple[list[Action], list[str], list[Any]]] = {}
        self._commit_loaded = False
        self.rb = store.binary()  # records are msgpack
        self._scripts = {
            n: self.rb.register_script(lua(n))
            for n in ("sla_write", "sla_open_many", "sla_claim", "sla_commit")
        }

    def reload(self, config: QueueConfigFile) -> None:
        """A new config (SIGHUP): policies and calendars apply from the next transition."""
        self.ctx = SlaContext.from_config(config)
        self.config = config
        self._steps = {}

    # ------------------------------------------------------------ storage

    def key(self, *parts: str) -> str:
        return self.store.key("sla", *parts)

    @staticmethod
    def bucket(ticket_id: str) -> str:
        return slot(ticket_id)[0]

    def slot_key(self, ticket_id: str) -> tuple[str, str]:
        """The small hash holding this ticket's record, and its field there."""
        bucket, field = slot(ticket_id)
        return self.key("b", bucket), field

    def _decode(self, ticket_id: str, raw: bytes | None) -> tuple[SlaState | None, int]:
        if not raw:
            return None, 0
        version, packed = split_record(raw)
        if not version.isdigit():
            raise sla.SlaError(f"stored SLA state of {ticket_id} is unreadable: no version")
        return sla.unpack_state(packed, ticket_id), int(version)

    @guarded
    def load(self, ticket_id: str) -> tuple[SlaState | None, int]:
        return self._decode(ticket_id, data_or_none(self.rb.hget(*self.slot_key(ticket_id))))

    def state(self, ticket_id: str) -> SlaState | None:
        return self.load(ticket_id)[0]

    @guarded
    def states(self, ticket_ids: list[str]) -> dict[str, SlaState]:
        """Many tickets' SLA states in one round trip; tickets without clocks are left out."""
        pipe = self.rb.pipeline(transaction=False)
        for tid in ticket_ids:
            pipe.hget(*self.slot_key(tid))
        out = {}
        for tid, raw in zip(ticket_ids, pipe.execute(), strict=True):
            state = self._decode(tid, raw)[0]
            if state is not None:
                out[tid] = state
        return out

    @guarded
    def _write(self, ticket_id: str, version: int, state: SlaState, now: datetime) -> int:
        wake, overdue = wake_score(state, now)
        args: list[EncodableT] = [
            self.store.prefix,
            ticket_id,
            version,
            record_body(sla.pack_state(state), wake),
            wake,
            sla.standing(state, now),
            overdue,
        ]
        return int(self._scripts["sla_write"](keys=[], args=args))

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
                due = earliest_due(new)
                if due is not None:
                    self.store.set_due(ticket_id, due)
                return new
        raise SlaConflict(f"SLA state of {ticket_id} kept changing; gave up")

    @guarded
    def open_many(
        self, tickets: Iterable[Ticket], now: datetime | None = None, *, set_due: bool = False
    ) -> int:
        """Start the clocks of many new tickets at once: pipelined, one compare-and-set per
        ticket, so tickets that already have clocks keep them. Returns how many were opened.
        With `set_due`, the opened tickets' queue order follows their first due time, in the
        same script (intake does this; a bulk load may skip it). Tickets opened at the same
        moment under the same policy share one packed state (the record leaves the ticket id
        out), so it is computed once. A ticket whose clocks cannot be computed (a policy a
        reload removed) does not stop the others: they are written, then `PartialFailure`
        names it."""
        at = now or self.clock()
        open_script = self._scripts["sla_open_many"]
        made: dict[tuple[str, str, datetime], tuple[bytes, str, datetime | None, str, str]] = {}
        opened: list[tuple[str, datetime | None]] = []
        queued: list[tuple[str, datetime | None]] = []
        args: list[Any] = [self.store.prefix]

        def flush() -> None:
            flags = open_script(keys=[], args=args, client=self.rb)
            opened.extend(item for item, flag in zip(queued, flags, strict=True) if int(flag))
            queued.clear()
            del args[1:]

        failed: dict[str, Exception] = {}
        for ticket in tickets:
            policy = self._policy_for(ticket)
            if policy is None:
                continue
            calendar = self._queue_calendar(ticket.queue)
            key = (policy, calendar, self.started_at(ticket, at))
            if key not in made:
                try:
                    made[key] = self._fresh_record(ticket.id, policy, calendar, key[2], at)
                except Exception as exc:  # pure computation: this ticket's, for good
                    failed[ticket.id] = exc
                    continue
            body, wake, due, standing, overdue = made[key]
            if set_due and due is not None:
                args += [ticket.id, body, wake, str(ms(due)), due.isoformat(), standing, overdue]
            else:
                args += [ticket.id, body, wake, "", "", standing, overdue]
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
        state = sla.open_state(self.ctx, ticket_id, policy, calendar, start)
        wake, overdue = wake_score(state, at)
        return (
            record_body(sla.pack_state(state), wake),
            wake,
            earliest_due(state),
            sla.standing(state, at),
            overdue,  # a repair can start clocks already past a deadline
        )

    @staticmethod
    def started_at(ticket: Ticket, now: datetime) -> datetime:
        """When a new ticket's clocks start: now, as intake stores it; but a ticket stored
        more than `REPAIR_AFTER` ago is a redelivery repairing clocks that a crash left out,
        and its clocks start when intake stored it (its `updated_at`), as they would have."""
        stored = ticket.updated_at
        return stored if stored.tzinfo is not None and stored < now - REPAIR_AFTER else now

    def on_opened_many(self, tickets: list[Ticket]) -> None:
        """Intake's batch hook: a whole batch's new tickets get their clocks in one go."""
        self.open_many(tickets, set_due=True)

    # ------------------------------------------------------------ hooks

    def _queue_calendar(self, queue: str) -> str:
        q = self.config.queues.get(queue)
        return q.calendar if q is not None else "national"

    def _policy_for(self, ticket: Ticket) -> str | None:
        if ticket.sla_policy:
            return ticket.sla_policy
        q = self.config.queues.get(ticket.queue)
        return q.sla_policy if q is not None else None

    def on_opened(self, ticket: Ticket, now: datetime | None = None) -> SlaState | None:
        """A new ticket: start its clocks (a second call for the same ticket changes nothing)."""
        policy = self._policy_for(ticket)
        if policy is None:
            return None
        at = now or self.clock()
        calendar = self._queue_calendar(ticket.queue)
        start = self.started_at(ticket, at)

        def change(state: SlaState | None) -> SlaState | None:
            if state is not None:
                return state
            return sla.open_state(self.ctx, ticket.id, policy, calendar, start)

        return self._update(ticket.id, at, change)

    def on_customer_message(self, ticket: Ticket, now: datetime | None = None) -> SlaState | None:
        """The customer wrote again: resume paused clocks, time the next response; a ticket
        intake reopened gets its resolution clock back with what was left."""
        at = now or self.clock()
        if self.state(ticket.id) is None:
            return self.on_opened(ticket, at)
        reopened = Status(ticket.status) in (Status.NEW, Status.OPEN)

        def change(state: SlaState | None) -> SlaState | None:
            if state is None:
                return None
            resolution = state.clocks.get("resolution")
            if reopened and resolution is not None and resolution.state == "stopped":
                state = sla.reopen_ticket(state, self.ctx, at)  # intake reopened the ticket
            return sla.customer_wrote(state, self.ctx, at)

        return self._update(ticket.id, at, change)

    def on_agent_reply(self, ticket: Ticket, now: datetime | None = None) -> SlaState | None:
        at = now or self.clock()
        return self._update(
            ticket.id, at, lambda s: sla.agent_replied(s, self.ctx, at) if s else None
        )

    def on_status(
        self,
        ticket: Ticket,
        status: Status | str,
        now: datetime | None = None,
    ) -> SlaState | None:
        """Pause on the policy's pause statuses (named by the status), stop on resolve/close,
        reopen or resume."""
        at, status = now or self.clock(), Status(status)

        def change(state: SlaState | None) -> SlaState | None:
            if state is None:
                return None
            resolution = state.clocks.get("resolution")
            if status in (Status.NEW, Status.OPEN) and resolution and resolution.state == "stopped":
                return sla.reopen_ticket(state, self.ctx, at)
            return sla.status_changed(state, self.ctx, at, status)

        return self._update(ticket.id, at, change)

    def on_transfer(
        self, ticket: Ticket, new_queue: str, now: datetime | None = None
    ) -> SlaState | None:
        """Keep the elapsed time; the new queue's calendar (and policy, if it has one) from now."""
        at = now or self.clock()
        q = self.config.queues.get(new_queue)
        calendar = q.calendar if q is not None else "national"

        def change(state: SlaState | None) -> SlaState | None:
            if state is None:
                return None
            policy = (q.sla_policy if q is not None else None) or state.policy
            return sla.transfer_ticket(state, self.ctx, at, policy, calendar)

        return self._update(ticket.id, at, change)

    def intake_hooks(self) -> IntakeHooks:
        """What `Intake` calls after each opened or appended ticket."""
        return IntakeHooks(
            on_opened=self.on_opened,
            on_customer_message=self.on_customer_message,
            on_opened_many=self.on_opened_many,
        )

    # ------------------------------------------------------------ the sweeper

    @guarded
    def _claim(self, now: datetime, limit: int) -> tuple[str, Claimed]:
        """Atomically take due buckets holding about `limit` due tickets under a fresh lease,
        with those tickets' records. The token is the lease's due score (expiry ms + 0.5),
        unique to this claim."""
        now_ms = sla.epoch_us(now) // 1000
        token = f"{now_ms + self.lease_ms}.5"
        args: list[EncodableT] = [self.store.prefix, now_ms, token, limit]
        reply = self._scripts["sla_claim"](keys=[], args=args)
        claimed: Claimed = []
        for i in range(0, len(reply), 3):
            bucket, rest, flat = reply[i].decode(), int(reply[i + 1]), reply[i + 2]
            records = [
                (bucket + f.decode(), raw) for f, raw in zip(flat[::2], flat[1::2], strict=True)
            ]
            claimed.append((bucket, None if rest < 0 else rest, records))
        return token, claimed

    def claim(self, now: datetime, limit: int) -> tuple[str, list[str]]:
        """Take due buckets holding about `limit` tickets under a lease; (token, ticket ids)."""
        token, got = self._claim(now, limit)
        return token, [tid for _, _, records in got for tid, _ in records]

    def sweep(self, now: datetime | None = None, limit: int = 100_000) -> list[Fired]:
        """Fire every ladder step due by `now` (claiming about `limit` tickets at most); returns
        what fired. Without `now`, each batch reads the clock, so a long sweep also takes what
        fell due while it ran.

        Batches overlap: batch k+1 is claimed before batch k's commit is sent, and computed in
        Python while Redis runs that commit (sent on a connection of its own, read afterwards).
        """
        fired: list[Fired] = []
        seen, buckets, more, retries = 0, 0, True, 0
        ready: _Planned | None = None  # computed, not sent yet
        sent: _Planned | None = None  # its commit running on `conn`
        pool = self.rb.connection_pool
        with redis_errors():
            conn = pool.get_connection()
        try:
            while ready is not None or sent is not None or more:
                reply = self._commit_reply(conn, sent) if sent is not None else None
                got: Claimed = []
                if more:
                    at = now or self.clock()
                    token, got = self._claim(at, min(self.batch, limit - seen))
                    seen += sum(len(records) for _, _, records in got)
                    buckets += len(got)
                    # a claim of stale buckets only (scored before their tickets' wakeups)
                    # goes on too: due ones may sort after them
                    more = bool(got) and seen < limit and buckets < SWEEP_BUCKETS
                done, sent = sent, None
                if ready is not None:
                    with redis_errors():
                        conn.send_command("EVALSHA", self._commit_sha(), 0, *ready.args)
                    sent = ready
                # while Redis runs that commit: settle the previous one, compute the next
                if done is not None and reply is not None:
                    settled, moved = self._settle(done, reply)
                    fired += settled
                    if moved and retries < MAX_RETRIES and seen < limit:  # re-read those
                        more, retries = True, retries + 1
                ready = self._plan_batch(got, token, at) if got else None
        except BaseException:
            conn.disconnect()  # a reply may still be pending on it
            raise
        finally:
            pool.release(conn)
        return fired

    def _commit_sha(self) -> str:
        if not self._commit_loaded:
            with redis_errors():
                self.rb.script_load(lua("sla_commit"))
            self._commit_loaded = True
        return str(self._scripts["sla_commit"].sha)

    def _commit_reply(self, conn: Any, planned: _Planned) -> list[Any]:
        """Read a commit sent on `conn`; a Redis that lost its script cache runs it again."""
        try:
            with redis_errors():
                return list(conn.read_response())
        except redis.exceptions.NoScriptError:
            self._commit_loaded = False
            return self._commit(planned.args)

    @guarded
    def _run_bucket(self, bucket: str, token: str, now: datetime) -> list[Fired]:
        """Fire what is due in one bucket this sweeper holds under `token`."""
        flat = self.rb.hgetall(self.key("b", bucket))
        planned = self._plan_batch(
            [(bucket, None, [(bucket + data(f).decode(), data(raw)) for f, raw in flat.items()])],
            token,
            now,
        )
        return self._settle(planned, self._commit(planned.args))[0]

    def _plan_batch(self, batch: Claimed, token: str, now: datetime) -> _Planned:
        """Every due step of a claimed batch and the commit script's arguments for it: per
        bucket, its earliest wakeup afterwards and the tickets that changed."""
        now_us = sla.epoch_us(now)
        iso = now.astimezone(UTC).isoformat()
        planned = _Planned(token, now, [self.store.prefix, token, now_us // 1000, iso, ""])
        for bucket, rest, records in batch:
            head = len(planned.args)
            planned.args += [bucket, "", 0]
            earliest = rest
            for tid, raw in records:
                try:
                    args, steps, wake = self._plan(tid, raw, now, now_us, planned)
                except OmnideskError as exc:
                    # its record stays as it is; the bucket comes back for it after a pause
                    log.warning("SLA sweep of %s: %s; retrying in %.0f s", tid, exc, RETRY_S)
                    wake = str(now_us // 1000 + int(RETRY_S * 1000))
                    args, steps = [], []
                if wake and (earliest is None or int(wake) < earliest):
                    earliest = int(wake)
                if args:
                    planned.args += args
                    planned.args[head + 2] += 1
                    planned.tickets.append((tid, steps))
            planned.args[head + 1] = "" if earliest is None else str(earliest)
        planned.args[4] = msgspec.json.encode(planned.templates)
        return planned

    @guarded
    def _commit(self, args: list[Any]) -> list[Any]:
        if len(args) <= 5:
            return []
        return list(self._scripts["sla_commit"](keys=[], args=args))

    def _settle(self, planned: _Planned, reply: list[Any]) -> tuple[list[Fired], int]:
        """What a commit fired (metrics and notifications go out now), and how many tickets
        an intake transition changed meanwhile (their buckets are due again at once)."""
        fired: list[Fired] = []
        moved, pos = 0, 0
        for tid, steps in planned.tickets:
            status = int(reply[pos])
            pos += 1
            if status == -1:
                moved += 1  # an intake transition got in first: the next claim re-reads it
                continue
            if status == -2:
                continue  # lost the lease: whoever holds it now carries on
            for actions, fields in steps:
                record = Fired(ticket=tid, queue=reply[pos].decode(), **fields)
                pos += 1
                fired.append(record)
                self._after(record, actions)
        return fired, moved

    def _ladder_step(self, policy: str, index: int) -> tuple[list[Action], list[str], list[Any]]:
        """A ladder step's actions, described, and as the commit script reads them (cached)."""
        key = (policy, index)
        if key not in self._steps:
            ladder = self.ctx.policy(policy).ladder
            if index >= len(ladder):  # the config lost that rung since the clock started
                raise sla.SlaError(f"SLA policy {policy!r} has no ladder step {index}")
            actions = ladder[index].actions
            self._steps[key] = (
                actions,
                [describe(a) for a in actions],
                [a.model_dump(exclude_none=True, mode="json") for a in actions],
            )
        return self._steps[key]

    def _template(self, planned: _Planned, step: sla.PackedFire) -> int:
        """The batch's event template for one ladder step on one target (1-based, for Lua)."""
        policy, index, at = step.policy, step.index, step.at
        key = (policy, index, step.target, at)
        if key not in planned.template_ids:
            _, described, dumped = self._ladder_step(policy, index)
            planned.templates.append(
                {
                    "kind": "sla_breached" if at >= 1.0 else "sla_warned",
                    "event": {
                        "target": step.target,
                        "at": f"{at:g}",
                        "step": f"{at:g}",
                        "policy": policy,
                        "actions": "; ".join(described),
                    },
                    "actions": dumped,
                }
            )
            planned.template_ids[key] = len(planned.templates)
        return planned.template_ids[key]

    def _plan(
        self, tid: str, raw: bytes, now: datetime, now_us: int, planned: _Planned
    ) -> tuple[list[Any], list[tuple[list[Action], dict[str, Any]]], str]:
        """One ticket's commit arguments ([] when its record stays as it is), the steps they
        fire (a `Fired` but its queue), and its wakeup afterwards. Fires on the packed record
        (`sla.fire_packed`, the same transition as `fire_step`); each step's event is its
        template plus "<template> <due> <late_s> <late>". A ticket whose deadline passed with
        no step firing is committed too: its wakeup moves on, it joins the overdue index and
        counts as breached."""
        version_text, _, old_body = raw.partition(b"|")
        if not version_text.isdigit():
            raise sla.SlaError(f"stored SLA state of {tid} is unreadable: no version")
        packed = old_body.partition(b"|")[2]
        new, done, wake, deadline, standing = sla.fire_packed(packed, now_us)
        wake_ms, overdue = score_us(wake, deadline, now_us)
        body = record_body(new or packed, wake_ms)
        if not done and body == old_body:
            return [], [], wake_ms
        steps: list[tuple[list[Action], dict[str, Any]]] = []
        events: list[str] = []
        for step in done:
            actions, described, _ = self._ladder_step(step.policy, step.index)
            template = self._template(planned, step)
            due_at = _EPOCH + timedelta(microseconds=step.due_us)
            late = "1" if step.late_by > LATE_AFTER_S else "0"
            events.append(f"{template} {due_at.isoformat()} {step.late_by:.3f} {late}")
            fields = {
                "target": step.target,
                "index": step.index,
                "at": step.at,
                "due_at": due_at,
                "fired_at": now,
                "late_by": step.late_by,
                "breached": step.at >= 1.0,
                "actions": described,
            }
            steps.append((actions, fields))
        args = [tid, int(version_text), body, overdue, ";".join(events), standing]
        return args, steps, wake_ms

    def _after(self, record: Fired, actions: list[Action]) -> None:
        """Outside the script: metrics and notifications (a failure here is logged only)."""
        kind = "sla_breached" if record.breached else "sla_warned"
        try:
            if self.count is not None:
                self.count(kind, record.queue)
            if self.on_fired is not None:
                self.on_fired(record)
            for action in actions:
                if action.notify and self.notify is not None:
                    what = "breached" if record.breached else f"at {record.at:.0%} of"
                    self.notify(
                        {
                            "ticket": record.ticket,
                            "queue": record.queue,
                            "target": action.notify,
                            "via": action.via or "log",
                            "text": f"{record.ticket}: {what} its {record.target} target",
                        }
                    )
        except Exception:
            log.exception("SLA notify/metrics failed for %s", record.ticket)

    async def run_sweeper(self, stop: asyncio.Event, interval: float = 0.25) -> None:
        """The daemon's loop: sweep, then wait `interval` seconds or until `stop` is set."""
        while not stop.is_set():
            try:
                fired = await asyncio.to_thread(self.sweep)
                if fired:
                    log.info("SLA sweep fired %d steps", len(fired))
            except OmnideskError as exc:
                log.warning("SLA sweep failed: %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)

    # ------------------------------------------------------------ reading

    def summary(self, ticket_id: str, now: datetime | None = None) -> list[ClockSummary]:
        state = self.state(ticket_id)
        return sla.summarize(state, self.ctx, now or self.clock()) if state else []

    def explain(self, ticket_id: str) -> list[str]:
        state = self.state(ticket_id)
        if state is None:
            return []
        lines = [f"{state.ticket}: policy {state.policy}, calendar {state.calendar}"]
        lines += [f"  {h}" for h in state.history]
        for target in sla.TARGETS:
            if target in state.clocks:
                lines += sla.explain_clock(state.clocks[target], self.ctx)
        return lines

    def explain_data(self, ticket_id: str) -> dict[str, Any] | None:
        """`explain` as structured data (sla.explain_data), for a page to word; None
        without clocks."""
        state = self.state(ticket_id)
        return sla.explain_data(state) if state is not None else None

    @guarded
    def at_risk(
        self,
        queue: str | Iterable[str] | None = None,
        limit: int = 50,
        now: datetime | None = None,
    ) -> list[AtRisk]:
        """Running clocks, least business time left first; `queue` one queue or several
        (a supervisor's scope), filtered before `limit` counts.

        Candidates: the overdue index (most overdue first, paged until `limit` of `queue`'s
        are found), then the due buckets in order of their earliest wakeup, which comes no
        later than the running deadlines of tickets not yet overdue: buckets are read until
        the next one wakes after the `limit`-th deadline found so far (at most `RISK_BUCKETS`
        of them). An unreadable record is logged and left out.
        """
        at = now or self.clock()
        out: list[AtRisk] = []
        seen: set[str] = set()
        if queue is not None:
            queue = frozenset([queue] if isinstance(queue, str) else queue)
        for start in range(0, RISK_OVERDUE, 500):
            overdue = texts(self.store.r.zrange(self.key("overdue"), start, start + 499))
            pipe = self.rb.pipeline(transaction=False)
            for tid in overdue:
                pipe.hget(*self.slot_key(tid))
            records = [(t, raw) for t, raw in zip(overdue, pipe.execute(), strict=True) if raw]
            out += self._risks(records, queue, at, seen)
            if len(overdue) < 500 or len(out) >= limit:
                break
        for start in range(0, RISK_BUCKETS, 20):
            page = scored_data(
                self.rb.zrangebyscore(
                    self.key("due"), 0, "+inf", start=start, num=20, withscores=True
                )
            )
            if not page:
                break
            if len(out) >= limit:
                nth = sorted(x.due_at for x in out)[limit - 1]
                if ms(nth) < page[0][1]:
                    break
            pipe = self.rb.pipeline(transaction=False)
            for bucket, _ in page:
                pipe.hgetall(self.key("b", bucket.decode()))
            for (bucket, _), flat in zip(page, pipe.execute(), strict=True):
                records = [((bucket + data(f)).decode(), data(v)) for f, v in flat.items()]
                out += self._risks(records, queue, at, seen)
        out.sort(key=lambda x: (x.remaining_seconds, x.due_at))
        return out[:limit]

    def _risks(
        self,
        records: list[tuple[str, bytes]],
        queues: frozenset[str] | None,
        at: datetime,
        seen: set[str],
    ) -> list[AtRisk]:
        """The running clocks among these records (of `queues`, if given), skipping `seen`."""
        records = [(tid, raw) for tid, raw in records if tid not in seen]
        seen.update(tid for tid, _ in records)
        pipe = self.store.r.pipeline(transaction=False)
        for tid, _ in records:
            pipe.hget(self.store.key("ticket", tid), "queue")
        out: list[AtRisk] = []
        for (tid, raw), tqueue in zip(records, pipe.execute(), strict=True):
            if queues is not None and tqueue not in queues:
                continue
            try:
                state, _ = self._decode(tid, raw)
            except OmnideskError as exc:
                log.warning("at-risk: %s: %s", tid, exc)
                continue
            assert state is not None
            for c in sla.summarize(state, self.ctx, at):
                if c.state == "running" and c.due_at is not None:
                    out.append(
                        AtRisk(state.ticket, tqueue or "", c.target, c.due_at, c.remaining_seconds)
                    )
        return out

    @guarded
    def counts(self) -> dict[str, Any]:
        """Figures for /metrics: tickets by queue and SLA standing (running, paused, warned,
        breached), steps fired so far (warned, breached), buckets with a wakeup scheduled and
        buckets held by a sweeper."""
        pipe = self.store.r.pipeline(transaction=False)
        pipe.zcard(self.key("due"))
        pipe.hgetall(self.key("n"))
        pipe.hmget(self.store.key("stats"), "sla_warned", "sla_breached", "sla_held")
        scheduled, counted, (warned, breached, held) = pipe.execute()
        by_queue: dict[str, dict[str, int]] = {}
        for name, value in counted.items():
            queue, _, standing = name.rpartition("|")
            by_queue.setdefault(queue, dict.fromkeys(sla.STANDINGS, 0))[standing] = int(value)
        return {
            "by_queue": by_queue,
            "scheduled": scheduled,
            "held": max(0, int(held or 0)),
            "warned": int(warned or 0),
            "breached": int(breached or 0),
        }
