"""A ticket's SLA clocks together (`SlaState`): the pure transitions intake and agents cause.

Each transition applies `omnidesk.sla.clock`'s one-clock transitions to the clocks it
concerns, in the ticket's calendar and policy (`SlaContext`). `standing` is what /metrics
counts a ticket as, the one rule the sweeper's packed hot path (`codec.fire_packed`) uses too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

import msgspec
from msgspec.structs import replace

from omnidesk.calendar import BusinessCalendar
from omnidesk.model import Status
from omnidesk.sla.clock import (
    TARGETS,
    Clock,
    ClockState,
    Step,
    _aware,
    _stamp,
    due_steps,
    fire,
    next_wakeup,
    pause,
    reopen,
    resume,
    start,
    stop,
    transfer,
)
from omnidesk.sla.errors import SlaError
from omnidesk.sla.policy import SlaContext


class SlaState(msgspec.Struct, kw_only=True, omit_defaults=True):
    """All clocks of one ticket; what the store persists (as JSON) per ticket."""

    ticket: str
    policy: str
    calendar: str
    clocks: dict[str, Clock] = {}
    history: list[str] = []


def open_state(
    ctx: SlaContext, ticket: str, policy_name: str, queue_calendar: str, now: datetime
) -> SlaState:
    """A new ticket: first_response and resolution start; next_response waits for a reply."""
    cal_name = ctx.calendar_for(policy_name, queue_calendar)
    policy, calendar = ctx.policy(policy_name), ctx.calendar(cal_name)
    clocks = {}
    for target in ("first_response", "resolution"):
        clock = start(target, policy_name, policy, calendar, now)
        if clock is not None:
            clocks[target] = clock
    return SlaState(ticket=ticket, policy=policy_name, calendar=cal_name, clocks=clocks)


def _each(
    state: SlaState,
    ctx: SlaContext,
    fn: Callable[[Clock, BusinessCalendar], Clock],
    targets: Iterable[str] = TARGETS,
) -> SlaState:
    clocks = dict(state.clocks)
    for target in targets:
        if target in clocks:
            clocks[target] = fn(clocks[target], ctx.calendar(clocks[target].calendar))
    return replace(state, clocks=clocks)


def agent_replied(state: SlaState, ctx: SlaContext, now: datetime) -> SlaState:
    """The first agent reply stops first_response; any reply stops next_response."""
    return _each(state, ctx, lambda c, cal: stop(c, cal, now), ("first_response", "next_response"))


def customer_wrote(state: SlaState, ctx: SlaContext, now: datetime) -> SlaState:
    """Resume what waited on the customer; (re)start next_response once answered before."""
    state = resume_all(state, ctx, now)
    first = state.clocks.get("first_response")
    nxt = state.clocks.get("next_response")
    if (first is not None and first.state != "stopped") or (nxt and nxt.state != "stopped"):
        return state  # the oldest unanswered message is already being timed
    policy, calendar = ctx.policy(state.policy), ctx.calendar(state.calendar)
    fresh = start("next_response", state.policy, policy, calendar, now)
    if fresh is None:
        return state
    history = list(state.history)
    if nxt is not None:
        history.append(f"{_stamp(now)} next_response restarted (previous: {nxt.outcome})")
    return replace(state, clocks={**state.clocks, "next_response": fresh}, history=history)


def status_changed(state: SlaState, ctx: SlaContext, now: datetime, status: Status) -> SlaState:
    """Pause on the policy's pause_on statuses (the pause named by the status only: the
    agent's free-text reason stays in the event, which erasure reaches), stop on
    resolve/close, resume otherwise."""
    if status in ctx.policy(state.policy).pause_on:
        return _each(state, ctx, lambda c, cal: pause(c, cal, now, str(status)))
    if status in (Status.RESOLVED, Status.CLOSED):
        return _each(state, ctx, lambda c, cal: stop(c, cal, now))
    return resume_all(state, ctx, now)


def resume_all(state: SlaState, ctx: SlaContext, now: datetime) -> SlaState:
    return _each(state, ctx, lambda c, cal: resume(c, cal, now))


def reopen_ticket(state: SlaState, ctx: SlaContext, now: datetime) -> SlaState:
    """Resolution runs again with what was left; paused clocks resume."""
    state = _each(state, ctx, lambda c, cal: reopen(c, cal, now), ("resolution",))
    state = resume_all(state, ctx, now)
    return replace(state, history=[*state.history, f"{_stamp(now)} reopened"])


def transfer_ticket(
    state: SlaState,
    ctx: SlaContext,
    now: datetime,
    new_policy_name: str,
    new_queue_calendar: str,
) -> SlaState:
    """Move every unstopped clock to the new queue's calendar and policy from `now`."""
    new_cal_name = ctx.calendar_for(new_policy_name, new_queue_calendar)
    new_policy, new_cal = ctx.policy(new_policy_name), ctx.calendar(new_cal_name)
    state = _each(
        state, ctx, lambda c, cal: transfer(c, cal, now, new_cal, new_policy_name, new_policy)
    )
    line = (
        f"{_stamp(now)} SLA moved from {state.policy} ({state.calendar}) to "
        f"{new_policy_name} ({new_cal_name}); elapsed business time kept"
    )
    return replace(
        state,
        policy=new_policy_name,
        calendar=new_cal_name,
        history=[*state.history, line],
    )


def state_due_steps(state: SlaState, now: datetime) -> list[tuple[str, Step]]:
    """(target, step) pairs due by `now` and not fired, earliest first."""
    pairs = [(t, s) for t, c in state.clocks.items() for s in due_steps(c, now)]
    return sorted(pairs, key=lambda p: (p[1].due_at, p[1].at))


def fire_step(state: SlaState, target: str, index: int, now: datetime) -> SlaState:
    if target not in state.clocks:
        raise SlaError(f"ticket {state.ticket} has no {target} clock")
    return replace(state, clocks={**state.clocks, target: fire(state.clocks[target], index, now)})


STANDINGS = ("running", "paused", "warned", "breached")

# One clock as `standing` weighs it: its state, whether it is past its due time, and the
# fractions (`Step.at`) of its fired steps.
ClockMarks = tuple[ClockState, bool, Iterable[float]]


def standing(clocks: Iterable[ClockMarks]) -> str:
    """What /metrics counts the ticket as, by queue: "breached" (a running clock past its due
    time, or its 100 % step fired), "warned" (a running clock with a step fired), "running",
    "paused" (no clock running, one paused), or "" (every clock stopped). It reads each
    clock's marks (`marks`), so the sweeper's packed hot path (`codec.fire_packed`), which
    builds no structs, judges by this same rule."""
    running = paused = warned = breached = False
    for state, overdue, fired in clocks:
        if state == "paused":
            paused = True
        elif state == "running":
            running = True
            breached = breached or overdue
            for at in fired:
                warned = True
                breached = breached or at >= 1.0
    if breached:
        return "breached"
    if warned:
        return "warned"
    return "running" if running else ("paused" if paused else "")


def marks(state: SlaState | None, now: datetime) -> list[ClockMarks]:
    """Each clock's marks for `standing` at `now` (none without a state)."""
    if state is None:
        return []
    now = _aware(now)
    return [
        (c.state, c.due_at is not None and c.due_at <= now, [s.at for s in c.steps if s.fired_at])
        for c in state.clocks.values()
    ]


def state_next_wakeup(state: SlaState) -> datetime | None:
    """The score for the sweeper's due ZSET: earliest unfired step across the clocks."""
    times = [t for c in state.clocks.values() if (t := next_wakeup(c)) is not None]
    return min(times) if times else None


def earliest_due(state: SlaState) -> datetime | None:
    """The nearest deadline among clocks still running (what the queue orders by)."""
    times = [c.due_at for c in state.clocks.values() if c.state == "running" and c.due_at]
    return min(times) if times else None
