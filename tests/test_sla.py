"""SLA clocks driven by an injectable clock (no sleeping): pause, transfer, reopen,
next response, and the ladder firing each step once, late steps saying how late."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from omnidesk.calendar import build_calendars
from omnidesk.config import CalendarConfig, SlaPolicyConfig
from omnidesk.configload import parse_config
from omnidesk.model import Status
from omnidesk.sla import clock as sla_clock
from omnidesk.sla import codec, queries
from omnidesk.sla import ticket as sla_ticket
from omnidesk.sla.errors import SlaError
from omnidesk.sla.policy import SlaContext
from omnidesk.sla.ticket import (
    SlaState,
    agent_replied,
    customer_wrote,
    fire_step,
    open_state,
    reopen_ticket,
    state_due_steps,
    state_next_wakeup,
    status_changed,
    transfer_ticket,
)

RIYADH = ZoneInfo("Asia/Riyadh")
H = 3600


def riyadh(y: int, m: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, m, d, h, mi, tzinfo=RIYADH)


class FakeNow:
    """The injectable clock: tests move time by hand."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


LADDER = [
    {"at": 0.5, "actions": [{"notify": "agent"}]},
    {"at": 0.8, "actions": [{"notify": "supervisors"}, {"raise_priority": 1}]},
    {"at": 1.0, "actions": [{"move_to": "escalation"}]},
]


def policy(**kwargs: object) -> SlaPolicyConfig:
    return SlaPolicyConfig.model_validate({"ladder": LADDER, **kwargs})


CALENDARS = build_calendars(
    {
        "riyadh_branch": CalendarConfig.model_validate(
            {"inherits": "national", "closures": ["2026-01-12"]}
        ),
        "back_office": CalendarConfig.model_validate({"slots": ["08:00-12:00", "13:00-16:00"]}),
    }
)
CTX = SlaContext(
    CALENDARS,
    {
        "complaint": policy(first_response="4h", next_response="1h", resolution="5d"),
        "branch": policy(first_response="8h", resolution="5d", calendar="riyadh_branch"),
        "back_office": policy(resolution="2d", calendar="back_office"),
        "short": policy(resolution="2h"),
    },
)
NATIONAL = CALENDARS["national"]


def test_a_new_ticket_starts_first_response_and_resolution() -> None:
    state = open_state(CTX, "T1", "complaint", "national", riyadh(2026, 1, 8, 15))  # Thu
    assert set(state.clocks) == {"first_response", "resolution"}
    first = state.clocks["first_response"]
    assert first.due_at == riyadh(2026, 1, 11, 11)  # 1h Thursday, 3h Sunday
    assert [s.due_at for s in first.steps] == [
        riyadh(2026, 1, 11, 9),
        riyadh(2026, 1, 11, 10, 12),
        riyadh(2026, 1, 11, 11),
    ]
    assert state.clocks["resolution"].due_at == riyadh(2026, 1, 15, 15)  # 5 x 8h later
    summary = {s.target: s for s in queries.summarize(state, CTX, riyadh(2026, 1, 11, 10))}
    assert summary["first_response"].remaining_seconds == H
    assert not summary["first_response"].breached
    lines = queries.explain_clock(first, CTX)
    assert any("Fri 2026-01-09: skipped, weekend" in line for line in lines)


def test_pause_and_resume_keep_the_remaining_time_and_record_the_pause() -> None:
    now = FakeNow(riyadh(2026, 1, 11, 9))  # Sunday
    state = open_state(CTX, "T2", "complaint", "national", now())
    assert state.clocks["first_response"].due_at == riyadh(2026, 1, 11, 13)
    state = status_changed(state, CTX, now.advance(hours=1), Status.PENDING_CUSTOMER)
    first = state.clocks["first_response"]
    assert first.state == "paused" and first.pause_reason == "pending_customer"
    assert first.due_at is None and first.elapsed == H
    # paused: nothing falls due however long the customer takes
    assert state_due_steps(state, riyadh(2026, 1, 20, 9)) == []
    state = customer_wrote(state, CTX, now.advance(hours=24))  # Monday 10:00
    first = state.clocks["first_response"]
    assert first.state == "running"
    assert first.due_at == riyadh(2026, 1, 12, 13)  # the 3h that were left
    assert first.steps[0].due_at == riyadh(2026, 1, 12, 11)
    [pause] = first.pauses
    assert pause.reason == "pending_customer"
    assert pause.seconds == 24 * H
    assert pause.business_seconds == 8 * H
    assert "next_response" not in state.clocks  # not answered yet: first response still times


def test_a_step_due_before_a_pause_still_fires_late() -> None:
    state = open_state(CTX, "T3", "complaint", "national", riyadh(2026, 1, 11, 9))
    state = status_changed(state, CTX, riyadh(2026, 1, 11, 12), Status.PENDING_CUSTOMER)
    [(target, step)] = state_due_steps(state, riyadh(2026, 1, 11, 12, 30))
    assert (target, step.at, step.due_at) == ("first_response", 0.5, riyadh(2026, 1, 11, 11))
    state = fire_step(state, target, step.index, riyadh(2026, 1, 11, 12, 30))
    assert state.clocks["first_response"].steps[0].late_by == 1.5 * H


def test_stop_is_met_before_the_due_time_and_breached_after() -> None:
    state = open_state(CTX, "T4", "complaint", "national", riyadh(2026, 1, 11, 9))
    met = agent_replied(state, CTX, riyadh(2026, 1, 11, 12, 59))
    assert met.clocks["first_response"].outcome == "met"
    assert met.clocks["resolution"].state == "running"
    late = agent_replied(state, CTX, riyadh(2026, 1, 11, 17))  # office closed at 16:00
    assert late.clocks["first_response"].outcome == "breached"
    assert state_due_steps(met, riyadh(2026, 1, 11, 14)) == []
    summary = {s.target: s for s in queries.summarize(late, CTX, riyadh(2026, 1, 11, 17))}
    assert summary["first_response"].breached and not summary["first_response"].met
    # stopping twice changes nothing
    again = agent_replied(met, CTX, riyadh(2026, 1, 12, 9))
    assert again.clocks["first_response"] == met.clocks["first_response"]


def test_transfer_between_branch_and_back_office_keeps_elapsed_time() -> None:
    now = FakeNow(riyadh(2026, 1, 11, 9))  # Sunday; the branch is closed on Monday the 12th
    state = open_state(CTX, "T5", "branch", "national", now())
    assert state.calendar == "riyadh_branch"  # the policy's calendar wins
    assert state.clocks["first_response"].due_at == riyadh(2026, 1, 13, 9)  # skips the closure
    state = transfer_ticket(state, CTX, now.advance(hours=4), "back_office", "national")
    resolution = state.clocks["resolution"]
    assert (resolution.calendar, resolution.policy) == ("back_office", "back_office")
    assert resolution.elapsed == 4 * H
    assert resolution.target_seconds == 14 * H  # 2d of a 7h back-office day
    # 10h left from Sunday 13:00: 3h Sunday afternoon, 7h Monday (open in the back office)
    assert resolution.due_at == riyadh(2026, 1, 12, 16)
    assert state.clocks["first_response"].outcome == "cancelled"  # back office has none
    assert any("transferred from branch/riyadh_branch" in h for h in resolution.history)
    assert any("SLA moved from branch (riyadh_branch) to back_office" in h for h in state.history)
    # and back: 4h branch + 2h back office (13:00-15:00 Sunday) elapsed
    state = transfer_ticket(state, CTX, now.advance(hours=2), "branch", "national")
    resolution = state.clocks["resolution"]
    assert resolution.elapsed == 6 * H
    assert resolution.target_seconds == 40 * H
    # 34h from Sunday 15:00 in the branch: 1h Sunday, Monday closed, Tue-Thu 24h, 9h next week
    assert resolution.due_at == riyadh(2026, 1, 19, 9)


def test_transfer_to_a_shorter_target_fires_passed_steps_at_once() -> None:
    state = open_state(CTX, "T6", "complaint", "national", riyadh(2026, 1, 11, 8))
    moved = transfer_ticket(state, CTX, riyadh(2026, 1, 11, 11), "short", "national")
    due = state_due_steps(moved, riyadh(2026, 1, 11, 11))
    assert [(t, s.at) for t, s in due] == [
        ("resolution", 0.5),
        ("resolution", 0.8),
        ("resolution", 1.0),
    ]


def test_reopen_restarts_resolution_with_what_was_left() -> None:
    state = open_state(CTX, "T7", "short", "national", riyadh(2026, 1, 11, 9))
    state = status_changed(state, CTX, riyadh(2026, 1, 11, 10), Status.RESOLVED)
    resolution = state.clocks["resolution"]
    assert (resolution.state, resolution.outcome, resolution.elapsed) == ("stopped", "met", H)
    state = reopen_ticket(state, CTX, riyadh(2026, 1, 12, 9))
    resolution = state.clocks["resolution"]
    assert resolution.state == "running" and resolution.outcome is None
    assert resolution.due_at == riyadh(2026, 1, 12, 10)
    assert any("reopened with 1h00m left" in h for h in resolution.history)


def test_next_response_restarts_on_each_customer_message_after_a_reply() -> None:
    now = FakeNow(riyadh(2026, 1, 11, 9))
    state = open_state(CTX, "T8", "complaint", "national", now())
    state = agent_replied(state, CTX, now.advance(hours=1))
    state = customer_wrote(state, CTX, now.advance(hours=1))  # 11:00
    assert state.clocks["next_response"].due_at == riyadh(2026, 1, 11, 12)
    state = customer_wrote(state, CTX, now.advance(minutes=30))  # oldest unanswered counts
    assert state.clocks["next_response"].due_at == riyadh(2026, 1, 11, 12)
    state = agent_replied(state, CTX, now.advance(minutes=15))
    assert state.clocks["next_response"].outcome == "met"
    state = customer_wrote(state, CTX, riyadh(2026, 1, 11, 15, 30))
    nxt = state.clocks["next_response"]
    assert nxt.state == "running" and nxt.due_at == riyadh(2026, 1, 12, 8, 30)
    assert any("next_response restarted (previous: met)" in h for h in state.history)


def test_ladder_steps_fire_once_each_as_time_passes() -> None:
    now = FakeNow(riyadh(2026, 1, 11, 8))
    state = open_state(CTX, "T9", "complaint", "national", now())
    fired: list[tuple[str, float, float]] = []
    while now() < riyadh(2026, 1, 11, 13):
        for target, step in state_due_steps(state, now()):
            state = fire_step(state, target, step.index, now())
            fired.append((target, step.at, state.clocks[target].steps[step.index].late_by))
        assert state_due_steps(state, now()) == []
        wake = state_next_wakeup(state)
        assert wake is None or wake > now()
        now.advance(minutes=7)
    assert [(t, at) for t, at, _ in fired] == [
        ("first_response", 0.5),
        ("first_response", 0.8),
        ("first_response", 1.0),
    ]
    assert all(0 <= late < 7 * 60 for _, _, late in fired)
    assert state_next_wakeup(state) == riyadh(2026, 1, 13, 12)  # resolution's 50 %


def test_steps_overdue_after_downtime_fire_once_marked_late() -> None:
    state = open_state(CTX, "T10", "complaint", "national", riyadh(2026, 1, 11, 8))
    back = riyadh(2026, 1, 11, 15)  # the daemon was down from 09:00 to 15:00
    due = state_due_steps(state, back)
    assert [s.at for _, s in due] == [0.5, 0.8, 1.0]
    for target, step in due:
        state = fire_step(state, target, step.index, back)
        state = fire_step(state, target, step.index, back + timedelta(minutes=1))  # no-op
    steps = state.clocks["first_response"].steps
    assert [s.late_by for s in steps] == [5 * H, 3 * H + 48 * 60, 3 * H]
    assert all(s.fired_at == back for s in steps)
    assert state_due_steps(state, back + timedelta(days=1)) == []


def test_state_round_trips_through_json() -> None:
    state = open_state(CTX, "T11", "complaint", "national", riyadh(2026, 1, 11, 9))
    state = status_changed(state, CTX, riyadh(2026, 1, 11, 10), Status.PENDING_CUSTOMER)
    state = status_changed(state, CTX, riyadh(2026, 1, 11, 11), Status.OPEN)
    state = fire_step(state, "first_response", 0, riyadh(2026, 1, 11, 12))
    raw = codec.encode_state(state)
    assert codec.decode_state(raw) == state
    assert len(raw) < 2000
    with pytest.raises(SlaError, match="unreadable"):
        codec.decode_state(b'{"ticket": 5}')


def test_bad_input_is_a_typed_error() -> None:
    with pytest.raises(SlaError, match="naive"):
        open_state(CTX, "T12", "complaint", "national", datetime(2026, 1, 11, 9))
    with pytest.raises(SlaError, match="does not exist"):
        open_state(CTX, "T12", "nope", "national", datetime(2026, 1, 11, 9, tzinfo=UTC))


def test_context_from_a_loaded_config(tmp_path: Path) -> None:
    text = """
calendars:
  jeddah_branch: {inherits: national, closures: [2026-01-12]}
sla_policies:
  investor: {first_response: 2h, resolution: 3d}
queues:
  jeddah: {kind: branch, calendar: jeddah_branch, sla_policy: investor}
default: {queue: jeddah}
"""
    loaded = parse_config(text, tmp_path / "queue_config.yaml")
    ctx = SlaContext.from_config(loaded.data)
    assert set(ctx.calendars) == {"national", "jeddah_branch"}
    state = open_state(ctx, "T13", "investor", "jeddah_branch", riyadh(2026, 1, 11, 15))
    assert state.clocks["first_response"].due_at == riyadh(2026, 1, 13, 9)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(min_value=60, max_value=3 * 24 * H), min_size=1, max_size=8))
def test_pauses_account_for_every_business_second(gaps: list[int]) -> None:
    """Run and pause alternately: banked time + paused business time == the whole span."""
    now = FakeNow(riyadh(2026, 1, 11, 9))
    began = now()
    clock = sla_clock.start("resolution", "complaint", CTX.policy("complaint"), NATIONAL, began)
    assert clock is not None
    for i, gap in enumerate(gaps):
        now.advance(seconds=gap)
        if i % 2 == 0:
            clock = sla_clock.pause(clock, NATIONAL, now(), "pending_customer")
        else:
            clock = sla_clock.resume(clock, NATIONAL, now())
    clock = sla_clock.stop(clock, NATIONAL, now.advance(seconds=1))
    paused = sum(p.business_seconds for p in clock.pauses)
    whole = NATIONAL.business_time_between(began, now())
    assert abs(clock.elapsed + paused - whole) < 1e-3
    assert len(clock.pauses) == (len(gaps) + 1) // 2


def _histories() -> list[SlaState]:
    """States with pauses, transfers, reopenings, fired steps and odd microseconds."""
    opened = riyadh(2026, 1, 11, 9) + timedelta(microseconds=123_457)
    fresh = open_state(CTX, "OD-2026-000123", "complaint", "national", opened)
    paused = status_changed(fresh, CTX, riyadh(2026, 1, 11, 10), Status.PENDING_CUSTOMER)
    resumed = status_changed(paused, CTX, riyadh(2026, 1, 11, 11, 7), Status.OPEN)
    fired = fire_step(resumed, "first_response", 0, riyadh(2026, 1, 11, 12))
    moved = transfer_ticket(fired, CTX, riyadh(2026, 1, 12, 9), "complaint", "national")
    replied = customer_wrote(agent_replied(moved, CTX, riyadh(2026, 1, 12, 10)), CTX,
                                 riyadh(2026, 1, 12, 11))  # fmt: skip
    resolved = status_changed(replied, CTX, riyadh(2026, 1, 12, 12), Status.RESOLVED)
    reopened = reopen_ticket(resolved, CTX, riyadh(2026, 1, 13, 10))
    # times equal to the base instant (offset 0) where a default would be None
    at_once = riyadh(2026, 1, 11, 9)
    short = open_state(CTX, "T2", "branch", "national", at_once)
    closed = status_changed(short, CTX, at_once, Status.RESOLVED)
    held = status_changed(short, CTX, at_once, Status.PENDING_CUSTOMER)
    return [fresh, paused, resumed, fired, moved, replied, resolved, reopened, closed, held]


def test_packed_state_round_trips_exactly_and_is_small() -> None:
    states = _histories()
    for state in states:
        raw = codec.pack_state(state)
        assert codec.unpack_state(raw, state.ticket) == state
    assert len(codec.pack_state(states[0])) < 100 < len(codec.encode_state(states[0])) // 8
    with pytest.raises(SlaError, match="unreadable"):
        codec.unpack_state(b"{not msgpack", "T")


@pytest.mark.parametrize("days", [0, 1, 2, 4, 9, 30])
def test_firing_on_the_packed_record_is_fire_step(days: int) -> None:
    """The sweeper's hot path must be the pure transition, byte for byte."""
    for state in _histories():
        now = riyadh(2026, 1, 11, 13) + timedelta(days=days, microseconds=77)
        expected = state
        for target, step in state_due_steps(state, now):
            expected = fire_step(expected, target, step.index, now)
        new, fired, wake, deadline, standing = codec.fire_packed(codec.pack_state(state), now)
        pairs = [(t, s.index) for t, s in state_due_steps(state, now)]
        assert [(f.target, f.index) for f in fired] == pairs
        if pairs:
            assert new == codec.pack_state(expected)
        else:
            assert new is None
        nxt = state_next_wakeup(expected)
        assert wake == (None if nxt is None else codec.epoch_us(nxt))
        running = [c.due_at for c in expected.clocks.values() if c.state == "running" and c.due_at]
        assert deadline == (codec.epoch_us(min(running)) if running else None)
        assert standing == sla_ticket.standing(sla_ticket.marks(expected, now))
