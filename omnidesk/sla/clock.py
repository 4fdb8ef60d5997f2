"""One SLA clock as pure data and pure transitions; the store persists it, the sweeper fires it.

A `Clock` measures one target (first_response, next_response, resolution) of one
ticket in business time. Every transition takes `now` (an injectable clock, no
sleeping) and returns a new value; nothing here touches Redis. Elapsed business time
is banked at each pause/transfer, so a running clock's due time is always
`calendar.add_business_time(resumed_at, target - elapsed)`.

Breach is judged on wall time against the due time the customer was promised: an
answer at 17:00 to a clock due at 16:00 is late even though the office was closed.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

import msgspec
from msgspec.structs import replace

from omnidesk.calendar import BusinessCalendar, format_seconds
from omnidesk.config import SlaPolicyConfig, SlaTarget, parse_duration
from omnidesk.sla.errors import SlaError

TARGETS: tuple[SlaTarget, ...] = ("first_response", "next_response", "resolution")
ClockState = Literal["running", "paused", "stopped"]
Outcome = Literal["met", "breached", "cancelled"]


class Step(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One rung of the ladder on one clock; its actions are `policy.ladder[index].actions`."""

    index: int
    at: float  # fraction of the target
    due_at: datetime | None = None  # None while paused, stopped, or not yet armed
    fired_at: datetime | None = None
    late_by: float | None = None  # seconds from due to fired (0 when on time)


class Pause(msgspec.Struct, kw_only=True, omit_defaults=True):
    reason: str
    started_at: datetime
    ended_at: datetime
    seconds: float  # wall time
    business_seconds: float  # business time the pause kept off the clock


class Clock(msgspec.Struct, kw_only=True, omit_defaults=True):
    target: SlaTarget
    policy: str
    calendar: str
    target_seconds: float
    started_at: datetime
    resumed_at: datetime | None  # start of the current running stretch
    elapsed: float = 0.0  # business seconds banked before `resumed_at`
    state: ClockState = "running"
    outcome: Outcome | None = None
    due_at: datetime | None = None
    paused_since: datetime | None = None
    pause_reason: str | None = None
    stopped_at: datetime | None = None
    pauses: list[Pause] = []
    steps: list[Step] = []
    history: list[str] = []


def target_seconds(
    policy: SlaPolicyConfig, target: SlaTarget, calendar: BusinessCalendar
) -> float | None:
    text = getattr(policy, target)
    if text is None:
        return None
    return parse_duration(text, business_day_seconds=calendar.business_day_seconds)


def _ladder(policy: SlaPolicyConfig, target: SlaTarget) -> list[Step]:
    return [
        Step(index=i, at=step.at) for i, step in enumerate(policy.ladder) if target in step.targets
    ]


def start(
    target: SlaTarget,
    policy_name: str,
    policy: SlaPolicyConfig,
    calendar: BusinessCalendar,
    now: datetime,
) -> Clock | None:
    """A running clock for `target`, or None when the policy sets no such target."""
    seconds = target_seconds(policy, target, calendar)
    if seconds is None:
        return None
    now = _aware(now)
    clock = Clock(
        target=target,
        policy=policy_name,
        calendar=calendar.name,
        target_seconds=seconds,
        started_at=now,
        resumed_at=now,
        steps=_ladder(policy, target),
    )
    return _arm(clock, calendar)


def elapsed(clock: Clock, calendar: BusinessCalendar, now: datetime) -> float:
    """Business seconds counted so far."""
    if clock.state == "running" and clock.resumed_at is not None:
        return clock.elapsed + max(0.0, calendar.business_time_between(clock.resumed_at, now))
    return clock.elapsed


def remaining(clock: Clock, calendar: BusinessCalendar, now: datetime) -> float:
    """Business seconds left; negative once overdue."""
    return clock.target_seconds - elapsed(clock, calendar, now)


def pause(clock: Clock, calendar: BusinessCalendar, now: datetime, reason: str) -> Clock:
    if clock.state != "running":
        return clock
    now = _aware(now)
    overdue = clock.due_at is not None and clock.due_at <= now
    return replace(
        clock,
        elapsed=elapsed(clock, calendar, now),
        state="paused",
        resumed_at=None,
        paused_since=now,
        pause_reason=reason,
        due_at=clock.due_at if overdue else None,
        # steps already due keep their time (they still fire, late); the rest wait
        steps=[
            s if s.fired_at or (s.due_at and s.due_at <= now) else replace(s, due_at=None)
            for s in clock.steps
        ],
    )


def resume(clock: Clock, calendar: BusinessCalendar, now: datetime) -> Clock:
    if clock.state != "paused" or clock.paused_since is None:
        return clock
    now = _aware(now)
    record = Pause(
        reason=clock.pause_reason or "paused",
        started_at=clock.paused_since,
        ended_at=now,
        seconds=(now - clock.paused_since).total_seconds(),
        business_seconds=max(0.0, calendar.business_time_between(clock.paused_since, now)),
    )
    resumed = replace(
        clock,
        state="running",
        resumed_at=now,
        paused_since=None,
        pause_reason=None,
        pauses=[*clock.pauses, record],
    )
    return _arm(resumed, calendar)


def stop(clock: Clock, calendar: BusinessCalendar, now: datetime) -> Clock:
    """The target was reached (reply sent, ticket resolved): met, or breached if late."""
    if clock.state == "stopped":
        return clock
    now = _aware(now)
    if clock.state == "paused":
        clock = resume(clock, calendar, now)  # closes the pause record
    spent = elapsed(clock, calendar, now)
    late = now > clock.due_at if clock.due_at is not None else spent > clock.target_seconds
    return _stopped(clock, now, spent, "breached" if late else "met")


def cancel(clock: Clock, calendar: BusinessCalendar, now: datetime, why: str) -> Clock:
    if clock.state == "stopped":
        return clock
    now = _aware(now)
    if clock.state == "paused":
        clock = resume(clock, calendar, now)
    stopped = _stopped(clock, now, elapsed(clock, calendar, now), "cancelled")
    return replace(stopped, history=[*stopped.history, f"{_stamp(now)} cancelled: {why}"])


def _stopped(clock: Clock, now: datetime, spent: float, outcome: Outcome) -> Clock:
    return replace(
        clock,
        elapsed=spent,
        state="stopped",
        outcome=outcome,
        resumed_at=None,
        stopped_at=now,
        steps=[s if s.fired_at else replace(s, due_at=None) for s in clock.steps],
    )


def reopen(clock: Clock, calendar: BusinessCalendar, now: datetime) -> Clock:
    """Run a stopped clock again with what was left; fired steps stay fired."""
    if clock.state != "stopped":
        return clock
    now = _aware(now)
    note = (
        f"{_stamp(now)} reopened with {format_seconds(clock.target_seconds - clock.elapsed)} left"
    )
    reopened = replace(
        clock,
        state="running",
        outcome=None,
        resumed_at=now,
        stopped_at=None,
        due_at=None,
        history=[*clock.history, note],
    )
    return _arm(reopened, calendar)


def transfer(
    clock: Clock,
    calendar: BusinessCalendar,
    now: datetime,
    new_calendar: BusinessCalendar,
    new_policy_name: str,
    new_policy: SlaPolicyConfig,
) -> Clock:
    """Keep the elapsed business time; count in the new calendar and policy from `now`.

    A target the new policy lacks is cancelled. Steps fired before (matched by their
    fraction) stay fired; new steps already passed fall due at once.
    """
    if clock.state == "stopped":
        return clock
    now = _aware(now)
    spent = elapsed(clock, calendar, now)
    seconds = target_seconds(new_policy, clock.target, new_calendar)
    if seconds is None:
        return cancel(clock, calendar, now, f"policy {new_policy_name!r} has no {clock.target}")
    fired = {s.at: s for s in clock.steps if s.fired_at}
    steps = [
        replace(s, fired_at=fired[s.at].fired_at, late_by=fired[s.at].late_by)
        if s.at in fired
        else s
        for s in _ladder(new_policy, clock.target)
    ]
    note = (
        f"{_stamp(now)} transferred from {clock.policy}/{clock.calendar} to "
        f"{new_policy_name}/{new_calendar.name} with {format_seconds(spent)} elapsed; "
        f"target {format_seconds(clock.target_seconds)} -> {format_seconds(seconds)}"
    )
    moved = replace(
        clock,
        policy=new_policy_name,
        calendar=new_calendar.name,
        target_seconds=seconds,
        elapsed=spent,
        resumed_at=now if clock.state == "running" else None,
        due_at=None,
        steps=steps,
        history=[*clock.history, note],
    )
    return _arm(moved, new_calendar) if moved.state == "running" else moved


def due_steps(clock: Clock, now: datetime) -> list[Step]:
    """Steps due by `now` and not fired yet, earliest first."""
    now = _aware(now)
    due = [s for s in clock.steps if not s.fired_at and s.due_at is not None and s.due_at <= now]
    return sorted(due, key=lambda s: (s.due_at, s.at))


def fire(clock: Clock, index: int, now: datetime) -> Clock:
    """Mark ladder step `index` fired at `now`, recording how late it was."""
    now = _aware(now)
    steps = []
    for s in clock.steps:
        if s.index == index and not s.fired_at:
            late = max(0.0, (now - s.due_at).total_seconds()) if s.due_at else 0.0
            s = replace(s, fired_at=now, late_by=late)
        steps.append(s)
    return replace(clock, steps=steps)


def next_wakeup(clock: Clock) -> datetime | None:
    """When the sweeper should next look at this clock (earliest unfired step due)."""
    times = [s.due_at for s in clock.steps if not s.fired_at and s.due_at is not None]
    return min(times) if times else None


def _arm(clock: Clock, calendar: BusinessCalendar) -> Clock:
    """Due times of a running clock and of its unfired steps, from `resumed_at`."""
    assert clock.state == "running" and clock.resumed_at is not None
    r, done = clock.resumed_at, clock.elapsed

    def when(mark: float, before: datetime | None) -> datetime:
        if mark > done:
            return calendar.add_business_time(r, mark - done)
        return before if before is not None and before <= r else r

    steps = [
        s if s.fired_at else replace(s, due_at=when(s.at * clock.target_seconds, s.due_at))
        for s in clock.steps
    ]
    return replace(clock, due_at=when(clock.target_seconds, clock.due_at), steps=steps)


def _aware(now: datetime) -> datetime:
    if now.tzinfo is None or now.utcoffset() is None:
        raise SlaError(f"naive datetime {now.isoformat()}: give a time zone")
    return now.astimezone(UTC)


def _stamp(now: datetime) -> str:
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
