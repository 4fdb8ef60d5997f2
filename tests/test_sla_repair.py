"""Hooks are part of the intake: a transient SLA hook error fails the batch, and the retried
batch gives the tickets their clocks; a permanent one is one ticket's, counted, and the rest
of the batch goes on; the repair sweep finds open tickets whose clocks a hook
missed (no clocks, or a follow-up not timed) and repairs them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from datetime import datetime, timedelta

import pytest

from omnidesk.errors import StoreUnavailable
from omnidesk.intake import IntakeHooks
from omnidesk.model import Ticket, utcnow
from omnidesk.runtime import Runtime
from omnidesk.sla.engine import SlaClocks
from omnidesk.sla.repair import GRACE, repair, run_repair
from tests.storekit import telegram, web


def _clocks(runtime: Runtime) -> SlaClocks:
    """The test config's clocks, its standard policy also timing next responses."""
    assert runtime.config is not None
    data = runtime.config.data
    policies = dict(data.sla_policies)
    policies["standard"] = policies["standard"].model_copy(update={"next_response": "2h"})
    return SlaClocks(runtime.store, data.model_copy(update={"sla_policies": policies}))


def test_a_failing_hook_fails_the_batch_and_the_retry_starts_the_clocks(
    runtime: Runtime,
) -> None:
    clocks = _clocks(runtime)
    hooks = clocks.intake_hooks()
    real = hooks.on_opened_many
    assert real is not None
    calls: list[int] = []

    def blip_once(tickets: list[Ticket], opened_at: Mapping[str, datetime]) -> None:
        calls.append(len(tickets))
        if len(calls) == 1:
            raise StoreUnavailable("redis unavailable: a blip between intake and its hook")
        real(tickets, opened_at)

    hooks.on_opened_many = blip_once
    runtime.intake.hooks = hooks
    batch = [web(f"question {i}", email=f"h{i}@example.sa") for i in range(3)]
    with pytest.raises(StoreUnavailable):
        runtime.process(batch)  # not acked: dramatiq runs it again
    again = runtime.process(batch)
    assert again.outcomes == {"duplicate": 3}
    tickets = runtime.store.list_tickets()
    assert len(tickets) == 3 and all(clocks.summary(t.id) for t in tickets)


def test_the_repair_sweep_starts_missing_clocks_and_times_missed_follow_ups(
    runtime: Runtime,
) -> None:
    clocks = _clocks(runtime)
    store = runtime.store
    # intake without hooks, as when a process died between the script and its hooks
    opened = runtime.process([web("no clocks", email="a@example.sa"), telegram(1, 42, 1, "hi")])
    no_clocks, chat = (r.ticket_id for r in opened.results)
    assert no_clocks and chat and not clocks.summary(no_clocks)
    ticket = store.get_ticket(chat)
    assert ticket is not None
    clocks.on_opened(ticket)
    # first response met, a second before the follow-up (message ids keep only the ms)
    clocks.on_agent_reply(ticket, utcnow() - timedelta(seconds=1))
    follow_up = runtime.process([telegram(2, 42, 2, "still waiting")])
    assert [r.outcome for r in follow_up.results] == ["appended"]
    state = clocks.state(chat)
    assert state is not None and "next_response" not in state.clocks  # the hook missed it

    assert repair(clocks) == 0  # within the grace: hooks may still be running
    later = utcnow() + GRACE + timedelta(seconds=5)
    assert repair(clocks, later) == 2
    assert clocks.summary(no_clocks)
    state = clocks.state(chat)
    assert state is not None and state.clocks["next_response"].state == "running"
    assert repair(clocks, later + timedelta(seconds=1)) == 0  # nothing left to repair


def _opened_then_followed_up(
    runtime: Runtime, chat_id: int, clocks: SlaClocks | None
) -> tuple[str, datetime, datetime]:
    """A chat ticket whose clocks' hook never ran, then a follow-up 50 ms later (no hooks
    either): its id, and its `updated_at` after each. With `clocks`,
    intake stored the ticket's first due time (`first_dues` runs before the script, as in
    the daemon); without, it had no policy to take one from."""
    runtime.intake.hooks = IntakeHooks(first_dues=clocks.first_dues if clocks else None)
    first = runtime.process([telegram(1, chat_id, 1, "hello")])
    tid = first.results[0].ticket_id
    assert tid is not None
    opened = runtime.store.get_ticket(tid)
    assert opened is not None
    time.sleep(0.05)
    follow_up = runtime.process([telegram(2, chat_id, 2, "anyone there?")])
    assert [r.outcome for r in follow_up.results] == ["appended"]
    ticket = runtime.store.get_ticket(tid)
    assert ticket is not None and ticket.updated_at >= opened.updated_at + timedelta(seconds=0.05)
    return tid, opened.updated_at, ticket.updated_at


def test_missed_clocks_start_when_intake_opened_the_ticket_not_at_a_later_follow_up(
    runtime: Runtime,
) -> None:
    """The follow-up moved `updated_at`; the repair still times the first response from the
    opening, as the missed hook would have (starting it later would push its due time out)."""
    clocks = _clocks(runtime)
    tid, opened_stamp, _ = _opened_then_followed_up(runtime, 44, clocks)
    opened = runtime.store.opened_at([tid])[tid]
    assert abs(opened - opened_stamp) < timedelta(milliseconds=1)
    assert repair(clocks, utcnow() + GRACE + timedelta(seconds=5)) == 1
    state = clocks.state(tid)
    assert state is not None and state.clocks["first_response"].started_at == opened


def test_a_follow_up_hook_finding_no_clocks_starts_them_at_the_opening(runtime: Runtime) -> None:
    clocks = _clocks(runtime)
    tid, _, _ = _opened_then_followed_up(runtime, 45, clocks)
    opened = runtime.store.opened_at([tid])[tid]
    ticket = runtime.store.get_ticket(tid)
    assert ticket is not None
    clocks.on_customer_message(ticket)  # the follow-up's hook, finding no clocks
    state = clocks.state(tid)
    assert state is not None and state.clocks["first_response"].started_at == opened


def test_a_redelivered_batch_starts_missed_clocks_when_intake_opened_the_ticket(
    runtime: Runtime,
) -> None:
    """The process died after the script, before the hooks; a follow-up came in (its hooks
    lost too) and moved `updated_at`; then the batch came back: its duplicate starts the
    clocks from the opening, and the first due time intake stored stays where it was."""
    clocks = _clocks(runtime)
    tid, opened_stamp, followed_stamp = _opened_then_followed_up(runtime, 47, clocks)
    stored_due = runtime.store.r.hget(runtime.store.key("ticket", tid), "due_at")
    assert stored_due
    runtime.intake.hooks = clocks.intake_hooks()
    again = runtime.process([telegram(1, 47, 1, "hello")])  # the first batch, redelivered
    assert [(r.outcome, r.ticket_id) for r in again.results] == [("duplicate", tid)]
    state = clocks.state(tid)
    assert state is not None
    started = state.clocks["first_response"].started_at
    assert abs(started - opened_stamp) < timedelta(milliseconds=1), (started, followed_stamp)
    due = datetime.fromisoformat(runtime.store.r.hget(runtime.store.key("ticket", tid), "due_at"))
    # `opened_ms` keeps the ms only: the due time may move by under 1 ms, not by the 50 ms
    assert abs(due - datetime.fromisoformat(stored_due)) < timedelta(milliseconds=1)


def test_a_ticket_opened_with_no_policy_owes_no_time_from_its_opening(runtime: Runtime) -> None:
    """No first due time on the hash: intake had no policy for it (one came later, by a
    transfer or a reload). Its clocks start when they are found missing, from `updated_at`,
    not at the opening: they would be breached at once for time nobody promised."""
    clocks = _clocks(runtime)
    tid, _, followed_up = _opened_then_followed_up(runtime, 46, None)
    assert runtime.store.opened_at([tid]) == {}
    assert repair(clocks, utcnow() + GRACE + timedelta(seconds=5)) == 1
    state = clocks.state(tid)
    assert state is not None and state.clocks["first_response"].started_at == followed_up


def _hook_failures(runtime: Runtime) -> int:
    return int(runtime.store.counts()["stats"].get("hook_failed", 0))


def test_an_unreadable_sla_record_fails_only_its_ticket_not_the_batch(runtime: Runtime) -> None:
    clocks = _clocks(runtime)
    runtime.intake.hooks = clocks.intake_hooks()
    (chat,) = (r.ticket_id for r in runtime.process([telegram(1, 42, 1, "hi")]).results)
    assert chat and clocks.summary(chat)
    clocks.rb.hset(*clocks.slot_key(chat), b"garbage")  # no version: unreadable for good
    # the follow-up's hook cannot read the record; the batch goes through all the same
    report = runtime.process([telegram(2, 42, 2, "still there"), web("new", email="n@x.sa")])
    assert [r.outcome for r in report.results] == ["appended", "opened"]
    assert clocks.summary(str(report.results[1].ticket_id))  # the other ticket got its clocks
    assert _hook_failures(runtime) == 1  # counted, for /metrics


def test_a_redis_error_that_would_only_recur_stays_with_its_ticket(runtime: Runtime) -> None:
    """WRONGTYPE is the store's answer about one ticket's key, not an outage: retrying the
    batch would fail the same way for hours, so it is counted like any permanent error."""
    clocks = _clocks(runtime)
    runtime.intake.hooks = clocks.intake_hooks()
    (chat,) = (r.ticket_id for r in runtime.process([telegram(1, 43, 1, "hi")]).results)
    slot_key, _ = clocks.slot_key(str(chat))
    clocks.rb.delete(slot_key)
    clocks.rb.set(slot_key, b"not a hash")  # every HGET on it: WRONGTYPE
    report = runtime.process([telegram(2, 43, 2, "still there")])
    assert [r.outcome for r in report.results] == ["appended"]
    assert _hook_failures(runtime) == 1


def test_a_redelivery_with_a_removed_policy_still_starts_the_others_clocks(
    runtime: Runtime,
) -> None:
    clocks = _clocks(runtime)
    first, second = web("first", email="f@x.sa"), web("second", email="s@x.sa")
    runtime.intake.hooks = clocks.intake_hooks()
    (old,) = (r.ticket_id for r in runtime.process([first]).results)
    runtime.intake.hooks = IntakeHooks()  # the second one's hooks never ran (a crash)
    (bare,) = (r.ticket_id for r in runtime.process([second]).results)
    assert old and bare and not clocks.summary(bare)
    runtime.store.r.hset(runtime.store.key("ticket", old), "sla_policy", "retired")
    runtime.intake.hooks = clocks.intake_hooks()
    again = runtime.process([first, second])  # redelivered: both duplicates, to open_many
    assert again.outcomes == {"duplicate": 2}
    assert clocks.summary(bare)  # the policy gone from one ticket stopped no other
    assert _hook_failures(runtime) == 1


def test_a_ticket_the_repair_cannot_fix_is_counted_and_the_pass_goes_on(
    runtime: Runtime,
) -> None:
    clocks = _clocks(runtime)
    store = runtime.store
    # intake without hooks: none of these has clocks
    opened = runtime.process([web(f"no clocks {i}", email=f"r{i}@x.sa") for i in range(4)])
    garbled, retired, *fine = (str(r.ticket_id) for r in opened.results)
    clocks.rb.hset(*clocks.slot_key(garbled), b"garbage")  # an unreadable SLA record
    store.r.hset(store.key("ticket", retired), "sla_policy", "retired")  # a reload removed it
    later = utcnow() + GRACE + timedelta(seconds=5)
    assert repair(clocks, later) == 2  # the two others get their clocks all the same
    assert all(clocks.summary(t) for t in fine)
    assert int(store.counts()["stats"]["sla_repair_failed"]) == 2
    assert repair(clocks, later) == 0  # and the next pass fails the same two, no more
    assert int(store.counts()["stats"]["sla_repair_failed"]) == 4


async def test_the_repair_loop_survives_an_error_that_is_no_omnidesk_error(
    runtime: Runtime,
) -> None:
    clocks = _clocks(runtime)
    service = clocks.config.service.model_copy(update={"sla_repair_interval_s": 0.05})
    clocks.config = clocks.config.model_copy(update={"service": service})
    store = runtime.store
    index = store.key("status", "new")
    (ticket,) = (str(r.ticket_id) for r in runtime.process([web("q", email="l@x.sa")]).results)
    store.r.hset(store.key("ticket", ticket), "updated_at", "2026-01-01T00:00:00+00:00")
    members = store.r.zrange(index, 0, -1, withscores=True)
    store.r.delete(index)
    store.r.set(index, "not a sorted set")  # WRONGTYPE: a redis ResponseError, every pass
    stop = asyncio.Event()
    loop = asyncio.create_task(run_repair(clocks, stop))
    try:
        for _ in range(3):  # a few failed passes
            await asyncio.sleep(0.1)
        assert not loop.done()
        store.r.delete(index)
        store.r.zadd(index, dict(members))
        for _ in range(200):  # bounded: the loop is still there and repairs it
            if clocks.summary(ticket):
                break
            await asyncio.sleep(0.05)
        assert clocks.summary(ticket)
    finally:
        stop.set()
        await loop


def test_first_response_dues_read_each_shared_record_once_and_leave_out_stopped_clocks(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The receipts' due times: tickets opened together share one packed record, decoded
    once; a ticket whose first response was given, or that has no clocks, has none."""
    clocks = _clocks(runtime)
    runtime.intake.hooks = clocks.intake_hooks()
    opened = runtime.process([web(f"due {i}", email=f"d{i}@example.sa") for i in range(3)])
    answered, *waiting = (str(r.ticket_id) for r in opened.results)
    ticket = runtime.store.get_ticket(answered)
    assert ticket is not None
    clocks.on_agent_reply(ticket)
    decoded: list[str] = []
    real = clocks._decode
    monkeypatch.setattr(
        clocks, "_decode", lambda tid, raw: (decoded.append(tid), real(tid, raw))[1]
    )
    dues = clocks.first_response_dues([answered, *waiting, "OD-2026-999999"])
    assert sorted(dues) == sorted(waiting)
    assert len(decoded) == 2  # the answered ticket's record, and the one the others share
    for tid in waiting:
        state = clocks.state(tid)
        assert state is not None and dues[tid] == state.clocks["first_response"].due_at
