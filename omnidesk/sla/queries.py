"""Reading the SLA clocks: a ticket's summary and explanation, the at-risk list, /metrics counts.

The pure part (`summarize`, `explain_data`, `explain_clock`) works on one `SlaState`;
`SlaQueries` reads the records for it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import msgspec

from omnidesk.calendar import format_seconds
from omnidesk.errors import OmnideskError
from omnidesk.sla.clock import TARGETS, Clock, ClockState, Outcome, _aware, remaining
from omnidesk.sla.policy import SlaContext
from omnidesk.sla.records import SlaRecords
from omnidesk.sla.ticket import STANDINGS, SlaState
from omnidesk.store import guarded, ms

log = logging.getLogger("omnidesk.sweeper")

RISK_BUCKETS = 200  # at_risk reads at most this many buckets (~20,000 tickets)
RISK_OVERDUE = 20_000  # and at most this many overdue tickets


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


@dataclass(frozen=True)
class AtRisk:
    ticket: str
    queue: str
    target: str
    due_at: datetime
    remaining_seconds: float  # business seconds; negative when overdue


class SlaQueries(SlaRecords):
    """What the CLI, the console, the dashboard and /metrics read."""

    def summary(self, ticket_id: str, now: datetime | None = None) -> list[ClockSummary]:
        state = self.state(ticket_id)
        return summarize(state, self.ctx, now or self.clock()) if state else []

    def explain(self, ticket_id: str) -> list[str]:
        state = self.state(ticket_id)
        if state is None:
            return []
        lines = [f"{state.ticket}: policy {state.policy}, calendar {state.calendar}"]
        lines += [f"  {h}" for h in state.history]
        for target in TARGETS:
            if target in state.clocks:
                lines += explain_clock(state.clocks[target], self.ctx)
        return lines

    def explain_data(self, ticket_id: str) -> dict[str, Any] | None:
        """`explain` as structured data (explain_data), for a page to word; None
        without clocks."""
        state = self.state(ticket_id)
        return explain_data(state) if state is not None else None

    @guarded
    def at_risk(
        self,
        queue: str | Iterable[str] | None = None,
        limit: int = 50,
        now: datetime | None = None,
    ) -> list[AtRisk]:
        """Running clocks, least business time left first; `queue` one queue or several
        (a supervisor's scope), filtered before `limit` counts.

        Candidates: the overdue index (most overdue first, paged until `limit` of `queue`'s
        are found), then the due buckets in order of their earliest wakeup, which comes no
        later than the running deadlines of tickets not yet overdue: buckets are read until
        the next one wakes after the `limit`-th deadline found so far (at most `RISK_BUCKETS`
        of them). An unreadable record is logged and left out.
        """
        at = now or self.clock()
        out: list[AtRisk] = []
        seen: set[str] = set()
        if queue is not None:
            queue = frozenset([queue] if isinstance(queue, str) else queue)
        for start in range(0, RISK_OVERDUE, 500):
            page_ids = self.store.r.zrange(self.store.keys.sla_overdue(), start, start + 499)
            overdue = cast(list[str], page_ids)
            pipe = self.rb.pipeline(transaction=False)
            for tid in overdue:
                pipe.hget(*self.slot_key(tid))
            records = [(t, raw) for t, raw in zip(overdue, pipe.execute(), strict=True) if raw]
            out += self._risks(records, queue, at, seen)
            if len(overdue) < 500 or len(out) >= limit:
                break
        for start in range(0, RISK_BUCKETS, 20):
            page = cast(
                list[tuple[bytes, float]],  # a binary client: (bucket, score) pairs
                self.rb.zrangebyscore(
                    self.store.keys.sla_due(), 0, "+inf", start=start, num=20, withscores=True
                ),
            )
            if not page:
                break
            if len(out) >= limit:
                nth = sorted(x.due_at for x in out)[limit - 1]
                if ms(nth) < page[0][1]:
                    break
            pipe = self.rb.pipeline(transaction=False)
            for bucket, _ in page:
                pipe.hgetall(self.store.keys.sla_bucket(bucket.decode()))
            for (bucket, _), flat in zip(page, pipe.execute(), strict=True):
                records = [((bucket + f).decode(), v) for f, v in flat.items()]
                out += self._risks(records, queue, at, seen)
        out.sort(key=lambda x: (x.remaining_seconds, x.due_at))
        return out[:limit]

    def _risks(
        self,
        records: list[tuple[str, bytes]],
        queues: frozenset[str] | None,
        at: datetime,
        seen: set[str],
    ) -> list[AtRisk]:
        """The running clocks among these records (of `queues`, if given), skipping `seen`."""
        records = [(tid, raw) for tid, raw in records if tid not in seen]
        seen.update(tid for tid, _ in records)
        pipe = self.store.r.pipeline(transaction=False)
        for tid, _ in records:
            pipe.hget(self.store.keys.ticket(tid), "queue")
        out: list[AtRisk] = []
        for (tid, raw), tqueue in zip(records, pipe.execute(), strict=True):
            if queues is not None and tqueue not in queues:
                continue
            try:
                state, _ = self._decode(tid, raw)
            except OmnideskError as exc:
                log.warning("at-risk: %s: %s", tid, exc)
                continue
            assert state is not None
            for c in summarize(state, self.ctx, at):
                if c.state == "running" and c.due_at is not None:
                    out.append(
                        AtRisk(state.ticket, tqueue or "", c.target, c.due_at, c.remaining_seconds)
                    )
        return out

    @guarded
    def counts(self) -> dict[str, Any]:
        """Figures for /metrics: tickets by queue and SLA standing (running, paused, warned,
        breached), steps fired so far (warned, breached), buckets with a wakeup scheduled and
        buckets held by a sweeper."""
        pipe = self.store.r.pipeline(transaction=False)
        pipe.zcard(self.store.keys.sla_due())
        pipe.hgetall(self.store.keys.sla_counts())
        pipe.hmget(self.store.keys.stats(), "sla_warned", "sla_breached", "sla_held")
        scheduled, counted, (warned, breached, held) = pipe.execute()
        by_queue: dict[str, dict[str, int]] = {}
        for name, value in counted.items():
            queue, _, standing = name.rpartition("|")
            by_queue.setdefault(queue, dict.fromkeys(STANDINGS, 0))[standing] = int(value)
        return {
            "by_queue": by_queue,
            "scheduled": scheduled,
            "held": max(0, int(held or 0)),
            "warned": int(warned or 0),
            "breached": int(breached or 0),
        }
