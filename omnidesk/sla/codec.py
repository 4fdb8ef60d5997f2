"""An `SlaState` as bytes: JSON (`encode_state`), and the compact packed form the store keeps.

`fire_packed` is the sweeper's hot path: it fires due steps on the packed record without
building the structs, as `state_due_steps` + `fire_step` would.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from msgspec.structs import replace

from omnidesk.config import SlaTarget
from omnidesk.sla.clock import TARGETS, Clock, ClockState, Outcome, Pause, Step, _aware
from omnidesk.sla.errors import SlaError
from omnidesk.sla.ticket import ClockMarks, SlaState, standing

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
_STEP_DEFAULTS: tuple[object, ...] = (_REQUIRED, _REQUIRED, None, None, None)


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
    return None if v is None else _at(v, base_us)


def _at(v: int, base_us: int) -> datetime:
    """An instant `_rel` packed (one never left out: a start, a pause's ends)."""
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
        started_at=_at(f[3], base),
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
                started_at=_at(p[1], base),
                ended_at=_at(p[2], base),
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


# a step due to fire: (due, epoch us; fraction; clock position; packed clock; packed step)
_Due = tuple[int, float, int, list[Any], list[Any]]


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
        due: list[_Due] = []
        wake: int | None = None
        deadline: int | None = None
        clock_marks: list[ClockMarks] = []  # as `standing` reads them, after firing
        for i, c in enumerate(clocks):
            if c is None:
                continue
            mark, running_due, step_wake = _scan_clock(i, c, base, now_us, due)
            clock_marks.append(mark)
            deadline = _earliest(deadline, running_due)
            wake = _earliest(wake, step_wake)
    except (msgspec.DecodeError, ValueError, TypeError, IndexError) as exc:
        raise SlaError(f"stored SLA state is unreadable: {exc}") from None
    rank = standing(clock_marks)
    if not due:
        return None, [], wake, deadline, rank
    fired = _fire_due(due, policy, base, now_us)
    return _packer.encode(f), fired, wake, deadline, rank


def _earliest(a: int | None, b: int | None) -> int | None:
    return b if a is None or (b is not None and b < a) else a


def _scan_clock(
    i: int, c: list[Any], base: int, now_us: int, due: list[_Due]
) -> tuple[ClockMarks, int | None, int | None]:
    """One packed clock at position `i`: its marks for `standing` once its due steps fire,
    its deadline while running and its next unfired step after `now_us` (epoch us, or None);
    its steps due by `now_us` go to `due`."""
    cdue, state = c[1], c[6] if len(c) > 6 else 0
    overdue, deadline, wake = False, None, None
    if state == 0 and cdue is not None:  # running
        deadline = _us(cdue, base)
        overdue = deadline <= now_us
    fired: list[float] = []
    for st in c[2]:
        if len(st) > 3 and st[3] is not None:  # fired already
            fired.append(_unfrac(st[1]))
            continue
        if len(st) < 3 or st[2] is None:
            continue  # not armed
        d = _us(cdue if st[2] is True else st[2], base)
        if d <= now_us:
            due.append((d, _unfrac(st[1]), i, c, st))
            fired.append(_unfrac(st[1]))
        elif wake is None or d < wake:
            wake = d
    return (_STATES[state], overdue, fired), deadline, wake


def _fire_due(due: list[_Due], policy: str, base: int, now_us: int) -> list[PackedFire]:
    """Mark the due steps fired in their packed clocks, earliest first; what fired."""
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
    return fired
