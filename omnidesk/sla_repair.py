"""The SLA repair sweep: open tickets whose clocks missed an intake hook get them.

Intake's SLA hooks run after the intake script, so a crash or an outage between the two can
leave a ticket without clocks, or a customer's follow-up with no response clock timing it.
A failing hook fails its batch, which is retried, and a redelivery's duplicates start
missing clocks again; this sweep is the net under both. Every `sla_repair_interval_s` the
daemon reads the open tickets (statuses new and open) page by page and:

- starts the clocks of a ticket that has none (from the time intake stored it:
  `SlaClocks.started_at`);
- for a ticket whose latest customer message came after its last response clock stopped,
  with no response clock running, or whose resolution clock stopped while it is open
  again, applies the customer-message transition the hook would have applied.

Tickets touched in the last `GRACE` are left to their hooks, which may still be running.
Every write is the same compare-and-set as the hooks', so a sweep racing a hook is harmless.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime, timedelta

from omnidesk import sla
from omnidesk.errors import OmnideskError
from omnidesk.model import Direction, Status, Ticket
from omnidesk.sla import SlaState
from omnidesk.store import guarded
from omnidesk.sweeper import SlaClocks

log = logging.getLogger("omnidesk.sla_repair")

GRACE = timedelta(seconds=30)
PAGE = 500
LAST_MESSAGES = 3  # read from the end of a ticket to find its latest non-note message
RESPONSE_CLOCKS = ("first_response", "next_response")


@guarded
def repair(clocks: SlaClocks, now: datetime | None = None) -> int:
    """One pass over the open tickets; returns how many were repaired."""
    at = now or clocks.clock()
    store = clocks.store
    repaired = 0
    for status in (Status.NEW, Status.OPEN):
        index = store.key("status", status.value)
        start = 0
        while ids := store.r.zrange(index, start, start + PAGE - 1):
            start += len(ids)
            repaired += _repair_page(clocks, ids, at)
    if repaired:
        log.warning("SLA repair: %d tickets had missed clocks", repaired)
    return repaired


async def run_repair(clocks: SlaClocks, stop: asyncio.Event) -> None:
    """The daemon's loop: a pass every `service.sla_repair_interval_s` until `stop`."""
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), clocks.config.service.sla_repair_interval_s)
        if stop.is_set():
            return
        try:
            await asyncio.to_thread(repair, clocks)
        except OmnideskError as exc:
            log.warning("SLA repair pass failed: %s", exc)


def _repair_page(clocks: SlaClocks, ids: list[str], at: datetime) -> int:
    settled = [t for t in clocks.store.ticket_heads(ids) if _settled(t, at)]
    if not settled:
        return 0
    read = clocks.rb.pipeline(transaction=False)
    for ticket in settled:
        read.hget(*clocks.slot_key(ticket.id))
    records = read.execute()
    missing = [
        t for t, raw in zip(settled, records, strict=True) if not raw and clocks._policy_for(t)
    ]
    repaired = clocks.open_many(missing, at, set_due=True) if missing else 0
    timed = [
        (t, clocks._decode(t.id, raw)[0]) for t, raw in zip(settled, records, strict=True) if raw
    ]
    written = _last_customer_message(clocks, [t for t, _ in timed])
    for ticket, state in timed:
        when = written.get(ticket.id)
        if state is not None and when is not None and _missed(clocks, state, when):
            # timed from the message when it came after the last stop, as the hook would have
            clocks.on_customer_message(ticket, min(at, when) if when > _last_stop(state) else at)
            repaired += 1
    return repaired


def _settled(ticket: Ticket, at: datetime) -> bool:
    stamp = ticket.updated_at
    return stamp.tzinfo is not None and stamp < at - GRACE


def _last_customer_message(clocks: SlaClocks, tickets: list[Ticket]) -> dict[str, datetime]:
    """Ticket id -> when its latest non-note message was written, for those where that
    message is the customer's."""
    r = clocks.store.r
    read = r.pipeline(transaction=False)
    for ticket in tickets:
        read.lrange(clocks.store.key("ticket", ticket.id, "msgs"), -LAST_MESSAGES, -1)
    tails = read.execute()
    read = r.pipeline(transaction=False)
    for mids in tails:
        for mid in mids:
            read.hmget(clocks.store.key("msg", mid), "direction", "created_at")
    fields = iter(read.execute())
    out: dict[str, datetime] = {}
    for ticket, mids in zip(tickets, tails, strict=True):
        last: tuple[str, str, str] | None = None
        for mid, (direction, created) in zip(mids, (next(fields) for _ in mids), strict=True):
            if direction and direction != Direction.NOTE and created:
                last = (mid, direction, created)
        if last is not None and last[1] == Direction.IN:
            out[ticket.id] = _taken_in_at(last[0]) or datetime.fromisoformat(last[2])
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


def _missed(clocks: SlaClocks, state: SlaState, written: datetime) -> bool:
    """The customer's latest message (intake stored it at `written`) is not reflected in
    the clocks: an open ticket's resolution clock is stopped, or the policy times next
    responses and none runs though the message came after the last one stopped."""
    resolution = state.clocks.get("resolution")
    if resolution is not None and resolution.state == "stopped":
        return True  # open (the pass reads only open tickets) with resolution stopped
    try:
        times_next = clocks.ctx.policy(state.policy).next_response is not None
    except (KeyError, sla.SlaError):  # a policy a reload removed: nothing to restart
        return False
    responses = [state.clocks[name] for name in RESPONSE_CLOCKS if name in state.clocks]
    if not times_next or not responses or any(c.state != "stopped" for c in responses):
        return False
    return written > _last_stop(state)
