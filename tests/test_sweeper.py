"""SLA clocks persisted in the real Redis and the sweeper firing the ladder: deadlines,
pause/resume, transfer, each step once with two sweepers racing, a restart with overdue
steps, events and counters. Time is an injectable clock; nothing sleeps."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from omnidesk.configload import parse_config
from omnidesk.intake import Intake
from omnidesk.model import Author, Channel, Decision, Inbound, Priority, Status, Ticket
from omnidesk.sla.engine import SlaClocks
from omnidesk.sla.records import wake_score
from omnidesk.sla.sweeper import RETRY_S
from omnidesk.sla.ticket import SlaState, earliest_due
from omnidesk.store import Store, ms

RIYADH = ZoneInfo("Asia/Riyadh")
CONFIG = """
calendars:
  back_office: {slots: ["08:00-12:00", "13:00-16:00"]}
  riyadh_branch: {inherits: national, closures: ["2026-01-12"]}
sla_policies:
  complaint:
    first_response: 4h
    next_response: 1h
    resolution: 5d
    ladder:
      - {at: 0.5, targets: [first_response], actions: [{notify: agent}]}
      - at: 0.8
        actions: [{notify: supervisors, via: email}, {raise_priority: 1}, {tag: sla_risk}]
      - {at: 1.0, actions: [{move_to: escalation}, {notify: supervisors, via: telegram}]}
  back_office:
    calendar: back_office
    first_response: 8h
    resolution: 2d
  watched:  # no step on first_response: its deadline passes with nothing firing
    first_response: 1h
    resolution: 5d
    ladder:
      - {at: 0.5, targets: [resolution], actions: [{tag: half_way}]}
queues:
  riyadh: {kind: branch, region: riyadh, calendar: riyadh_branch, sla_policy: complaint}
  backoffice: {kind: backoffice, sla_policy: back_office}
  escalation: {kind: escalation}
  watch: {kind: branch, sla_policy: watched}
default: {queue: riyadh, sla_policy: complaint}
"""


def riyadh(y: int, m: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, m, d, h, mi, tzinfo=RIYADH)


class FakeNow:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def set(self, moment: datetime) -> datetime:
        self.now = moment
        return moment


@pytest.fixture
def store() -> Iterator[Store]:
    s = Store.from_url("redis://127.0.0.1:6379/0", f"test-sweep-{uuid.uuid4().hex[:10]}")
    try:
        s.ping()
    except Exception as exc:  # pragma: no cover - CI starts Redis
        pytest.skip(f"no redis: {exc}")
    yield s
    s.delete_all()
    s.r.close()


@pytest.fixture
def config(tmp_path: Path):  # type: ignore[no-untyped-def]
    return parse_config(CONFIG, tmp_path / "queue_config.yaml").data


@pytest.fixture
def now() -> FakeNow:
    return FakeNow(riyadh(2026, 1, 8, 15))  # a Thursday, one business hour left


class Sink:
    def __init__(self) -> None:
        self.notified: list[dict[str, str]] = []
        self.counted: Counter[tuple[str, str]] = Counter()
        self.lock = threading.Lock()

    def notify(self, event: dict[str, str]) -> None:
        with self.lock:
            self.notified.append(event)

    def count(self, kind: str, queue: str) -> None:
        with self.lock:
            self.counted[(kind, queue)] += 1


def clocks_for(store: Store, config, now: FakeNow, sink: Sink | None = None) -> SlaClocks:  # type: ignore[no-untyped-def]
    sink = sink or Sink()
    return SlaClocks(store, config, clock=now, notify=sink.notify, count=sink.count)


def open_ticket(
    store: Store, clocks: SlaClocks, n: int, queue: str = "riyadh", policy: str | None = None
) -> str:
    inbound = Inbound(
        channel=Channel.WEB,
        account="web",
        external_id=f"m{n}-{uuid.uuid4().hex[:6]}",
        received_at=clocks.clock(),
        author=Author(name=f"Customer {n}"),
        subject="شكوى",
        text=f"complaint number {n}",
    )
    policy = policy or ("complaint" if queue == "riyadh" else "back_office")
    decision = Decision(queue=queue, sla_policy=policy, priority=Priority.NORMAL)
    result = Intake(store, hooks=clocks.intake_hooks())(inbound, decision)
    assert result.ticket_id
    return result.ticket_id


def due_score(clocks: SlaClocks, tid: str, at: datetime | None = None) -> float | None:
    """The ticket's next wakeup (ms) as its stored record says at `at`; None when nothing is
    scheduled. Its bucket's score in the due ZSET must be no later: the sweeper claims
    buckets."""
    state = clocks.state(tid)
    score = wake_score(state, at or clocks.clock())[0] if state is not None else ""
    if not score:
        return None
    store = clocks.store
    bucket_score = store.r.zscore(store.key("sla", "due"), SlaClocks.bucket(tid))
    assert bucket_score is not None and bucket_score <= float(score)
    return float(score)


def events(store: Store, kind: str) -> list[dict[str, str]]:
    return [f for _, f in store.events() if f["type"] == kind]


def test_opening_persists_deadlines_and_schedules_the_first_step(store, config, now) -> None:
    clocks = clocks_for(store, config, now)
    tid = open_ticket(store, clocks, 1)
    state = clocks.state(tid)
    assert state is not None and state.calendar == "riyadh_branch"
    first = state.clocks["first_response"]
    # 1h on Thursday, the weekend, Sunday 8-11: due Sunday 11:00 Riyadh
    assert first.due_at == riyadh(2026, 1, 11, 11)
    # first step (50% = 2h) falls Sunday 09:00
    assert due_score(clocks, tid) == riyadh(2026, 1, 11, 9).timestamp() * 1000
    assert store.r.hget(store.key("ticket", tid), "due_at") == first.due_at.isoformat()
    # the intake hook running again (a retried batch) does not restart the clocks
    again = clocks.on_opened(store.get_ticket(tid), riyadh(2026, 1, 11, 10))  # type: ignore[arg-type]
    assert again is not None and again.clocks["first_response"].due_at == first.due_at


def test_pause_and_resume_through_redis(store, config, now) -> None:
    clocks = clocks_for(store, config, now)
    tid = open_ticket(store, clocks, 1)
    ticket = store.get_ticket(tid)
    assert ticket is not None
    clocks.on_agent_reply(ticket, riyadh(2026, 1, 8, 15, 30))
    state = clocks.on_status(ticket, Status.PENDING_CUSTOMER, riyadh(2026, 1, 8, 15, 30))
    assert state is not None
    assert state.clocks["first_response"].outcome == "met"
    assert state.clocks["resolution"].state == "paused"
    assert due_score(clocks, tid) is None  # nothing can fire while paused
    # the customer answers on Sunday 10:00: 4.5 business days were left
    state = clocks.on_customer_message(ticket, riyadh(2026, 1, 11, 10))
    assert state is not None
    res = state.clocks["resolution"]
    assert res.state == "running" and res.pauses[0].reason == "pending_customer"
    assert res.elapsed == 1800
    assert state.clocks["next_response"].due_at == riyadh(2026, 1, 11, 11)
    assert due_score(clocks, tid) is not None


def test_transfer_keeps_elapsed_time_and_switches_calendar(store, config, now) -> None:
    clocks = clocks_for(store, config, now)
    tid = open_ticket(store, clocks, 1)
    ticket = store.get_ticket(tid)
    assert ticket is not None
    state = clocks.on_transfer(ticket, "backoffice", riyadh(2026, 1, 11, 9))
    assert state is not None
    assert (state.policy, state.calendar) == ("back_office", "back_office")
    first = state.clocks["first_response"]
    assert first.elapsed == 2 * 3600  # Thursday 15-16 and Sunday 8-9
    # 6h left on 08-12/13-16 from Sunday 09:00: 3h to noon, 3h after lunch -> 16:00
    assert first.due_at == riyadh(2026, 1, 11, 16)
    assert "transferred" in first.history[-1]
    stored = clocks.state(tid)
    assert stored == state


def test_ladder_fires_each_step_once_with_actions_events_and_counters(store, config, now) -> None:
    sink = Sink()
    clocks = clocks_for(store, config, now, sink)
    tid = open_ticket(store, clocks, 1)
    assert clocks.sweep(riyadh(2026, 1, 8, 15, 59)) == []
    fired = clocks.sweep(riyadh(2026, 1, 11, 9, 0))
    assert [(f.target, f.at) for f in fired] == [("first_response", 0.5)]
    assert clocks.sweep(riyadh(2026, 1, 11, 9, 0)) == []  # once
    fired = clocks.sweep(riyadh(2026, 1, 11, 11, 0))
    assert [(f.target, f.at) for f in fired] == [("first_response", 0.8), ("first_response", 1.0)]
    ticket = store.get_ticket(tid)
    assert ticket is not None
    assert ticket.priority == Priority.HIGH and "sla_risk" in ticket.tags
    assert ticket.queue == "escalation"
    assert store.r.zscore(store.key("queue", "escalation", "waiting"), tid) is not None
    assert store.r.zscore(store.key("queue", "riyadh", "waiting"), tid) is None
    warned, breached = events(store, "sla_warned"), events(store, "sla_breached")
    assert [e["step"] for e in warned] == ["0.5", "0.8"]
    assert breached[0]["target"] == "first_response" and breached[0]["late"] == "0"
    assert events(store, "escalated")[0]["from"] == "riyadh"
    assert [(n["target"], n["via"]) for n in sink.notified] == [
        ("agent", "log"),
        ("supervisors", "email"),
        ("supervisors", "telegram"),
    ]
    assert sink.counted == {("sla_warned", "riyadh"): 2, ("sla_breached", "escalation"): 1}
    counts = clocks.counts()
    assert counts["breached"] == 1 and counts["warned"] == 2
    # per queue: the ticket moved with its standing, from riyadh (running) to escalation
    assert counts["by_queue"]["escalation"]["breached"] == 1
    assert sum(counts["by_queue"]["riyadh"].values()) == 0
    # the resolution clock keeps its own ladder; nothing more fires for first_response
    later = clocks.sweep(riyadh(2026, 1, 25, 12))
    assert {(f.target, f.at) for f in later} == {("resolution", 0.8), ("resolution", 1.0)}
    assert clocks.sweep(riyadh(2026, 2, 25, 12)) == []
    assert due_score(clocks, tid, riyadh(2026, 2, 25, 12)) is None
    # overdue with nothing left to fire: its bucket out of the due index, it in the overdue one
    assert store.r.zscore(store.key("sla", "due"), clocks.bucket(tid)) is None
    assert store.r.zscore(store.key("sla", "overdue"), tid) is not None
    now.set(riyadh(2026, 2, 25, 11))
    fresh = open_ticket(store, clocks, 2)  # due later: listed after the overdue one
    risk = clocks.at_risk(now=riyadh(2026, 2, 25, 12))
    assert [(r.ticket, r.target) for r in risk[:2]] == [
        (tid, "first_response"),
        (tid, "resolution"),
    ]
    assert risk[0].remaining_seconds < 0 and risk[0].queue == "escalation"
    assert fresh in {r.ticket for r in risk[2:]}


class MeetingSweeper(SlaClocks):
    """A sweeper that, once it holds its first claim of due tickets, waits until the other
    holds one too. Without it, whichever thread reached Redis first (the first sweeper's
    connections are warm from opening the tickets; the second opens its own) could claim
    every due bucket before the other's first claim arrived, and only one took part."""

    def __init__(self, *args, met: threading.Barrier, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.met = met
        self.holding = False  # has held a claim of due tickets

    def _claim(self, now: datetime, limit: int):  # type: ignore[no-untyped-def]
        token, got = super()._claim(now, limit)
        if not self.holding and any(records for _, _, records in got):
            self.holding = True
            self.met.wait(timeout=30)  # both now hold a lease on due tickets of their own
        return token, got


def test_two_sweepers_racing_fire_each_step_exactly_once(store, config, now) -> None:
    sink = Sink()
    met = threading.Barrier(2)
    first = MeetingSweeper(store, config, clock=now, notify=sink.notify, count=sink.count, met=met)
    # ten buckets of clocks, all due together: after both sweepers hold one, eight are left
    # for them to race for
    ids = [open_ticket(store, first, n) for n in range(999)]
    assert len({SlaClocks.bucket(t) for t in ids}) == 10
    other_store = Store.from_url("redis://127.0.0.1:6379/0", store.prefix)
    second = MeetingSweeper(
        other_store, config, clock=now, notify=sink.notify, count=sink.count, met=met
    )
    first.batch = second.batch = 3  # many small claims (a bucket each) interleave
    results: list[list] = [[], []]
    barrier = threading.Barrier(2)

    def run(i: int, clocks: SlaClocks) -> None:
        barrier.wait()
        for moment in (riyadh(2026, 1, 11, 9), riyadh(2026, 1, 11, 12), riyadh(2026, 2, 1, 9)):
            results[i] += clocks.sweep(moment)

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate((first, second))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert first.holding and second.holding and not met.broken  # they met holding claims
    fired = results[0] + results[1]
    keys = Counter((f.ticket, f.target, f.index) for f in fired)
    assert max(keys.values()) == 1
    # each ticket: first_response 0.5/0.8/1.0, resolution 0.8/1.0
    assert len(keys) == 5 * len(ids)
    assert results[0] and results[1]  # both took part
    stream = store.r.xrange(store.key("events"))
    assert sum(f["type"] in ("sla_warned", "sla_breached") for _, f in stream) == len(fired)
    assert all(len(s.clocks["first_response"].steps) == 3 for s in map(first.state, ids) if s)
    other_store.r.close()


def test_a_restart_fires_overdue_steps_late_and_says_how_late(store, config, now) -> None:
    clocks = clocks_for(store, config, now)
    tid = open_ticket(store, clocks, 1)
    # the daemon was down from Thursday to Monday 10:00; a new process comes back
    back = riyadh(2026, 1, 12, 10)
    restarted = SlaClocks(store, config, clock=FakeNow(back))
    fired = restarted.sweep()
    assert [(f.target, f.at) for f in fired] == [
        ("first_response", 0.5),
        ("first_response", 0.8),
        ("first_response", 1.0),
    ]
    assert fired[0].late and fired[0].late_by == (back - riyadh(2026, 1, 11, 9)).total_seconds()
    breach = events(store, "sla_breached")[0]
    assert breach["late"] == "1" and float(breach["late_s"]) == pytest.approx(23 * 3600)
    steps = restarted.state(tid).clocks["first_response"].steps  # type: ignore[union-attr]
    assert all(s.late_by and s.late_by > 0 for s in steps)
    assert restarted.sweep() == []


def test_a_redis_that_lost_its_scripts_gets_the_commit_again(store, config, now) -> None:
    """The pipelined commit (EVALSHA) after a SCRIPT FLUSH, as after a Redis restart: the
    sweep loads the script again and fires, instead of failing until the process restarts."""
    clocks = clocks_for(store, config, now)
    open_ticket(store, clocks, 1)
    first = clocks.sweep(riyadh(2026, 1, 11, 9))
    assert [(f.target, f.at) for f in first] == [("first_response", 0.5)]
    store.r.script_flush()
    rest = clocks.sweep(riyadh(2026, 1, 12, 10))
    assert [(f.target, f.at) for f in rest] == [("first_response", 0.8), ("first_response", 1.0)]


def test_a_crashed_sweepers_lease_runs_out_and_another_fires(store, config, now) -> None:
    clocks = clocks_for(store, config, now)
    tid = open_ticket(store, clocks, 1)
    at = riyadh(2026, 1, 11, 9)
    _token, ids = clocks.claim(at, 10)  # claims, then "crashes" before firing
    assert ids == [tid]
    other = clocks_for(store, config, now)
    assert other.sweep(at + timedelta(seconds=30)) == []  # still leased
    fired = other.sweep(at + timedelta(seconds=61))
    assert [(f.target, f.at) for f in fired] == [("first_response", 0.5)]
    assert other.counts()["held"] == 0  # every lease released


def test_a_transition_during_a_sweep_is_not_lost(store, config, now) -> None:
    clocks = clocks_for(store, config, now)
    tid = open_ticket(store, clocks, 1)
    at = riyadh(2026, 1, 11, 9, 30)
    token, _ = clocks.claim(at, 10)
    ticket = store.get_ticket(tid)
    assert ticket is not None
    clocks.on_agent_reply(ticket, at)  # lands while the sweeper holds the ticket
    fired = clocks._run_bucket(clocks.bucket(tid), token, at)
    # the reply stopped first_response before the step could fire: nothing fires
    assert fired == []
    state = clocks.state(tid)
    assert state is not None and state.clocks["first_response"].outcome == "met"
    assert due_score(clocks, tid) == riyadh(2026, 1, 15, 15).timestamp() * 1000  # resolution 80 %


def test_the_due_time_is_the_standing_records_when_another_transition_lands_right_after(
    store, config, now
) -> None:
    """Another process's transition lands right after this one's compare-and-set. The
    ticket's due time is set in the same script as the record, so it is the one of the record
    that stands; set by a second call after it, this transition's would have come last."""
    clocks = clocks_for(store, config, now)
    other = clocks_for(store, config, now)  # a second process on the same ticket
    tid = open_ticket(store, clocks, 1)
    ticket = store.get_ticket(tid)
    assert ticket is not None
    write = clocks._write
    raced: list[SlaState | None] = []

    def then_the_other(*args: Any) -> int:
        version = write(*args)
        if version >= 0 and not raced:
            raced.append(other.on_transfer(ticket, "backoffice", riyadh(2026, 1, 8, 15, 40)))
        return version

    clocks._write = then_the_other  # type: ignore[method-assign]
    mine = clocks.on_agent_reply(ticket, riyadh(2026, 1, 8, 15, 30))
    standing_state = clocks.state(tid)
    assert mine is not None and raced and raced[0] is not None and standing_state is not None
    assert standing_state.policy == "back_office"  # the transfer came last, over the reply
    due, mine_due = earliest_due(standing_state), earliest_due(mine)
    assert due is not None and mine_due is not None and due != mine_due
    assert store.r.hget(store.key("ticket", tid), "due_at") == due.isoformat()
    # what the records writer copies into PostgreSQL: each move once, the standing one last
    moves = [e["due_at"] for e in events(store, "due_changed")]
    assert moves == [mine_due.isoformat(), due.isoformat()]


def test_at_risk_orders_by_time_left_and_filters_by_queue(store, config, now) -> None:
    clocks = clocks_for(store, config, now)
    a = open_ticket(store, clocks, 1)
    now.set(riyadh(2026, 1, 8, 15, 30))
    b = open_ticket(store, clocks, 2, queue="backoffice")
    risk = clocks.at_risk(now=riyadh(2026, 1, 8, 15, 45))
    assert [(r.ticket, r.target) for r in risk[:2]] == [
        (a, "first_response"),
        (b, "first_response"),
    ]
    assert risk[0].remaining_seconds == pytest.approx(3.25 * 3600)
    only = clocks.at_risk(queue="backoffice", now=riyadh(2026, 1, 8, 15, 45))
    assert {r.ticket for r in only} == {b}


def test_unreadable_state_is_a_typed_error(store, config, now) -> None:
    clocks = clocks_for(store, config, now)
    store.r.hset(*clocks.slot_key("OD-X"), "1||{not msgpack")
    from omnidesk.sla.errors import SlaError

    with pytest.raises(SlaError):
        clocks.state("OD-X")


def test_redis_down_is_store_unavailable(config, now) -> None:
    from omnidesk.errors import StoreUnavailable

    dead = Store(redis.Redis(port=1, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0)), "x")
    with pytest.raises(StoreUnavailable):
        SlaClocks(dead, config, clock=now).sweep()


def test_a_customer_writing_to_a_resolved_ticket_restarts_resolution(store, config, now) -> None:
    clocks = clocks_for(store, config, now)
    tid = open_ticket(store, clocks, 1)
    ticket = store.get_ticket(tid)
    assert ticket is not None
    clocks.on_agent_reply(ticket, riyadh(2026, 1, 8, 15, 30))
    state = clocks.on_status(ticket, Status.RESOLVED, riyadh(2026, 1, 8, 15, 30))
    assert state is not None and state.clocks["resolution"].outcome == "met"
    assert due_score(clocks, tid) is None
    store.set_status(tid, Status.OPEN)  # what intake does when the customer writes back
    reopened = store.get_ticket(tid)
    assert reopened is not None
    state = clocks.on_customer_message(reopened, riyadh(2026, 1, 11, 8))
    assert state is not None
    res = state.clocks["resolution"]
    assert res.state == "running" and res.elapsed == 1800
    assert "next_response" in state.clocks
    assert due_score(clocks, tid) is not None


def test_open_many_starts_clocks_in_bulk_like_on_opened(store, config, now) -> None:
    clocks = clocks_for(store, config, now)
    single = open_ticket(store, clocks, 0)
    tickets = [store.get_ticket(single)]
    for n in range(1, 5):
        ticket = store.get_ticket(open_ticket(store, clocks, n))
        assert ticket is not None
        store.r.hdel(*clocks.slot_key(ticket.id))  # as if never opened
        tickets.append(ticket)
    later = riyadh(2026, 1, 8, 15, 30)
    assert clocks.open_many(tickets, later) == 4  # the first one kept its clocks
    first = clocks.state(single)
    assert first is not None and first.clocks["first_response"].started_at == now()
    for ticket in tickets[1:]:
        state = clocks.state(ticket.id)  # type: ignore[union-attr]
        assert state == clocks.on_opened(ticket, later)  # type: ignore[arg-type]
        assert state is not None and state.clocks["first_response"].started_at == later
        assert due_score(clocks, ticket.id) == riyadh(2026, 1, 11, 9, 30).timestamp() * 1000  # type: ignore[union-attr]
    fired = clocks.sweep(riyadh(2026, 1, 11, 9, 30))
    assert sorted(f.ticket for f in fired) == sorted(t.id for t in tickets)  # type: ignore[union-attr]


def test_per_queue_standings_follow_pause_transfer_and_resolve(store, config, now) -> None:
    """/metrics' omnidesk_sla_clocks{queue,state}: each ticket counted once, where it is."""
    clocks = clocks_for(store, config, now)
    tid = open_ticket(store, clocks, 1)
    other = open_ticket(store, clocks, 2)

    def standings() -> dict[str, dict[str, int]]:
        by_queue = clocks.counts()["by_queue"]
        return {q: {k: n for k, n in s.items() if n} for q, s in by_queue.items()}

    assert standings() == {"riyadh": {"running": 2}}
    ticket = store.get_ticket(tid)
    assert ticket is not None
    clocks.on_status(ticket, Status.PENDING_CUSTOMER, riyadh(2026, 1, 8, 15, 30))
    assert standings() == {"riyadh": {"running": 1, "paused": 1}}
    # an agent's transfer: the store moves the ticket (move.lua carries its count), then
    # the SLA hook switches calendar and policy
    store.move(tid, "backoffice", actor="a1", reason="needs the back office")
    assert standings() == {"riyadh": {"running": 1}, "backoffice": {"paused": 1}}
    clocks.on_transfer(ticket, "backoffice", riyadh(2026, 1, 8, 15, 40))
    assert standings() == {"riyadh": {"running": 1}, "backoffice": {"paused": 1}}
    clocks.on_status(ticket, Status.RESOLVED, riyadh(2026, 1, 8, 15, 50))
    assert standings() == {"riyadh": {"running": 1}, "backoffice": {}}
    assert store.r.hget(store.key("ticket", tid), "sla_n") is None
    # the other ticket's first step fires on Sunday: warned
    clocks.sweep(riyadh(2026, 1, 11, 9))
    assert standings() == {"riyadh": {"warned": 1}, "backoffice": {}}
    assert store.r.hget(store.key("ticket", other), "sla_n") == "riyadh|warned"


def test_a_redelivery_repairs_clocks_from_when_the_ticket_was_stored(store, config) -> None:
    """A worker died between storing a ticket and starting its clocks; the redelivered
    message comes back ten minutes later: the clocks start from when the ticket was stored,
    not from the repair."""
    inbound = Inbound(
        channel=Channel.WEB,
        account="web",
        external_id=f"m-{uuid.uuid4().hex[:6]}",
        received_at=datetime.now(UTC),
        author=Author(name="Customer"),
        text="complaint",
    )
    decision = Decision(queue="riyadh", sla_policy="complaint", priority=Priority.NORMAL)
    tid = Intake(store)(inbound, decision).ticket_id  # no hooks: the crash
    assert tid is not None
    stored = store.get_ticket(tid)
    assert stored is not None
    clocks = SlaClocks(store, config, clock=FakeNow(stored.updated_at + timedelta(minutes=10)))
    again = Intake(store, hooks=clocks.intake_hooks())(inbound, decision)
    assert again.outcome == "duplicate" and again.ticket_id == tid
    state = clocks.state(tid)
    assert state is not None
    assert state.clocks["first_response"].started_at == stored.updated_at
    # a fresh ticket's clocks start at once, as before
    clocks.clock.set(datetime.now(UTC))  # type: ignore[attr-defined]
    fresh = open_ticket(store, clocks, 2)
    started = clocks.state(fresh).clocks["first_response"].started_at  # type: ignore[union-attr]
    assert started == clocks.clock()


def test_a_step_the_config_lost_is_retried_not_dropped(store, config, now) -> None:
    """A ticket the sweeper cannot compute (here: its ladder rung is gone from the config)
    keeps its bucket scheduled, RETRY_S later; once the config is back, its steps fire."""
    clocks = clocks_for(store, config, now)
    tid = open_ticket(store, clocks, 1)
    assert [f.at for f in clocks.sweep(riyadh(2026, 1, 11, 9))] == [0.5]
    complaint = config.sla_policies["complaint"]
    complaint = complaint.model_copy(update={"ladder": complaint.ladder[:1]})
    shorter = config.model_copy(
        update={"sla_policies": {**config.sla_policies, "complaint": complaint}}
    )
    clocks.reload(shorter)
    at = riyadh(2026, 1, 11, 11)
    assert clocks.sweep(at) == []
    due = store.r.zscore(store.key("sla", "due"), clocks.bucket(tid))
    assert due == ms(at) + RETRY_S * 1000
    clocks.reload(config)
    fired = clocks.sweep(at + timedelta(seconds=RETRY_S + 1))
    assert [(f.target, f.at) for f in fired] == [("first_response", 0.8), ("first_response", 1.0)]


def test_a_deadline_passing_with_no_step_is_recorded(store, config, now) -> None:
    """No ladder step on first_response: when its deadline passes, the ticket still turns
    breached in the per-queue counts, joins the overdue index and heads at_risk, and its
    wakeup moves on to the resolution step (it is not claimed again meanwhile)."""
    clocks = clocks_for(store, config, now)
    tid = open_ticket(store, clocks, 1, queue="watch", policy="watched")
    past = riyadh(2026, 1, 11, 9)  # first response was due Thursday 16:00
    assert clocks.sweep(past) == []
    assert clocks.counts()["by_queue"]["watch"]["breached"] == 1
    assert store.r.zscore(store.key("sla", "overdue"), tid) is not None
    risk = clocks.at_risk(now=past)
    assert (risk[0].ticket, risk[0].target) == (tid, "first_response")
    assert risk[0].remaining_seconds < 0
    assert clocks.claim(past, 10)[1] == []
    later = clocks.sweep(riyadh(2026, 1, 15, 12))
    assert [(f.ticket, f.target, f.at) for f in later] == [(tid, "resolution", 0.5)]


def test_a_repair_past_a_deadline_is_overdue_at_once(store, config, now) -> None:
    """A redelivered ticket stored days ago starts its clocks then: already overdue."""
    clocks = clocks_for(store, config, now)
    stored = now() - timedelta(days=7)
    ticket = Ticket(
        id="OD-2026-777701",
        channel=Channel.WEB,
        account="web",
        customer_id="C-1",
        created_at=stored,
        updated_at=stored,
        queue="watch",
        sla_policy="watched",
    )
    assert clocks.open_many([ticket], now()) == 1
    state = clocks.state(ticket.id)
    assert state is not None and state.clocks["first_response"].started_at == stored
    assert store.r.zscore(store.key("sla", "overdue"), ticket.id) is not None
    # its resolution step, due days ago, fires at the next sweep, marked late
    fired = clocks.sweep(now())
    assert [(f.target, f.at) for f in fired] == [("resolution", 0.5)] and fired[0].late


def test_stale_buckets_ahead_do_not_delay_due_ones(store, config, now) -> None:
    """Buckets scored earlier than any of their tickets' wakeups (an agent reply pushed them
    later; intake only ever lowers a bucket's score) sort before the due ones: one sweep
    still goes past them all."""
    clocks = clocks_for(store, config, now)
    opened = now()

    def ticket(n: int, at: datetime) -> Ticket:
        return Ticket(
            id=f"OD-{n:06d}00",  # a bucket each
            channel=Channel.WEB,
            account="web",
            customer_id="C-1",
            created_at=at,
            updated_at=at,
            queue="riyadh",
            sla_policy="complaint",
        )

    stale = [ticket(n, opened) for n in range(250)]
    assert clocks.open_many(stale, opened) == 250
    for t in stale:
        clocks.on_agent_reply(t, opened + timedelta(minutes=1))
    late = ticket(9999, opened + timedelta(minutes=5))
    assert clocks.open_many([late], opened + timedelta(minutes=5)) == 1
    fired = clocks.sweep(riyadh(2026, 1, 11, 12))
    assert {(f.ticket, f.at) for f in fired} == {(late.id, 0.5), (late.id, 0.8), (late.id, 1.0)}


def test_the_dashboards_at_risk_list_is_scoped_before_it_is_cut(
    store, config, now, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """More urgent clocks in a queue the supervisor does not see than the scan looks at
    must not push its own queue's ticket off the list."""
    from omnidesk.reports import dashboard as dashboard_module
    from omnidesk.reports import dashtext
    from omnidesk.reports.dashboard import Dashboard, Viewer

    clocks = clocks_for(store, config, now)
    others = [open_ticket(store, clocks, n) for n in range(3)]  # riyadh: the most urgent
    now.set(riyadh(2026, 1, 8, 15, 30))
    mine = open_ticket(store, clocks, 9, queue="backoffice")
    assert {r.ticket for r in clocks.at_risk(queue={"backoffice"}, limit=1)} == {mine}
    monkeypatch.setattr(dashboard_module, "RISK_SCAN", 2)
    dashboard = Dashboard(store, config, sla=clocks)
    now.set(riyadh(2026, 1, 11, 15, 45))  # riyadh long overdue; backoffice under an hour left
    snap = dashboard.snapshot(Viewer("sup", ("backoffice",)), dashtext.lang_translator("en"))
    assert [t["ticket"] for t in snap["tickets"]] == [mine]
    assert not set(others) & {t["ticket"] for t in snap["tickets"]}
