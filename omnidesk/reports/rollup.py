"""Rollups: Redis hashes of counters kept up to date from the events stream.

With the store prefix ``P`` (all under ``P:ru:``):

    P:ru:last                     string id of the last event folded in (the consumer's cursor)
    P:ru:d:<day>:all              hash   metric -> n, for the local day YYYY-MM-DD
    P:ru:<per>:<dim>              hash   "metric|value" -> n; per = d:<day>, w:<monday>
                                         (the week starting that Monday) or m:<YYYY-MM>;
                                         dim = queue, channel, segment, region, agent
                                         (not for opened_h:* and rule:*, see TOTAL_ONLY)
    P:ru:<per>:cube:<queue>       hash   "metric|channel|segment|region|agent" -> n, per day,
                                         week and month
    P:ru:d:<day>:cubeday:<queue>  hash   the same for DAY_METRICS only (per-day series)
    P:ru:<per>:by:<dim>:<value>   hash   what a one-dimension filter needs (dim = value):
                                         "metric" -> n (every metric) and
                                         "metric|<other dim>|<its value>" -> n (not TOTAL_ONLY),
                                         per day, week and month
    P:ru:byfilter                 string "1" when the by: hashes cover the whole history
                                         (set by the first batch ever folded; rollups begun
                                         before them fall back to the cubes)
    P:ru:since                    string ms of the first event ever folded: the rollups
                                         answer periods from that day on (set with byfilter)
    P:ru:now:all / now:<dim> / now:cube:<queue>   the same three shapes for the backlog
                                         as it stands now (metric ``backlog`` only)
    P:ru:qs                       hash   queue -> contributions (the queues the cube has)
    P:ru:list:<day>:<kind>        list   "dims<TAB>JSON" entries: breached, default (fell to the
                                         default queue), comment (CSAT comments)
    P:ru:tk:<ticket>              hash   the fold's TicketState (expires 180 days after the
                                         ticket's last event)
    P:ru:cust                     hash   customer -> ms of their last ticket (repeat contacts)

Exactly once across daemons: each batch is folded in Python, then written by one Lua script
that first checks ``P:ru:last`` still holds the id the batch started after (compare-and-set);
a daemon that lost the race throws its batch away and reads again.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from datetime import date, timedelta
from typing import Any

from omnidesk.reports.fold import (
    DAY_METRICS,
    DIMS,
    TOTAL_ONLY,
    Context,
    Contribution,
    Entry,
    TicketState,
    apply,
)
from omnidesk.store import Store, guarded

log = logging.getLogger("omnidesk.reports")
FACETS = DIMS  # one single-dimension hash per dimension
TICKET_TTL_S = 180 * 86400
# TOTAL_ONLY metrics (hour of day, rule hits) stay out of the per-dimension hashes, which
# would otherwise grow 24x and 60x; the cube still has them for filtered reports.

APPLY_LUA = """
local a = cjson.decode(ARGV[1])
local cur = redis.call("GET", a.last_key) or ""
if cur ~= a.expect then return 0 end
if cur == "" then
  redis.call("SET", a.byfilter_key, "1")
  redis.call("SET", a.since_key, a.since)
end
for _, op in ipairs(a.incr) do redis.call("HINCRBY", op[1], op[2], op[3]) end
for _, op in ipairs(a.hset) do
  local flat = {}
  for k, v in pairs(op[2]) do flat[#flat + 1] = k; flat[#flat + 1] = v end
  redis.call("HSET", op[1], unpack(flat))
  if op[3] > 0 then redis.call("EXPIRE", op[1], op[3]) end
end
for _, op in ipairs(a.rpush) do redis.call("RPUSH", op[1], op[2]) end
redis.call("SET", a.last_key, a.new)
return 1
"""


@functools.lru_cache(maxsize=4096)
def week_of(day: str) -> str:
    """The Monday starting the day's week: weeks are keyed by their first day."""
    d = date.fromisoformat(day)
    return (d - timedelta(days=d.weekday())).isoformat()


def fan_out(c: Contribution) -> Iterator[tuple[str, str]]:
    """Every (key suffix, field) one contribution increments."""
    q, ch, seg, reg, agent = c.dims
    values = dict(zip(DIMS, c.dims, strict=True))
    m = c.metric
    yield f"d:{c.day}:all", m
    pers = (f"d:{c.day}", f"w:{week_of(c.day)}", f"m:{c.day[:7]}")
    if not m.startswith(TOTAL_ONLY):
        for per in pers:
            for dim in FACETS:
                yield f"{per}:{dim}", f"{m}|{values[dim]}"
    cell = f"{m}|{ch}|{seg}|{reg}|{agent}"
    for per in pers:
        yield f"{per}:cube:{q}", cell
    if m in DAY_METRICS:
        yield f"d:{c.day}:cubeday:{q}", cell
    crossed = not m.startswith(TOTAL_ONLY)
    for dim, value in values.items():
        for per in pers:
            key = f"{per}:by:{dim}:{value}"
            yield key, m
            if crossed:
                for other, v in values.items():
                    if other != dim:
                        yield key, f"{m}|{other}|{v}"
    if m == "backlog":
        yield "now:all", m
        for dim in FACETS:
            yield f"now:{dim}", f"{m}|{values[dim]}"
        yield f"now:cube:{q}", f"{m}|{ch}|{seg}|{reg}|{agent}"
    yield "qs", q


def aggregate(contributions: Iterable[Contribution]) -> Counter[tuple[str, str]]:
    """Sum the contributions' fan-out: (key suffix, field) -> amount."""
    total: Counter[tuple[str, str]] = Counter()
    for c in contributions:
        for target in fan_out(c):
            total[target] += c.amount
    return total


def entry_json(e: Entry) -> str:
    """A list item: ``queue|channel|segment|region|agent<TAB>{json data}``."""
    data = json.dumps(e.data, ensure_ascii=False, separators=(",", ":"))
    return "|".join(e.dims) + "\t" + data


class Rollups:
    """The consumer: folds new events into the rollup hashes, each event exactly once."""

    def __init__(self, store: Store, ctx: Context, *, batch: int = 500) -> None:
        self.store = store
        self.ctx = ctx
        self.batch = batch
        self._apply = store.r.register_script(APPLY_LUA)

    def key(self, *parts: str) -> str:
        return self.store.key("ru", *parts)

    @property
    def cursor_key(self) -> str:
        """The id of the last event folded in: the records writer trims no further."""
        return self.key("last")

    @guarded
    def last_id(self) -> str:
        return self.store.r.get(self.key("last")) or ""

    @guarded
    def step(self) -> int:
        """Fold the next batch; returns how many events it applied (0: none, or lost a race)."""
        r = self.store.r
        expect = r.get(self.key("last")) or ""
        events = r.xrange(self.store.key("events"), min=f"({expect or '0-0'}", count=self.batch)
        if not events:
            return 0
        states = self._load_states(events)
        customers = self._load_customers(events, states)
        contributions: list[Contribution] = []
        entries: list[Entry] = []
        touched: set[str] = set()
        for _, fields in events:
            tid = fields.get("ticket", "")
            if not tid:
                continue
            cust = fields.get("customer", "")
            known = customers.get(cust)
            new, last_ms, out, listed = apply(fields, states.get(tid), known, self.ctx)
            if new is not None:
                states[tid] = new
                touched.add(tid)
            if cust and last_ms is not None:
                customers[cust] = last_ms
            contributions += out
            entries += listed
        args = {
            "last_key": self.key("last"),
            "byfilter_key": self.key("byfilter"),
            "since_key": self.key("since"),
            "since": events[0][0].split("-")[0],
            "expect": expect,
            "new": events[-1][0],
            "incr": [[self.key(k), f, n] for (k, f), n in aggregate(contributions).items() if n],
            "hset": [[self.key("tk", t), states[t].to_fields(), TICKET_TTL_S] for t in touched],
            "rpush": [[self.key("list", e.day, e.kind), entry_json(e)] for e in entries],
        }
        if customers:
            args["hset"].append([self.key("cust"), {c: str(v) for c, v in customers.items()}, 0])
        applied = self._apply(keys=[], args=[json.dumps(args, ensure_ascii=False)])
        return len(events) if applied else 0

    def _load_states(self, events: list[tuple[str, dict[str, str]]]) -> dict[str, TicketState]:
        tids = sorted({f["ticket"] for _, f in events if f.get("ticket")})
        pipe = self.store.r.pipeline(transaction=False)
        for tid in tids:
            pipe.hgetall(self.key("tk", tid))
        replies = pipe.execute()
        states = {t: TicketState.from_fields(f) for t, f in zip(tids, replies, strict=True) if f}
        opened_here = {f["ticket"] for _, f in events if f.get("type") == "ticket_opened"}
        unknown = [t for t in tids if t not in states and t not in opened_here]
        if unknown:  # tickets that opened before the rollups began: start from the store
            pipe = self.store.r.pipeline(transaction=False)
            fields = ("queue", "channel", "segment", "region", "customer_id", "created_ms",
                      "status", "assignee", "sla_policy")  # fmt: skip
            for tid in unknown:
                pipe.hmget(self.store.key("ticket", tid), *fields)
            for tid, t in zip(unknown, pipe.execute(), strict=True):
                if t[0] is None:
                    continue
                states[tid] = TicketState(
                    queue=t[0] or "", channel=t[1] or "", segment=t[2] or "unknown",
                    region=t[3] or "", customer=t[4] or "", opened_ms=int(t[5] or 0),
                    status=t[6] or "", agent=t[7] or "", sla_policy=t[8] or "",
                )  # fmt: skip
        return states

    def _load_customers(
        self, events: list[tuple[str, dict[str, str]]], states: Mapping[str, TicketState]
    ) -> dict[str, int]:
        names = sorted({f["customer"] for _, f in events if f.get("customer")})
        if not names:
            return {}
        values = self.store.r.hmget(self.key("cust"), names)
        return {n: int(v) for n, v in zip(names, values, strict=True) if v}

    async def run(self, stop: asyncio.Event, interval: float = 0.5) -> None:
        """Background job: keep folding until stopped; Redis trouble is logged and retried."""
        while not stop.is_set():
            try:
                n = await asyncio.to_thread(self.step)
            except Exception as exc:  # keep the daemon up; the next round retries
                log.warning("rollups: %s", exc)
                n = 0
            if n:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval)

    def catch_up(self, limit: int = 1_000_000) -> int:
        """Fold everything there is now (CLI and tests); returns events applied."""
        total = 0
        while total < limit:
            n = self.step()
            if n == 0 and not self._behind():
                break
            total += n
        return total

    def _behind(self) -> bool:
        last = self.last_id() or "0-0"
        return bool(self.store.r.xrange(self.store.key("events"), min=f"({last}", count=1))


def rollups_for(daemon: Any) -> Rollups:
    return Rollups(daemon.runtime.store, Context.from_config(daemon.loaded.data))
