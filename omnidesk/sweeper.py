"""SLA clocks kept in Redis, and the sweeper that fires their escalation ladders.

The clocks themselves are pure (`omnidesk.sla`); this module persists them and runs them.
With the store prefix ``P``:

    P:sla:<ticket>   hash  s: the ticket's SlaState (msgspec JSON), v: its version (CAS)
    P:sla:due        zset  ticket -> ms of its next unfired ladder step (the sweeper's agenda);
                           while a sweeper holds a ticket, the score is its lease expiry
    P:sla:owner      hash  ticket -> token of the sweeper holding it right now
    P:sla:open       zset  ticket -> ms of its earliest running deadline (`at_risk` reads it)

Every write is a compare-and-set on ``v`` (omnidesk/lua/sla_*.lua), so an intake transition
and a sweeper never overwrite each other: the loser re-reads and re-applies. A step is marked
fired in the same script that changes the ticket and writes its event, and only by the
holder of the lease on the version it read: each step fires once per clock, across sweepers
and restarts. A step that fell due while no sweeper ran fires when one comes back, and its
event says how late (``late_s``).

Hooks the rest of the daemon calls (each loads, applies the pure transition, writes back):
`on_opened`, `on_customer_message`, `on_agent_reply`, `on_status`, `on_transfer`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import msgspec

from omnidesk import sla
from omnidesk.config import Action, QueueConfigFile
from omnidesk.errors import OmnideskError
from omnidesk.intake import IntakeHooks
from omnidesk.model import Status, Ticket, utcnow
from omnidesk.sla import ClockSummary, SlaContext, SlaState
from omnidesk.store import Store, guarded, lua, ms

log = logging.getLogger("omnidesk.sweeper")

NotifyFn = Callable[[dict[str, str]], None]  # {ticket, queue, target, via, text}
CountFn = Callable[[str, str], None]  # (sla_warned | sla_breached, queue)
Now = Callable[[], datetime]

LATE_AFTER_S = 5.0  # a step fired later than this after its due time is flagged late
MAX_RETRIES = 50  # compare-and-set retries before giving up on one ticket


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


@dataclass(frozen=True)
class AtRisk:
    ticket: str
    queue: str
    target: str
    due_at: datetime
    remaining_seconds: float  # business seconds; negative when overdue


def _ms(moment: datetime | None) -> str:
    return "" if moment is None else str(ms(moment))


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
    (the daemon wires it to the dramatiq `notify` actor); `count` each fired step (metrics).
    """

    def __init__(
        self,
        store: Store,
        config: QueueConfigFile,
        *,
        clock: Now = utcnow,
        notify: NotifyFn | None = None,
        count: CountFn | None = None,
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
        self.lease_ms = int(lease_seconds * 1000)
        self.batch = batch
        self.name = name or f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._claims = 0
        self._scripts = {
            n: store.r.register_script(lua(n))
            for n in ("sla_write", "sla_claim", "sla_step", "sla_release")
        }

    def reload(self, config: QueueConfigFile) -> None:
        """A new config (SIGHUP): policies and calendars apply from the next transition."""
        self.ctx = SlaContext.from_config(config)
        self.config = config

    # ------------------------------------------------------------ storage

    def key(self, *parts: str) -> str:
        return self.store.key("sla", *parts)

    @guarded
    def load(self, ticket_id: str) -> tuple[SlaState | None, int]:
        raw, version = self.store.r.hmget(self.key(ticket_id), "s", "v")
        return (sla.decode_state(raw) if raw else None), int(version or 0)

    def state(self, ticket_id: str) -> SlaState | None:
        return self.load(ticket_id)[0]

    @guarded
    def _write(self, ticket_id: str, version: int, state: SlaState) -> int:
        args = [
            self.store.prefix,
            ticket_id,
            version,
            sla.encode_state(state),
            _ms(sla.state_next_wakeup(state)),
            _ms(earliest_due(state)),
        ]
        return int(self._scripts["sla_write"](keys=[], args=args))

    def _update(
        self, ticket_id: str, change: Callable[[SlaState | None], SlaState | None]
    ) -> SlaState | None:
        """Load, apply `change`, compare-and-set; re-read and re-apply on a conflict."""
        for _ in range(MAX_RETRIES):
            state, version = self.load(ticket_id)
            new = change(state)
            if new is None or new == state:
                return state
            if self._write(ticket_id, version, new) >= 0:
                due = earliest_due(new)
                if due is not None:
                    self.store.set_due(ticket_id, due)
                return new
        raise SlaConflict(f"SLA state of {ticket_id} kept changing; gave up")

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

        def change(state: SlaState | None) -> SlaState | None:
            if state is not None:
                return state
            return sla.open_state(self.ctx, ticket.id, policy, calendar, at)

        return self._update(ticket.id, change)

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

        return self._update(ticket.id, change)

    def on_agent_reply(self, ticket: Ticket, now: datetime | None = None) -> SlaState | None:
        at = now or self.clock()
        return self._update(ticket.id, lambda s: sla.agent_replied(s, self.ctx, at) if s else None)

    def on_status(
        self, ticket: Ticket, status: Status | str, now: datetime | None = None
    ) -> SlaState | None:
        """Pause on the policy's pause statuses, stop on resolve/close, reopen or resume."""
        at, status = now or self.clock(), Status(status)

        def change(state: SlaState | None) -> SlaState | None:
            if state is None:
                return None
            resolution = state.clocks.get("resolution")
            if status in (Status.NEW, Status.OPEN) and resolution and resolution.state == "stopped":
                return sla.reopen_ticket(state, self.ctx, at)
            return sla.status_changed(state, self.ctx, at, status)

        return self._update(ticket.id, change)

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

        return self._update(ticket.id, change)

    def intake_hooks(self) -> IntakeHooks:
        """What `Intake` calls after each opened or appended ticket."""
        return IntakeHooks(on_opened=self.on_opened, on_customer_message=self.on_customer_message)

    # ------------------------------------------------------------ the sweeper

    @guarded
    def claim(self, now: datetime, limit: int) -> tuple[str, list[str]]:
        """Atomically take up to `limit` due tickets under a fresh lease token."""
        self._claims += 1
        token = f"{self.name}:{self._claims}"
        args = [self.store.prefix, ms(now), self.lease_ms, limit, token]
        return token, list(self._scripts["sla_claim"](keys=[], args=args))

    def sweep(self, now: datetime | None = None, limit: int = 100_000) -> list[Fired]:
        """Fire every ladder step due by `now` (at most `limit` tickets); returns what fired."""
        at = now or self.clock()
        fired: list[Fired] = []
        seen = 0
        while seen < limit:
            token, ids = self.claim(at, min(self.batch, limit - seen))
            for tid in ids:
                try:
                    fired += self._run_ticket(tid, token, at)
                except OmnideskError as exc:  # its lease runs out and a later sweep retries
                    log.warning("SLA sweep of %s: %s", tid, exc)
            seen += len(ids)
            if len(ids) < self.batch:
                break
        return fired

    @guarded
    def _run_ticket(self, tid: str, token: str, now: datetime) -> list[Fired]:
        fired: list[Fired] = []
        for _ in range(MAX_RETRIES):
            state, version = self.load(tid)
            conflict = False
            for target, step in sla.state_due_steps(state, now) if state else []:
                assert state is not None
                outcome = self._fire(tid, token, version, state, target, step, now)
                if outcome is None:
                    return fired  # lost the lease: whoever holds it now carries on
                if isinstance(outcome, int):
                    conflict = True  # an intake transition got in first: re-read
                    break
                state, version, record = outcome
                fired.append(record)
            if conflict:
                continue
            wakeup = _ms(sla.state_next_wakeup(state) if state else None)
            args = [self.store.prefix, tid, token, version, wakeup]
            result = int(self._scripts["sla_release"](keys=[], args=args))
            if result != -1:
                return fired
        raise SlaConflict(f"SLA state of {tid} kept changing during the sweep")

    def _fire(
        self,
        tid: str,
        token: str,
        version: int,
        state: SlaState,
        target: str,
        step: sla.Step,
        now: datetime,
    ) -> tuple[SlaState, int, Fired] | int | None:
        """One step in one script. None: lease lost; -1: state moved; else the new state."""
        new = sla.fire_step(state, target, step.index, now)
        clock = new.clocks[target]
        done = next(s for s in clock.steps if s.index == step.index)
        actions = self.ctx.policy(clock.policy).ladder[step.index].actions
        breached = step.at >= 1.0
        kind = "sla_breached" if breached else "sla_warned"
        late = done.late_by or 0.0
        assert step.due_at is not None
        event = {
            "target": target,
            "step": f"{step.at:g}",
            "policy": clock.policy,
            "due": step.due_at.astimezone(UTC).isoformat(),
            "late_s": f"{late:.3f}",
            "late": "1" if late > LATE_AFTER_S else "0",
            "actions": "; ".join(describe(a) for a in actions),
        }
        acts = [a.model_dump(exclude_none=True, mode="json") for a in actions]
        args = [
            self.store.prefix,
            tid,
            token,
            version,
            sla.encode_state(new),
            kind,
            msgspec.json.encode(event),
            msgspec.json.encode(acts),
            ms(now),
            now.astimezone(UTC).isoformat(),
        ]
        reply = self._scripts["sla_step"](keys=[], args=args)
        if int(reply[0]) == -2:
            return None
        if int(reply[0]) == -1:
            return -1
        queue = str(reply[1])
        record = Fired(
            ticket=tid,
            queue=queue,
            target=target,
            index=step.index,
            at=step.at,
            due_at=step.due_at,
            fired_at=now,
            late_by=late,
            breached=breached,
            actions=[describe(a) for a in actions],
        )
        self._after(record, actions)
        return new, int(reply[0]), record

    def _after(self, record: Fired, actions: list[Action]) -> None:
        """Outside the script: metrics and notifications (a failure here is logged only)."""
        kind = "sla_breached" if record.breached else "sla_warned"
        try:
            if self.count is not None:
                self.count(kind, record.queue)
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

    async def run_sweeper(self, stop: asyncio.Event, interval: float = 1.0) -> None:
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

    @guarded
    def at_risk(
        self, queue: str | None = None, limit: int = 50, now: datetime | None = None
    ) -> list[AtRisk]:
        """Running clocks, least business time left first."""
        at = now or self.clock()
        r = self.store.r
        scan = max(limit * 4, 200) if queue else limit * 2
        ids: list[str] = r.zrange(self.key("open"), 0, scan - 1)
        pipe = r.pipeline(transaction=False)
        for tid in ids:
            pipe.hget(self.key(tid), "s")
            pipe.hget(self.store.key("ticket", tid), "queue")
        replies = pipe.execute()
        out: list[AtRisk] = []
        for raw, tqueue in zip(replies[::2], replies[1::2], strict=True):
            if not raw or (queue is not None and tqueue != queue):
                continue
            state = sla.decode_state(raw)
            for c in sla.summarize(state, self.ctx, at):
                if c.state == "running" and c.due_at is not None:
                    out.append(
                        AtRisk(state.ticket, tqueue or "", c.target, c.due_at, c.remaining_seconds)
                    )
        out.sort(key=lambda x: (x.remaining_seconds, x.due_at))
        return out[:limit]

    @guarded
    def counts(self) -> dict[str, Any]:
        """Figures for /metrics: clocks due to fire, clocks running, tickets held by a sweeper."""
        r = self.store.r
        pipe = r.pipeline(transaction=False)
        pipe.zcard(self.key("due"))
        pipe.zcard(self.key("open"))
        pipe.hlen(self.key("owner"))
        pipe.hmget(self.store.key("stats"), "sla_warned", "sla_breached")
        due, running, held, (warned, breached) = pipe.execute()
        return {
            "scheduled": due,
            "running": running,
            "held": held,
            "warned": int(warned or 0),
            "breached": int(breached or 0),
        }
