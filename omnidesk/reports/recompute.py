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
    lo, hi = start.isoformat(), end.isoformat()
    raw = Raw()
    tickets: dict[str, dict[str, Any]] = {}
    last_ticket_of: dict[str, int] = {}

    def dims(t: dict[str, Any], agent: str | None = None) -> tuple[str, ...]:
        region = ctx.region(t["queue"], t["region"])
        who = t["agent"] if agent is None else agent
        return tuple(clean(x) for x in (t["queue"], t["channel"], t["segment"], region, who))

    def count(day: str, t: dict[str, Any], metric: str, n: int = 1, agent: str | None = None):
        d = dims(t, agent)
        if lo <= day <= hi and matches(d, filters):
            raw.add(day, metric, d, n)

    def listed(day: str, t: dict[str, Any], kind: str, data: dict[str, str]) -> None:
        d = dims(t)
        if lo <= day <= hi and matches(d, filters) and len(raw.lists[kind]) < LIST_CAP:
            raw.lists[kind].append({"dims": list(d), **data, "day": day})

    def durations(day: str, t: dict[str, Any], ts: int, name: str, agent: str | None) -> None:
        wall = max(0, (ts - t["opened"]) // 1000)
        biz = ctx.business_seconds(t["queue"], t["opened"], ts)
        for metric, n in ((f"{name}_n", 1), (f"{name}_w", wall), (f"{name}_b", biz)):
            count(day, t, metric, n, agent)
        count(day, t, f"{name}_wh:{bucket_of(wall)}", 1, agent)
        count(day, t, f"{name}_bh:{bucket_of(biz)}", 1, agent)

    def outcome(t: dict[str, Any], target: str) -> str:
        return "breached" if target in t["b"] else "warned" if target in t["w"] else "met"

    snapshots: dict[str, Counter[tuple[str, ...]]] = {}  # open tickets by dims, end of day
    current = ""

    def snapshot() -> Counter[tuple[str, ...]]:
        return Counter(dims(t) for t in tickets.values() if t["status"] in OPEN)

    for ev in events:
        tid, kind = ev.get("ticket", ""), ev.get("type", "")
        if not tid:
            continue
        ts = int(float(ev.get("ts") or 0))
        day = ctx.day(ts)
        if day != current:
            if current:
                snapshots[current] = snapshot()
            current = day
        t = tickets.get(tid)
        if kind == "ticket_opened":
            if t is not None:
                continue
            t = tickets[tid] = {
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
            count(day, t, "opened")
            count(day, t, f"opened_h:{ctx.local(ts).hour:02d}")
            customer = ev.get("customer", "")
            if customer:
                if customer in last_ticket_of and ts - last_ticket_of[customer] <= REPEAT_WINDOW_MS:
                    count(day, t, "repeat_30d")
                last_ticket_of[customer] = ts
            continue
        if t is None:
            continue  # histories given here always open their tickets first
        if ev.get("queue"):
            t["queue"] = ev["queue"]
        if kind == "routed":
            t["policy"] = ev.get("sla_policy", "")
            if ev.get("rule"):
                count(day, t, f"rule:{clean(ev['rule'])}")
            else:
                count(day, t, "default_queue")
                listed(day, t, "default", {"ticket": tid})
        elif kind == "assigned":
            actor = ev.get("actor", "")
            t["agent"] = ev.get("agent", "") or ("" if actor in SYSTEM_ACTORS else actor)
            count(day, t, "assigned")
        elif kind in ("transferred", "escalated"):
            source = ev.get("from", "")
            if source and source != t["queue"]:
                count(day, {**t, "queue": source}, "transfers_out")
            t["agent"] = ""
            actor = ev.get("actor", "")
            count(day, t, "transfers", agent="" if actor in SYSTEM_ACTORS else actor)
            if kind == "escalated":
                count(day, t, "escalated")
        elif kind == "replied":
            agent = ev.get("actor", "")
            if agent and agent in SYSTEM_ACTORS:
                continue  # the CSAT survey, not an agent's reply
            count(day, t, "replies", agent=agent)
            if not t["responded"]:
                t["responded"] = True
                durations(day, t, ts, "frt", agent)
                if ctx.has_target(t["policy"], "first_response"):
                    count(day, t, f"sla:first_response:{outcome(t, 'first_response')}", agent=agent)
        elif kind == "status_changed" or kind in STATUS_EVENTS:
            new = ev.get("to", "") if kind == "status_changed" else STATUS_EVENTS[kind]
            if not new:
                continue
            if t["status"] in OPEN and new in DONE:
                count(day, t, "resolved")
                if not t["resolved"]:
                    t["resolved"] = True
                    durations(day, t, ts, "res", None)
                    if ctx.has_target(t["policy"], "resolution"):
                        count(day, t, f"sla:resolution:{outcome(t, 'resolution')}")
            elif t["status"] in DONE and new in OPEN:
                count(day, t, "reopened")
            t["status"] = new
        elif kind == "sla_warned":
            target = ev.get("target", "") or "unknown"
            t["w"].add(target)
            count(day, t, f"sla_warn_ev:{clean(target)}")
        elif kind == "sla_breached":
            target = ev.get("target", "") or "unknown"
            t["b"].add(target)
            count(day, t, f"sla_breach_ev:{clean(target)}")
            data = {"ticket": tid, "target": target, "late_s": ev.get("late_s", "")}
            listed(day, t, "breached", data)
        elif kind == "csat":
            try:
                score = int(float(ev.get("score") or 0))
            except ValueError:
                score = 0
            if 1 <= score <= 5 and not t["rated"]:
                t["rated"] = True
                count(day, t, "csat_n")
                count(day, t, "csat_sum", score)
                count(day, t, f"csat:{score}")
                if ev.get("comment"):
                    data = {"ticket": tid, "score": str(score), "comment": ev["comment"][:1000]}
                    listed(day, t, "comment", data)

    if current:
        snapshots[current] = snapshot()
    _backlog(raw, snapshots, start, end, filters)
    return raw


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
