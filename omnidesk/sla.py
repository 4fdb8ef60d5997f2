"""SLA clocks as pure data and pure transitions; the store persists them, the sweeper fires them.

A `Clock` measures one target (first_response, next_response, resolution) of one
ticket in business time. Every transition takes `now` (an injectable clock, no
sleeping) and returns a new value; nothing here touches Redis. Elapsed business time
is banked at each pause/transfer, so a running clock's due time is always
`calendar.add_business_time(resumed_at, target - elapsed)`.

Breach is judged on wall time against the due time the customer was promised: an
answer at 17:00 to a clock due at 16:00 is late even though the office was closed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import msgspec
from msgspec.structs import replace

from omnidesk.calendar import BusinessCalendar, build_calendars, format_seconds
from omnidesk.config import QueueConfigFile, SlaPolicyConfig, SlaTarget, parse_duration
from omnidesk.errors import OmnideskError
from omnidesk.model import Status

TARGETS: tuple[SlaTarget, ...] = ("first_response", "next_response", "resolution")
ClockState = Literal["running", "paused", "stopped"]
Outcome = Literal["met", "breached", "cancelled"]


class SlaError(OmnideskError):
    """An SLA operation that names something the configuration does not have."""


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


# ---------------------------------------------------------------- one clock


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


# ---------------------------------------------------------------- a ticket's clocks


@dataclass(frozen=True)
class SlaContext:
    """What transitions need from the config: calendars by name and policies by name."""

    calendars: Mapping[str, BusinessCalendar]
    policies: Mapping[str, SlaPolicyConfig]

    @classmethod
    def from_config(cls, cfg: QueueConfigFile) -> SlaContext:
        return cls(build_calendars(cfg.calendars), dict(cfg.sla_policies))

    def calendar(self, name: str) -> BusinessCalendar:
        try:
            return self.calendars[name]
        except KeyError:
            raise SlaError(f"calendar {name!r} does not exist") from None

    def policy(self, name: str) -> SlaPolicyConfig:
        try:
            return self.policies[name]
        except KeyError:
            raise SlaError(f"SLA policy {name!r} does not exist") from None

    def calendar_for(self, policy_name: str, queue_calendar: str) -> str:
        """The policy's own calendar wins over the queue's."""
        return self.policy(policy_name).calendar or queue_calendar


class SlaState(msgspec.Struct, kw_only=True, omit_defaults=True):
    """All clocks of one ticket; what the store persists (as JSON) per ticket."""

    ticket: str
    policy: str
    calendar: str
    clocks: dict[str, Clock] = {}
    history: list[str] = []


class ClockSummary(msgspec.Struct, kw_only=True, omit_defaults=True):
    target: str
    state: ClockState
    outcome: Outcome | None
    due_at: datetime | None
    remaining_seconds: float
    breached: bool
    met: bool
    paused_reason: str | None
    steps_fired: list[float]
    pauses: int


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


def standing(state: SlaState | None, now: datetime) -> str:
    """What /metrics counts the ticket as, by queue: "breached" (a running clock past its due
    time, or its 100 % step fired), "warned" (a running clock with a step fired), "running",
    "paused" (no clock running, one paused), or "" (every clock stopped)."""
    if state is None:
        return ""
    now = _aware(now)
    running = paused = warned = breached = False
    for c in state.clocks.values():
        if c.state == "paused":
            paused = True
        elif c.state == "running":
            running = True
            if c.due_at is not None and c.due_at <= now:
                breached = True
            for s in c.steps:
                if s.fired_at:
                    warned = True
                    breached = breached or s.at >= 1.0
    if breached:
        return "breached"
    if warned:
        return "warned"
    return "running" if running else ("paused" if paused else "")


def state_next_wakeup(state: SlaState) -> datetime | None:
    """The score for the sweeper's due ZSET: earliest unfired step across the clocks."""
    times = [t for c in state.clocks.values() if (t := next_wakeup(c)) is not None]
    return min(times) if times else None


def summarize(state: SlaState, ctx: SlaContext, now: datetime) -> list[ClockSummary]:
    now = _aware(now)
    out = []
    for target in TARGETS:
        clock = state.clocks.get(target)
        if clock is None:
            continue
        cal = ctx.calendar(clock.calendar)
        left = remaining(clock, cal, now)
        if clock.state == "stopped":
            breached = clock.outcome == "breached"
        else:
            breached = (clock.due_at is not None and now > clock.due_at) or left < 0
        out.append(
            ClockSummary(
                target=target,
                state=clock.state,
                outcome=clock.outcome,
                due_at=clock.due_at if clock.state != "stopped" else None,
                remaining_seconds=left,
                breached=breached,
                met=clock.outcome == "met",
                paused_reason=clock.pause_reason,
                steps_fired=[s.at for s in clock.steps if s.fired_at],
                pauses=len(clock.pauses),
            )
        )
    return out


def explain_data(state: SlaState) -> dict[str, Any]:
    """What `explain` says, as data a page words in its own language: the policy, the
    calendar, and each clock's target, banked time, state and pauses."""
    return {
        "policy": state.policy,
        "calendar": state.calendar,
        "clocks": [
            {
                "target": c.target,
                "policy": c.policy,
                "calendar": c.calendar,
                "target_seconds": c.target_seconds,
                "banked_seconds": c.elapsed,
                "state": c.state,
                "outcome": c.outcome,
                "due_at": c.due_at.isoformat() if c.due_at else None,
                "paused_reason": c.pause_reason,
                "pauses": [
                    {
                        "reason": p.reason,
                        "seconds": p.seconds,
                        "business_seconds": p.business_seconds,
                    }
                    for p in c.pauses
                ],
            }
            for target in TARGETS
            if (c := state.clocks.get(target)) is not None
        ],
    }


def explain_clock(clock: Clock, ctx: SlaContext) -> list[str]:
    """Why the due time is what it is: the stretch still to run, slots used, days skipped."""
    lines = [
        f"{clock.target}: target {format_seconds(clock.target_seconds)} ({clock.policy}), "
        f"{format_seconds(clock.elapsed)} banked, {clock.state}"
        + (f" ({clock.outcome})" if clock.outcome else "")
    ]
    lines += [
        f"  paused {p.reason}: {format_seconds(p.seconds)} wall, "
        f"{format_seconds(p.business_seconds)} business"
        for p in clock.pauses
    ]
    lines += [f"  {h}" for h in clock.history]
    if clock.state == "running" and clock.resumed_at and clock.due_at:
        cal = ctx.calendar(clock.calendar)
        lines += [f"  {line}" for line in cal.explain(clock.resumed_at, clock.due_at)]
    return lines


# ---------------------------------------------------------------- persistence

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(SlaState)


def encode_state(state: SlaState) -> bytes:
    return _encoder.encode(state)


def decode_state(raw: bytes | str) -> SlaState:
    try:
        return _decoder.decode(raw)
    except msgspec.DecodeError as exc:
        raise SlaError(f"stored SLA state is unreadable: {exc}") from None


# ---------------------------------------------------------------- compact storage form
#
# What the store keeps per ticket (the sweeper's hot record): positional msgpack, no field
# names, targets by position, times as integer offsets from one base instant, a clock's
# policy/calendar only when they differ from the ticket's, the common fields first and
# trailing defaults dropped, a step due with its clock as `true`, ladder fractions in percent.
# A fresh two-clock ticket packs to ~100 bytes (its JSON is ~780). Exact round trip.
#
#   state: [format, policy, calendar, base_us, [clock | nil per TARGETS], history?]
#   clock: [target_s, due, steps, started, resumed ("" = none), elapsed, state, outcome,
#           paused_since, pause_reason, stopped_at, pauses, policy, calendar, history]
#   step:  [index, at (percent int, or float), due (true = the clock's), fired_at, late_by]
#   pause: [reason, started_at, ended_at, seconds, business_seconds]

_PACK_FORMAT = 2
_STATES: tuple[ClockState, ...] = ("running", "paused", "stopped")
_OUTCOMES: tuple[Outcome, ...] = ("met", "breached", "cancelled")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_packer = msgspec.msgpack.Encoder()
_unpacker = msgspec.msgpack.Decoder()
_REQUIRED = object()  # a position never dropped
_STATE_DEFAULTS: tuple[object, ...] = (_REQUIRED, _REQUIRED, _REQUIRED, 0, [], [])
_CLOCK_DEFAULTS: tuple[object, ...] = (
    (_REQUIRED, _REQUIRED, _REQUIRED, 0, 0, 0, 0) + (None,) * 4 + ([], None, None, [])
)
_STEP_DEFAULTS = (_REQUIRED, _REQUIRED, None, None, None)


def _num(x: float) -> float | int:
    """Floats that are whole numbers pack as (shorter) ints."""
    return int(x) if x == int(x) and abs(x) < 2**53 else x


def _frac(x: float) -> float | int:
    """Ladder fractions (0.5, 0.8, 1.0) pack as exact percent ints."""
    k = round(x * 100)
    return k if k / 100 == x else float(x)


def _unfrac(v: float | int) -> float:
    return v / 100 if isinstance(v, int) else float(v)


def _rel(t: datetime | None, base_us: int) -> int | None:
    """An instant as an offset from the base: whole ms as 2*ms, else 2*us + 1."""
    if t is None:
        return None
    d = (t - _EPOCH) // _US - base_us
    return (d // 1000) * 2 if d % 1000 == 0 else d * 2 + 1


def _abs(v: int | None, base_us: int) -> datetime | None:
    if v is None:
        return None
    d = (v // 2) * 1000 if v % 2 == 0 else (v - 1) // 2
    return _EPOCH + timedelta(microseconds=base_us + d)


def _trim(items: list[object], defaults: tuple[object, ...]) -> list[object]:
    """Drop trailing fields equal (same type too) to what unpacking fills in anyway."""
    while items:
        last, default = items[-1], defaults[len(items) - 1]
        if not (last is default or (type(last) is type(default) and last == default)):
            break
        items.pop()
    return items


def _pad(items: list[Any], defaults: tuple[object, ...]) -> list[Any]:
    if len(items) < len(defaults):
        items = items + [None if d is _REQUIRED else d for d in defaults[len(items) :]]
    return items


def _pack_pause(p: Pause, base: int) -> list[object]:
    started, ended = _rel(p.started_at, base), _rel(p.ended_at, base)
    return [p.reason, started, ended, _num(p.seconds), _num(p.business_seconds)]


def _pack_step(s: Step, due: int | None, base: int) -> list[object]:
    mine = _rel(s.due_at, base)
    return _trim(
        [
            s.index,
            _frac(s.at),
            True if mine is not None and mine == due else mine,
            _rel(s.fired_at, base),
            None if s.late_by is None else _num(s.late_by),
        ],
        _STEP_DEFAULTS,
    )


def _pack_clock(c: Clock, state: SlaState, base: int) -> list[object]:
    due = _rel(c.due_at, base)
    resumed = _rel(c.resumed_at, base)
    return _trim(
        [
            _num(c.target_seconds),
            due,
            [_pack_step(s, due, base) for s in c.steps],
            _rel(c.started_at, base),
            "" if resumed is None else resumed,
            _num(c.elapsed),
            _STATES.index(c.state),
            None if c.outcome is None else _OUTCOMES.index(c.outcome),
            _rel(c.paused_since, base),
            c.pause_reason,
            _rel(c.stopped_at, base),
            [_pack_pause(p, base) for p in c.pauses],
            None if c.policy == state.policy else c.policy,
            None if c.calendar == state.calendar else c.calendar,
            list(c.history),
        ],
        _CLOCK_DEFAULTS,
    )


def _unpack_clock(target: SlaTarget, f: list[Any], state: SlaState, base: int) -> Clock:
    f = _pad(f, _CLOCK_DEFAULTS)
    steps = []
    for s in f[2] or []:
        s = _pad(s, _STEP_DEFAULTS)
        steps.append(
            Step(
                index=s[0],
                at=_unfrac(s[1]),
                due_at=_abs(f[1] if s[2] is True else s[2], base),
                fired_at=_abs(s[3], base),
                late_by=None if s[4] is None else float(s[4]),
            )
        )
    return Clock(
        target=target,
        policy=f[12] if f[12] is not None else state.policy,
        calendar=f[13] if f[13] is not None else state.calendar,
        target_seconds=float(f[0]),
        # a clock's and a pause's start are never empty; _abs is typed for the optional ones
        started_at=_abs(f[3], base),  # type: ignore[arg-type]
        resumed_at=None if f[4] == "" else _abs(f[4], base),
        elapsed=float(f[5]),
        state=_STATES[f[6]],
        outcome=None if f[7] is None else _OUTCOMES[f[7]],
        due_at=_abs(f[1], base),
        paused_since=_abs(f[8], base),
        pause_reason=f[9],
        stopped_at=_abs(f[10], base),
        pauses=[
            Pause(
                reason=p[0],
                started_at=_abs(p[1], base),  # type: ignore[arg-type]
                ended_at=_abs(p[2], base),  # type: ignore[arg-type]
                seconds=float(p[3]),
                business_seconds=float(p[4]),
            )
            for p in f[11]
        ],
        steps=steps,
        history=list(f[14]),
    )


def pack_state(state: SlaState) -> bytes:
    """The compact form the store keeps (see above); `unpack_state` reverses it exactly."""
    starts = [c.started_at for c in state.clocks.values()]
    base = (min(starts) - _EPOCH) // _US if starts else 0
    clocks = [
        _pack_clock(state.clocks[t], state, base) if t in state.clocks else None for t in TARGETS
    ]
    fields = [_PACK_FORMAT, state.policy, state.calendar, base, clocks, list(state.history)]
    return _packer.encode(_trim(fields, _STATE_DEFAULTS))


def unpack_state(raw: bytes, ticket: str) -> SlaState:
    """`ticket` is the key the record was stored under (the record leaves it out)."""
    try:
        f = _unpacker.decode(raw)
        if type(f) is not list or not f or f[0] != _PACK_FORMAT:
            raise ValueError("not a packed SLA state")
        f = _pad(f, _STATE_DEFAULTS)
        state = SlaState(ticket=ticket, policy=f[1], calendar=f[2], history=list(f[5]))
        clocks = {
            t: _unpack_clock(t, c, state, f[3])
            for t, c in zip(TARGETS, f[4], strict=False)
            if c is not None
        }
        return replace(state, clocks=clocks)
    except (msgspec.DecodeError, ValueError, TypeError, IndexError, KeyError) as exc:
        raise SlaError(f"stored SLA state is unreadable: {exc}") from None


class PackedFire(msgspec.Struct, frozen=True):
    """One step `fire_packed` marked fired."""

    target: SlaTarget
    index: int
    at: float
    policy: str
    due_us: int  # microseconds since the epoch
    late_by: float


def epoch_us(t: datetime) -> int:
    return (_aware(t) - _EPOCH) // _US


def _us(v: int, base_us: int) -> int:
    return base_us + ((v // 2) * 1000 if v % 2 == 0 else (v - 1) // 2)


def fire_packed(
    raw: bytes, now: datetime | int
) -> tuple[bytes | None, list[PackedFire], int | None, int | None, str]:
    """The sweeper's hot path, on the packed record without building the structs: fire every
    step due by `now` (a datetime or epoch microseconds), earliest first, exactly as
    `state_due_steps` + `fire_step` would (tests/test_sla.py holds them equal).

    Returns (the new packed record or None when nothing fired, what fired, the next unfired
    step's due time and the earliest running deadline, both in epoch microseconds or None,
    and the ticket's `standing` afterwards).
    """
    now_us = now if isinstance(now, int) else epoch_us(now)
    try:
        f = _unpacker.decode(raw)
        if type(f) is not list or not f or f[0] != _PACK_FORMAT:
            raise ValueError("not a packed SLA state")
        n = len(f)
        policy, base = f[1], (f[3] if n > 3 else 0) or 0
        clocks = (f[4] if n > 4 else None) or ()
        due: list[tuple[int, float, int, list[Any], list[Any]]] = []
        wake: int | None = None
        deadline: int | None = None
        running = paused = warned = breached = False  # as `standing`, after firing
        for i, c in enumerate(clocks):
            if c is None:
                continue
            cdue, state = c[1], c[6] if len(c) > 6 else 0
            paused = paused or state == 1
            if state == 0:
                running = True
                if cdue is not None:
                    d = base + (cdue >> 1 if cdue & 1 else (cdue >> 1) * 1000)
                    breached = breached or d <= now_us
                    if deadline is None or d < deadline:
                        deadline = d
            for st in c[2]:
                if len(st) > 3 and st[3] is not None:  # fired already
                    if state == 0:
                        warned, breached = True, breached or _unfrac(st[1]) >= 1.0
                    continue
                if len(st) < 3 or st[2] is None:
                    continue  # not armed
                v = cdue if st[2] is True else st[2]
                d = base + (v >> 1 if v & 1 else (v >> 1) * 1000)
                if d <= now_us:
                    due.append((d, _unfrac(st[1]), i, c, st))
                    if state == 0:
                        warned, breached = True, breached or _unfrac(st[1]) >= 1.0
                elif wake is None or d < wake:
                    wake = d
    except (msgspec.DecodeError, ValueError, TypeError, IndexError) as exc:
        raise SlaError(f"stored SLA state is unreadable: {exc}") from None
    standing = (
        "breached" if breached else "warned" if warned else
        "running" if running else "paused" if paused else ""
    )  # fmt: skip
    if not due:
        return None, [], wake, deadline, standing
    if len(due) > 1:
        due.sort(key=lambda x: (x[0], x[1]))
    fired: list[PackedFire] = []
    rel = now_us - base
    fired_rel = (rel // 1000) * 2 if rel % 1000 == 0 else rel * 2 + 1
    for d, at, i, c, st in due:
        late = max(0.0, (now_us - d) / 10**6)
        st[3:] = [fired_rel, _num(late)]
        clock_policy = c[12] if len(c) > 12 and c[12] is not None else policy
        fired.append(PackedFire(TARGETS[i], st[0], at, clock_policy, d, late))
    return _packer.encode(f), fired, wake, deadline, standing
