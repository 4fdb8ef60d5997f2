"""The SLA repair sweep: open tickets whose clocks missed an intake hook get them.

Intake's SLA hooks run after the intake script, so a crash or an outage between the two can
leave a ticket without clocks, or a customer's follow-up with no response clock timing it.
A hook that fails transiently fails its batch, which is retried, and a redelivery's
duplicates start missing clocks again; a hook that fails for good is counted and left
here. This sweep is the net under both. Every `sla_repair_interval_s` the daemon reads the
open tickets (statuses new and open) page by page and:

- starts the clocks of a ticket that has none (from the time intake opened it, its
  `opened_ms`, though a follow-up came since: `SlaClocks.started_at`);
- for a ticket whose latest customer message came after its last response clock stopped,
  with no response clock running, or whose resolution clock stopped while it is open
  again, applies the customer-message transition the hook would have applied.

Tickets touched in the last `GRACE` are left to their hooks, which may still be running.
Every write is the same compare-and-set as the hooks', so a sweep racing a hook is harmless.

What a pass costs: per open ticket, two HGETs (its `updated_at` and its SLA record),
pipelined `PAGE` tickets to a round trip, with a `PAGE_PAUSE_S` pause between pages in the
daemon; and only for the few tickets that may need a repair (no clocks; no response clock
running; resolution stopped) their head and their last `LAST_MESSAGES` messages (and,
for those with no clocks, when intake opened them). 100,000
open tickets are 200 pages of two round trips each, spread by the pauses over 20 s or more.
Pages are read by offset, so a ticket whose status changes during a pass may be missed by
it; the next pass takes it.

A ticket the pass cannot repair (an unreadable SLA record, a policy a reload removed, a bug)
is logged with its id and counted (stats ``sla_repair_failed``, in /metrics); the pass goes
on with the others. A transient error (Redis unreachable) ends the pass; the next one starts
over. The daemon's loop survives any error: it logs it and waits for the next pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from omnidesk.errors import OmnideskError, PartialFailure
from omnidesk.intake import is_transient
from omnidesk.model import Direction, Status, Ticket
from omnidesk.replies import texts
from omnidesk.sla.errors import SlaError
from omnidesk.sla.ticket import SlaState
from omnidesk.store import guarded

if TYPE_CHECKING:  # engine.py runs this module's loop: the class is only a type here
    from omnidesk.sla.engine import SlaClocks

log = logging.getLogger("omnidesk.sla_repair")

GRACE = timedelta(seconds=30)
PAGE = 500
PAGE_PAUSE_S = 0.1  # between pages in the daemon: a pass never holds Redis for long
LAST_MESSAGES = 3  # read from the end of a ticket to find its latest non-note message
RESPONSE_CLOCKS = ("first_response", "next_response")
STATUSES = (Status.NEW, Status.OPEN)


def repair(clocks: SlaClocks, now: datetime | None = None) -> int:
    """One pass over the open tickets, without pauses; returns how many were repaired."""
    at = now or clocks.clock()
    repaired = 0
    for status in STATUSES:
        for ids in _pages(clocks, status):
            repaired += _repair_page(clocks, ids, at)
    _report(repaired)
    return repaired


async def run_repair(clocks: SlaClocks, stop: asyncio.Event) -> None:
    """The daemon's loop: a pass every `service.sla_repair_interval_s` until `stop`. An
    error ends one pass, never the loop."""
    while not stop.is_set():
        if await _wait(stop, clocks.config.service.sla_repair_interval_s):
            return
        try:
            await _paced_pass(clocks, stop)
        except OmnideskError as exc:
            log.warning("SLA repair pass failed: %s", exc)
        except Exception:
            log.exception("SLA repair pass failed; the next pass tries again")


async def _paced_pass(clocks: SlaClocks, stop: asyncio.Event) -> None:
    """`repair`, a page at a time in a thread, pausing between pages."""
    at = clocks.clock()
    repaired = 0
    for status in STATUSES:
        start = 0
        while ids := await asyncio.to_thread(_page, clocks, status, start):
            start += len(ids)
            repaired += await asyncio.to_thread(_repair_page, clocks, ids, at)
            if await _wait(stop, PAGE_PAUSE_S):
                return
    _report(repaired)


async def _wait(stop: asyncio.Event, seconds: float) -> bool:
    """Wait `seconds` or until `stop`; whether `stop` is set."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
    return stop.is_set()


def _report(repaired: int) -> None:
    if repaired:
        log.warning("SLA repair: %d tickets had missed clocks", repaired)


def _pages(clocks: SlaClocks, status: Status) -> Iterator[list[str]]:
    start = 0
    while ids := _page(clocks, status, start):
        start += len(ids)
        yield ids


@guarded
def _page(clocks: SlaClocks, status: Status, start: int) -> list[str]:
    return texts(
        clocks.store.r.zrange(clocks.store.keys.status(status.value), start, start + PAGE - 1)
    )


@guarded
def _repair_page(clocks: SlaClocks, ids: list[str], at: datetime) -> int:
    """Repair one page of open tickets; a ticket that fails is counted, not the page's end."""
    store = clocks.store
    read = clocks.rb.pipeline(transaction=False)
    for tid in ids:
        read.hget(store.keys.ticket(tid), "updated_at")
        read.hget(*clocks.slot_key(tid))
    replies = read.execute()
    no_clocks: list[str] = []
    suspects: dict[str, SlaState] = {}
    for tid, stamp, raw in zip(ids, replies[::2], replies[1::2], strict=True):
        try:
            if not _settled(stamp, at):
                continue
            if not raw:
                no_clocks.append(tid)
                continue
            state = clocks._decode(tid, raw)[0]
            if state is not None and _suspect(clocks, state):
                suspects[tid] = state
        except Exception as exc:
            _failed(clocks, tid, exc)
    if not no_clocks and not suspects:
        return 0
    heads = {t.id: t for t in store.ticket_heads(no_clocks + list(suspects))}
    repaired = _start_clocks(clocks, [heads[t] for t in no_clocks if t in heads], at)
    written = _last_customer_message(clocks, list(suspects))
    for tid, state in suspects.items():
        when = written.get(tid)
        if tid not in heads or when is None or not _missed(state, when):
            continue
        try:
            # timed from the message when it came after the last stop, as the hook would have
            clocks.on_customer_message(
                heads[tid], min(at, when) if when > _last_stop(state) else at
            )
            repaired += 1
        except Exception as exc:
            _failed(clocks, tid, exc)
    return repaired


def _start_clocks(clocks: SlaClocks, tickets: list[Ticket], at: datetime) -> int:
    """Start the clocks of tickets that have none; returns how many were started."""
    missing = [t for t in tickets if clocks._policy_for(t)]
    if not missing:
        return 0
    # from when intake opened each, not from `updated_at`: a follow-up since moved that
    opened_at = clocks.store.opened_at([t.id for t in missing])
    try:
        return clocks.open_many(missing, at, set_due=True, opened_at=opened_at)
    except PartialFailure as exc:
        for tid, error in exc.failed.items():
            _failed(clocks, tid, error)
        return exc.done


def _failed(clocks: SlaClocks, ticket_id: str, exc: Exception) -> None:
    """One ticket the pass could not repair: logged and counted; transient errors end it."""
    if is_transient(exc):
        raise exc
    log.warning("SLA repair of %s failed: %s: %s", ticket_id, type(exc).__name__, exc)
    clocks.store.incr("sla_repair_failed")


def _settled(stamp: bytes | None, at: datetime) -> bool:
    """Whether a ticket was last touched before the grace (a ticket gone is not)."""
    if not stamp:
        return False
    updated = datetime.fromisoformat(stamp.decode())
    return updated.tzinfo is not None and updated < at - GRACE


def _last_customer_message(clocks: SlaClocks, ticket_ids: list[str]) -> dict[str, datetime]:
    """Ticket id -> when its latest non-note message was written, for those where that
    message is the customer's."""
    if not ticket_ids:
        return {}
    r = clocks.store.r
    read = r.pipeline(transaction=False)
    for tid in ticket_ids:
        read.lrange(clocks.store.keys.ticket_msgs(tid), -LAST_MESSAGES, -1)
    tails = read.execute()
    read = r.pipeline(transaction=False)
    for mids in tails:
        for mid in mids:
            read.hmget(clocks.store.keys.msg(mid), "direction", "created_at")
    fields = iter(read.execute())
    out: dict[str, datetime] = {}
    for tid, mids in zip(ticket_ids, tails, strict=True):
        last: tuple[str, str, str] | None = None
        for mid, (direction, created) in zip(mids, (next(fields) for _ in mids), strict=True):
            if direction and direction != Direction.NOTE and created:
                last = (mid, direction, created)
        if last is not None and last[1] == Direction.IN:
            out[tid] = _taken_in_at(last[0]) or datetime.fromisoformat(last[2])
    return out


def _taken_in_at(message_id: str) -> datetime | None:
    """When intake stored a message: its id starts with that time (`new_message_id`). The
    message's own date is the sender's, and may be far older."""
    parts = message_id.split("-")
    try:
        return datetime.fromtimestamp(int(parts[1], 16) / 1000, UTC)
    except (IndexError, ValueError):
        return None


def _last_stop(state: SlaState) -> datetime:
    stops = [
        clock.stopped_at
        for name in RESPONSE_CLOCKS
        if (clock := state.clocks.get(name)) is not None and clock.stopped_at is not None
    ]
    return max(stops) if stops else datetime.min.replace(tzinfo=UTC)


def _suspect(clocks: SlaClocks, state: SlaState) -> bool:
    """Whether the clocks could be missing a customer message (only these tickets' messages
    are read): an open ticket's resolution clock is stopped, or the policy times next
    responses and none runs."""
    resolution = state.clocks.get("resolution")
    if resolution is not None and resolution.state == "stopped":
        return True  # open (the pass reads only open tickets) with resolution stopped
    try:
        times_next = clocks.ctx.policy(state.policy).next_response is not None
    except (KeyError, SlaError):  # a policy a reload removed: nothing to restart
        return False
    responses = [state.clocks[name] for name in RESPONSE_CLOCKS if name in state.clocks]
    return times_next and bool(responses) and all(c.state == "stopped" for c in responses)


def _missed(state: SlaState, written: datetime) -> bool:
    """A suspect's latest message, the customer's (intake stored it at `written`), is not
    reflected in its clocks: its resolution clock is stopped, or the message came after
    the last response clock stopped."""
    resolution = state.clocks.get("resolution")
    if resolution is not None and resolution.state == "stopped":
        return True
    return written > _last_stop(state)
