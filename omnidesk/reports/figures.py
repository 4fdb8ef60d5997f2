"""Figures for a period and filters, read from the rollups only (never the event history).

`read_raw` gathers the counters (`Raw`: totals, per-dimension and per-day breakdowns, listed
tickets, backlog at the period's end); `summarize` turns them into the report's figures.
`recompute.recompute` builds the same `Raw` straight from events, which is how the rollups
are checked.

Without filters the small hashes answer: daily totals, and one hash per dimension per whole
month (per day at the period's ragged ends). With filters the per-queue cube of each day is
read and filtered, so a queue filter reads that queue's cubes only. A single filter reads
the narrower by:<dim>:<value> hashes instead, which hold exactly the figures it needs.
The queue filter may name a set of queues (a supervisor's): their figures added up, as
every contribution counts in exactly one queue.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from omnidesk.reports.fold import (
    BUCKET_LABELS,
    BUCKETS,
    DAY_METRICS,
    DIMS,
    LIST_KINDS,
    SLA_TARGETS,
    TOTAL_ONLY,
)

BREAKDOWNS = (*DIMS, "day")
LIST_CAP = 500  # listed tickets/comments kept per kind (the first ones of the period)
OUTCOMES = ("met", "warned", "breached")
FILTER_KEYS = DIMS
FilterValue = str | frozenset[str]  # only `queue` takes a set (a supervisor's queues)


def clean_filters(filters: Mapping[str, str | Collection[str] | None]) -> dict[str, FilterValue]:
    """The filters in use (None dropped), checked: a queue set of one is that queue (the
    CLI's --queue, same figures and key paths), an empty one is refused rather than read
    as no filter (which would be every queue)."""
    out: dict[str, FilterValue] = {}
    for dim, value in filters.items():
        if value is None:
            continue
        if dim not in FILTER_KEYS:
            raise ValueError(f"unknown filter {dim!r}; use {', '.join(FILTER_KEYS)}")
        if isinstance(value, str):
            out[dim] = value
            continue
        if dim != "queue":
            raise ValueError(f"{dim}: one value only (a set is for queue)")
        values = frozenset(value)
        if not values:
            raise ValueError("queue: an empty set of queues")
        out[dim] = next(iter(values)) if len(values) == 1 else values
    return out


def filter_values(value: FilterValue) -> list[str]:
    """A filter's values, sorted: [value], or the queue set's members."""
    return [value] if isinstance(value, str) else sorted(value)


@dataclass
class Raw:
    """Counters for one period and filter; what rollups and recomputation must agree on."""

    all: Counter[str] = field(default_factory=Counter)
    by: dict[str, Counter[tuple[str, str]]] = field(
        default_factory=lambda: {b: Counter() for b in BREAKDOWNS}
    )
    lists: dict[str, list[dict[str, Any]]] = field(
        default_factory=lambda: {k: [] for k in LIST_KINDS}
    )
    backlog_end: int = 0

    def add(self, day: str | None, metric: str, dims: tuple[str, ...], n: int) -> None:
        """Count into the totals and dimensions, and the day's series (DAY_METRICS only)."""
        self.all[metric] += n
        if day is not None and metric in DAY_METRICS:
            self.by["day"][metric, day] += n
        if metric.startswith(TOTAL_ONLY):
            return
        for name, value in zip(DIMS, dims, strict=True):
            self.by[name][metric, value] += n

    def normalized(self) -> dict[str, Any]:
        """Zero counts dropped and lists sorted: a form two Raws compare equal in."""
        return {
            "all": {k: v for k, v in self.all.items() if v},
            "by": {b: {k: v for k, v in c.items() if v} for b, c in self.by.items()},
            "lists": {
                k: sorted(v, key=lambda e: json.dumps(e, sort_keys=True))
                for k, v in self.lists.items()
            },
            "backlog_end": self.backlog_end,
        }


def matches(dims: tuple[str, ...] | list[str], filters: Mapping[str, FilterValue]) -> bool:
    """Do these dims pass every filter (equal to its value, or in its queue set)?"""
    for k, v in filters.items():
        d = dims[DIMS.index(k)]
        if d != v if isinstance(v, str) else d not in v:
            return False
    return True


def days_between(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def _periods(start: date, end: date) -> list[str]:
    """The fewest hashes covering [start, end]: whole months (m:YYYY-MM), then whole
    Monday-Sunday weeks inside one month (w:<monday>), then single days (d:YYYY-MM-DD)."""
    out: list[str] = []
    day = start
    while day <= end:
        month_end = (day.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
        week_end = day + timedelta(days=6)
        if day.day == 1 and month_end <= end:
            out.append(f"m:{day:%Y-%m}")
            day = month_end + timedelta(days=1)
        elif day.weekday() == 0 and week_end <= end and week_end.month == day.month:
            out.append(f"w:{day.isoformat()}")
            day = week_end + timedelta(days=1)
        else:
            out.append(f"d:{day:%Y-%m-%d}")
            day += timedelta(days=1)
    return out


def read_raw(
    r: Any,
    prefix: str,
    start: date,
    end: date,
    filters: Mapping[str, str | Collection[str] | None],
    today: date,
) -> Raw:
    """The counters for [start, end] (local dates, inclusive) under `filters`."""
    filters = clean_filters(filters)

    def k(*parts: str) -> str:
        return ":".join((prefix, "ru", *parts))

    raw = Raw()
    days = [f"{d:%Y-%m-%d}" for d in days_between(start, end)]
    after = [f"{d:%Y-%m-%d}" for d in days_between(end + timedelta(days=1), today)]
    _read_lists(r, k, days, filters, raw)

    if not filters:
        pipe = r.pipeline(transaction=False)
        for day in days:
            pipe.hgetall(k("d", day, "all"))
        for day, counts in zip(days, pipe.execute(), strict=True):
            for metric, n in counts.items():
                raw.all[metric] += int(n)
                if metric in DAY_METRICS:
                    raw.by["day"][metric, day] += int(n)
        pipe = r.pipeline(transaction=False)
        periods = _periods(start, end)
        for per in periods:
            for dim in DIMS:
                pipe.hgetall(k(*per.split(":", 1), dim))
        replies = iter(pipe.execute())
        for _ in periods:
            for dim in DIMS:
                counter = raw.by[dim]
                for f, n in next(replies).items():
                    metric, _, value = f.rpartition("|")
                    counter[metric, value] += int(n)
        pipe = r.pipeline(transaction=False)
        pipe.hget(k("now", "all"), "backlog")
        for day in after:
            pipe.hget(k("d", day, "all"), "backlog")
        now, *later = pipe.execute()
        raw.backlog_end = int(now or 0) - sum(int(x or 0) for x in later)
        return raw

    if len(filters) == 1 and r.exists(k("byfilter")):
        ((dim, wanted),) = filters.items()
        for value in filter_values(wanted):  # a queue set: each queue's figures added up
            _read_one_filter(r, k, start, end, days, after, dim, value, raw)
        return raw

    queues = filter_values(filters["queue"]) if "queue" in filters else sorted(r.hkeys(k("qs")))
    rest = {d: v for d, v in filters.items() if d != "queue"}
    periods = _periods(start, end)
    pipe = r.pipeline(transaction=False)
    for per in periods:
        for q in queues:
            pipe.hgetall(k(*per.split(":", 1), "cube", q))
    for day in days:
        for q in queues:
            pipe.hgetall(k("d", day, "cubeday", q))
    replies = iter(pipe.execute())
    for day_or_none in [None] * len(periods) + list(days):
        for q in queues:
            for f, n in next(replies).items():
                metric, ch, seg, reg, agent = f.split("|")
                dims = (q, ch, seg, reg, agent)
                if not rest or matches(dims, rest):
                    if day_or_none is None:
                        raw.add(None, metric, dims, int(n))
                    else:
                        raw.by["day"][metric, day_or_none] += int(n)
    pipe = r.pipeline(transaction=False)
    for q in queues:
        pipe.hgetall(k("now", "cube", q))
        for day in after:
            pipe.hgetall(k("d", day, "cubeday", q))
    replies = iter(pipe.execute())
    for q in queues:
        for sign in (1, *(-1 for _ in after)):
            for f, n in next(replies).items():
                metric, ch, seg, reg, agent = f.split("|")
                if metric == "backlog" and matches((q, ch, seg, reg, agent), rest):
                    raw.backlog_end += sign * int(n)
    return raw


def _read_one_filter(
    r: Any,
    k: Any,
    start: date,
    end: date,
    days: list[str],
    after: list[str],
    dim: str,
    value: str,
    raw: Raw,
) -> None:
    """One filter (dim = value): that value's by: hashes of whole months, weeks and the
    remaining days, then the per-day series and backlog from the dimension's day hashes.
    Added to `raw`, so several values of one dimension sum up."""
    periods = _periods(start, end)
    pipe = r.pipeline(transaction=False)
    for per in periods:
        pipe.hgetall(k(*per.split(":", 1), "by", dim, value))
    own = raw.by[dim]
    for counts in pipe.execute():
        for f, n in counts.items():
            metric, *other = f.split("|")
            if other:
                raw.by[other[0]][metric, other[1]] += int(n)
            else:
                raw.all[metric] += int(n)
                if not metric.startswith(TOTAL_ONLY):
                    own[metric, value] += int(n)
    series = [f"{m}|{value}" for m in sorted(DAY_METRICS)]
    pipe = r.pipeline(transaction=False)
    for day in days:
        pipe.hmget(k("d", day, dim), series)
    pipe.hget(k("now", dim), f"backlog|{value}")
    for day in after:
        pipe.hget(k("d", day, dim), f"backlog|{value}")
    replies = pipe.execute()
    for day, counts in zip(days, replies, strict=False):
        for metric, n in zip(sorted(DAY_METRICS), counts, strict=True):
            if n is not None:
                raw.by["day"][metric, day] += int(n)
    now, *later = replies[len(days) :]
    raw.backlog_end += int(now or 0) - sum(int(x or 0) for x in later)


def _read_lists(
    r: Any, k: Any, days: list[str], filters: Mapping[str, FilterValue], raw: Raw
) -> None:
    """The first LIST_CAP matching entries of each list, in stream order, a week at a time;
    an entry's dims come before its JSON so non-matching ones are never parsed."""
    for i in range(0, len(days), 7):
        kinds = [kind for kind in LIST_KINDS if len(raw.lists[kind]) < LIST_CAP]
        if not kinds:
            return
        week = days[i : i + 7]
        pipe = r.pipeline(transaction=False)
        for day in week:
            for kind in kinds:
                pipe.lrange(k("list", day, kind), 0, -1)
        replies = iter(pipe.execute())
        for day in week:
            for kind in kinds:
                bucket = raw.lists[kind]
                for item in next(replies):
                    if len(bucket) >= LIST_CAP:
                        break
                    dims, _, body = item.partition("\t")
                    values = dims.split("|")
                    if matches(values, filters):
                        bucket.append({"dims": values, **json.loads(body), "day": day})


# ---------------------------------------------------------------- summary


def percentile(hist: dict[str, int], q: float) -> int | None:
    """Upper bound (seconds) of the bucket holding the q-quantile; None when empty or beyond
    the last bound (reported as "> 30 d")."""
    n = sum(hist.values())
    if not n:
        return None
    need, seen = q * n, 0
    for label, bound in zip(BUCKET_LABELS, (*BUCKETS, None), strict=True):
        seen += hist.get(label, 0)
        if seen >= need:
            return bound
    return None


def _times(c: Counter[str] | dict[str, int], prefix: str) -> dict[str, Any]:
    n = c.get(f"{prefix}_n", 0)
    out: dict[str, Any] = {"n": n}
    for kind, label in (("w", "wall"), ("b", "business")):
        hist = {b: c.get(f"{prefix}_{kind}h:{b}", 0) for b in BUCKET_LABELS}
        out[label] = {
            "mean_s": round(c.get(f"{prefix}_{kind}", 0) / n) if n else None,
            "p50_s": percentile(hist, 0.5),
            "p90_s": percentile(hist, 0.9),
            "histogram": hist,
        }
    return out


def _sla(c: Counter[str] | dict[str, int]) -> dict[str, Any]:
    out = {}
    for target in SLA_TARGETS:
        met, warned, breached = (c.get(f"sla:{target}:{o}", 0) for o in OUTCOMES)
        done = met + warned + breached
        out[target] = {
            "met": met,
            "warned": warned,
            "breached": breached,
            "compliance": round((met + warned) / done, 4) if done else None,
            "warn_events": c.get(f"sla_warn_ev:{target}", 0),
            "breach_events": c.get(f"sla_breach_ev:{target}", 0),
        }
    return out


def _block(c: Counter[str] | dict[str, int]) -> dict[str, Any]:
    """The headline figures of one slice (the whole report, one queue, one agent, ...)."""
    opened, resolved = c.get("opened", 0), c.get("resolved", 0)
    csat_n = c.get("csat_n", 0)
    return {
        "opened": opened,
        "resolved": resolved,
        "reopened": c.get("reopened", 0),
        "reopen_rate": round(c.get("reopened", 0) / resolved, 4) if resolved else None,
        "transfers": c.get("transfers", 0),
        "escalated": c.get("escalated", 0),
        "replies": c.get("replies", 0),
        "first_response": _times(c, "frt"),
        "resolution": _times(c, "res"),
        "sla": _sla(c),
        "csat": {
            "responses": csat_n,
            "response_rate": round(csat_n / resolved, 4) if resolved else None,
            "average": round(c.get("csat_sum", 0) / csat_n, 2) if csat_n else None,
            "distribution": {str(s): c.get(f"csat:{s}", 0) for s in range(1, 6)},
        },
    }


def summarize(
    raw: Raw, start: date, end: date, filters: Mapping[str, FilterValue]
) -> dict[str, Any]:
    days = [f"{d:%Y-%m-%d}" for d in days_between(start, end)]
    per_day = {d: Counter() for d in days}
    for (metric, day), n in raw.by["day"].items():
        if day in per_day:
            per_day[day][metric] += n
    backlog = raw.backlog_end
    backlog_by_day: dict[str, int] = {}
    for day in reversed(days):
        backlog_by_day[day] = backlog
        backlog -= per_day[day].get("backlog", 0)
    breakdown: dict[str, dict[str, Any]] = {}
    for dim in DIMS:
        slices: dict[str, Counter[str]] = {}
        for (metric, value), n in raw.by[dim].items():
            slices.setdefault(value, Counter())[metric] += n
        breakdown[dim] = {v: _block(c) for v, c in sorted(slices.items()) if any(c.values())}
    opened = raw.all.get("opened", 0)
    repeat = raw.all.get("repeat_30d", 0)
    rules = Counter(
        {m.split(":", 1)[1]: n for m, n in raw.all.items() if m.startswith("rule:") and n}
    )
    return {
        "period": {"from": start.isoformat(), "to": end.isoformat()},
        "filters": {k: v if isinstance(v, str) else sorted(v) for k, v in sorted(filters.items())},
        "totals": _block(raw.all),
        "volume": {
            "opened_by_day": {d: per_day[d].get("opened", 0) for d in days},
            "resolved_by_day": {d: per_day[d].get("resolved", 0) for d in days},
            "opened_by_hour": {f"{h:02d}": raw.all.get(f"opened_h:{h:02d}", 0) for h in range(24)},
        },
        "backlog": {
            "start": backlog,
            "end": raw.backlog_end,
            "by_day": dict(reversed(list(backlog_by_day.items()))),
        },
        "customers": {
            "repeat_30d": repeat,
            "tickets_per_customer": (
                round(opened / (opened - repeat), 3) if opened > repeat else None
            ),
        },
        "routing": {
            "top_rules": sorted(rules.items(), key=lambda kv: (-kv[1], kv[0]))[:20],
            "default_queue": raw.all.get("default_queue", 0),
            "default_queue_tickets": [e["ticket"] for e in raw.lists["default"]],
        },
        "breached_tickets": raw.lists["breached"],
        "csat_comments": raw.lists["comment"],
        "by": breakdown,
    }
