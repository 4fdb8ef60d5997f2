"""The report's counters and figures, whoever computes them.

`Raw` holds the counters of one period and filter (totals, per-dimension and per-day
breakdowns, listed tickets, backlog at the period's end): PostgreSQL builds it
(omnidesk.reports.sql, omnidesk.reports.days) and `recompute.recompute` builds the same
straight from events, which is how the SQL is checked. `summarize` turns a `Raw` into the
report's figures every renderer takes. The queue filter may name a set of queues (a
supervisor's): their figures added up, as every contribution counts in exactly one queue.
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
    """Counters for one period and filter; what the SQL and the recomputation must agree on."""

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
    per_day: dict[str, Counter[str]] = {d: Counter() for d in days}
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
