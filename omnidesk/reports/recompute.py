"""The report's counters recomputed straight from raw events: the check on the SQL
(omnidesk.reports.sql and the days folded by omnidesk.reports.days).

Written apart from the SQL on purpose (one pass over the history, one plain dict per
ticket, filters applied as each figure is counted), so a mistake in the SQL shows up as a
difference instead of being repeated. Shares only the definitions: time zone, regions,
calendars and policy targets (`Context`), histogram buckets, the `Raw` shape.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import date, timedelta
from typing import Any

from omnidesk.events import EventType
from omnidesk.model import SYSTEM_ACTORS
from omnidesk.reports.figures import LIST_CAP, Raw, days_between, matches
from omnidesk.reports.fold import (
    DONE,
    OPEN,
    REPEAT_WINDOW_MS,
    STATUS_EVENTS,
    Context,
    bucket_of,
    clean,
)


def recompute(
    events: Iterable[Mapping[str, str]],
    start: date,
    end: date,
    filters: dict[str, str],
    ctx: Context,
) -> Raw:
    count = _Recount(start, end, filters, ctx)
    snapshots: dict[str, Counter[tuple[str, ...]]] = {}  # open tickets by dims, end of day
    current = ""
    for ev in events:
        tid = ev.get("ticket", "")
        if not tid:
            continue
        ts = int(float(ev.get("ts") or 0))
        day = ctx.day(ts)
        if day != current:
            if current:
                snapshots[current] = count.snapshot()
            current = day
        count.event(ev, tid, ts, day)
    if current:
        snapshots[current] = count.snapshot()
    _backlog(count.raw, snapshots, start, end, filters)
    return count.raw


class _Recount:
    """The tickets as the events leave them (one plain dict each) and the counters, one
    method per kind of event."""

    def __init__(self, start: date, end: date, filters: dict[str, str], ctx: Context) -> None:
        self.lo, self.hi = start.isoformat(), end.isoformat()
        self.filters, self.ctx = filters, ctx
        self.raw = Raw()
        self.tickets: dict[str, dict[str, Any]] = {}
        self.last_ticket_of: dict[str, int] = {}

    def dims(self, t: dict[str, Any], agent: str | None = None) -> tuple[str, ...]:
        region = self.ctx.region(t["queue"], t["region"])
        who = t["agent"] if agent is None else agent
        return tuple(clean(x) for x in (t["queue"], t["channel"], t["segment"], region, who))

    def count(
        self, day: str, t: dict[str, Any], metric: str, n: int = 1, agent: str | None = None
    ) -> None:
        d = self.dims(t, agent)
        if self.lo <= day <= self.hi and matches(d, self.filters):
            self.raw.add(day, metric, d, n)

    def listed(self, day: str, t: dict[str, Any], kind: str, data: dict[str, str]) -> None:
        d = self.dims(t)
        if (
            self.lo <= day <= self.hi
            and matches(d, self.filters)
            and len(self.raw.lists[kind]) < LIST_CAP
        ):
            self.raw.lists[kind].append({"dims": list(d), **data, "day": day})

    def durations(self, day: str, t: dict[str, Any], ts: int, name: str, agent: str | None) -> None:
        wall = max(0, (ts - t["opened"]) // 1000)
        biz = self.ctx.business_seconds(t["queue"], t["opened"], ts)
        for metric, n in ((f"{name}_n", 1), (f"{name}_w", wall), (f"{name}_b", biz)):
            self.count(day, t, metric, n, agent)
        self.count(day, t, f"{name}_wh:{bucket_of(wall)}", 1, agent)
        self.count(day, t, f"{name}_bh:{bucket_of(biz)}", 1, agent)

    @staticmethod
    def outcome(t: dict[str, Any], target: str) -> str:
        return "breached" if target in t["b"] else "warned" if target in t["w"] else "met"

    def snapshot(self) -> Counter[tuple[str, ...]]:
        return Counter(self.dims(t) for t in self.tickets.values() if t["status"] in OPEN)

    def event(self, ev: Mapping[str, str], tid: str, ts: int, day: str) -> None:
        kind = ev.get("type", "")
        t = self.tickets.get(tid)
        if kind == EventType.TICKET_OPENED:
            if t is None:
                self.opened(ev, tid, ts, day)
            return
        if t is None:
            return  # histories given here always open their tickets first
        if ev.get("queue"):
            t["queue"] = ev["queue"]
        if kind == EventType.ROUTED:
            self.routed(ev, t, tid, day)
        elif kind == EventType.ASSIGNED:
            actor = ev.get("actor", "")
            t["agent"] = ev.get("agent", "") or ("" if actor in SYSTEM_ACTORS else actor)
            self.count(day, t, "assigned")
        elif kind in (EventType.TRANSFERRED, EventType.ESCALATED):
            self.transferred(ev, t, kind, day)
        elif kind == EventType.REPLIED:
            self.replied(ev, t, ts, day)
        elif kind == EventType.STATUS_CHANGED or kind in STATUS_EVENTS:
            changed = kind == EventType.STATUS_CHANGED
            new = ev.get("to", "") if changed else STATUS_EVENTS[EventType(kind)]
            if new:
                self.status(t, new, ts, day)
        elif kind in (EventType.SLA_WARNED, EventType.SLA_BREACHED):
            self.sla_event(ev, t, tid, kind, day)
        elif kind == EventType.CSAT:
            self.csat(ev, t, tid, day)

    def opened(self, ev: Mapping[str, str], tid: str, ts: int, day: str) -> None:
        t = self.tickets[tid] = {
            "queue": ev.get("queue", ""),
            "channel": ev.get("channel", ""),
            "segment": ev.get("segment") or "unknown",
            "region": ev.get("region", ""),
            "agent": "",
            "opened": int(float(ev.get("created") or 0)) or ts,
            "status": "new",
            "policy": "",
            "responded": False,
            "resolved": False,
            "rated": False,
            "w": set(),
            "b": set(),
        }
        self.count(day, t, "opened")
        self.count(day, t, f"opened_h:{self.ctx.local(ts).hour:02d}")
        customer = ev.get("customer", "")
        if customer:
            last = self.last_ticket_of.get(customer)
            if last is not None and ts - last <= REPEAT_WINDOW_MS:
                self.count(day, t, "repeat_30d")
            self.last_ticket_of[customer] = ts

    def routed(self, ev: Mapping[str, str], t: dict[str, Any], tid: str, day: str) -> None:
        t["policy"] = ev.get("sla_policy", "")
        if ev.get("rule"):
            self.count(day, t, f"rule:{clean(ev['rule'])}")
        else:
            self.count(day, t, "default_queue")
            self.listed(day, t, "default", {"ticket": tid})

    def transferred(self, ev: Mapping[str, str], t: dict[str, Any], kind: str, day: str) -> None:
        source = ev.get("from", "")
        if source and source != t["queue"]:
            self.count(day, {**t, "queue": source}, "transfers_out")
        t["agent"] = ""
        actor = ev.get("actor", "")
        self.count(day, t, "transfers", agent="" if actor in SYSTEM_ACTORS else actor)
        if kind == EventType.ESCALATED:
            self.count(day, t, "escalated")

    def replied(self, ev: Mapping[str, str], t: dict[str, Any], ts: int, day: str) -> None:
        agent = ev.get("actor", "")
        if agent and agent in SYSTEM_ACTORS:
            return  # the CSAT survey, not an agent's reply
        self.count(day, t, "replies", agent=agent)
        if not t["responded"]:
            t["responded"] = True
            self.durations(day, t, ts, "frt", agent)
            if self.ctx.has_target(t["policy"], "first_response"):
                outcome = self.outcome(t, "first_response")
                self.count(day, t, f"sla:first_response:{outcome}", agent=agent)

    def status(self, t: dict[str, Any], new: str, ts: int, day: str) -> None:
        if t["status"] in OPEN and new in DONE:
            self.count(day, t, "resolved")
            if not t["resolved"]:
                t["resolved"] = True
                self.durations(day, t, ts, "res", None)
                if self.ctx.has_target(t["policy"], "resolution"):
                    self.count(day, t, f"sla:resolution:{self.outcome(t, 'resolution')}")
        elif t["status"] in DONE and new in OPEN:
            self.count(day, t, "reopened")
        t["status"] = new

    def sla_event(
        self, ev: Mapping[str, str], t: dict[str, Any], tid: str, kind: str, day: str
    ) -> None:
        target = ev.get("target", "") or "unknown"
        if kind == EventType.SLA_WARNED:
            t["w"].add(target)
            self.count(day, t, f"sla_warn_ev:{clean(target)}")
            return
        t["b"].add(target)
        self.count(day, t, f"sla_breach_ev:{clean(target)}")
        data = {"ticket": tid, "target": target, "late_s": ev.get("late_s", "")}
        self.listed(day, t, "breached", data)

    def csat(self, ev: Mapping[str, str], t: dict[str, Any], tid: str, day: str) -> None:
        try:
            score = int(float(ev.get("score") or 0))
        except ValueError:
            score = 0
        if not (1 <= score <= 5) or t["rated"]:
            return
        t["rated"] = True
        self.count(day, t, "csat_n")
        self.count(day, t, "csat_sum", score)
        self.count(day, t, f"csat:{score}")
        if ev.get("comment"):
            data = {"ticket": tid, "score": str(score), "comment": ev["comment"][:1000]}
            self.listed(day, t, "comment", data)


def _backlog(
    raw: Raw,
    snapshots: dict[str, Counter[tuple[str, ...]]],
    start: date,
    end: date,
    filters: dict[str, str],
) -> None:
    """Backlog changes per day as differences of end-of-day snapshots (not event by event)."""
    known = sorted(snapshots)

    def at(day: date) -> Counter[tuple[str, ...]]:
        i = bisect_right(known, day.isoformat())
        snap = snapshots[known[i - 1]] if i else Counter()
        return Counter({d: n for d, n in snap.items() if matches(d, filters)})

    before = at(start - timedelta(days=1))
    for day in days_between(start, end):
        now = at(day)
        for d in set(now) | set(before):
            if now[d] != before[d]:
                raw.add(day.isoformat(), "backlog", d, now[d] - before[d])
        before = now
    raw.backlog_end = sum(before.values())
