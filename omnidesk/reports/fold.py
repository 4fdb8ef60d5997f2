"""How one event changes the figures: the rollup fold. Pure, no I/O.

`apply(event, ticket_state, customer_last_ms, ctx)` returns the ticket's new state, the
customer's new "last ticket opened" time, and the contributions: (day, metric, dims, amount)
increments that `rollup` fans out into Redis hashes. Dimensions are
(queue, channel, segment, region, agent) as they stand when the event happens, so a ticket
transferred from A to B counts its opening in A and its resolution in B.

The event fields relied on are listed in docs/reports.md; anything else is ignored.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Mapping
from copy import copy
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from omnidesk.model import SYSTEM_ACTORS

DIMS = ("queue", "channel", "segment", "region", "agent")
OPEN = frozenset({"new", "open", "pending_customer"})
DONE = frozenset({"resolved", "closed"})
SLA_TARGETS = ("first_response", "next_response", "resolution")
# Upper bounds (seconds) of the duration histogram buckets; the last bucket is "inf".
BUCKETS = (60, 300, 900, 1800, 3600, 7200, 14400, 28800, 86400, 172800, 259200, 432000,
           604800, 1209600, 2592000)  # fmt: skip
BUCKET_LABELS = (*(str(b) for b in BUCKETS), "inf")
REPEAT_WINDOW_MS = 30 * 86400 * 1000  # a ticket within 30 days of the customer's last one
LIST_KINDS = ("breached", "default", "comment")
TOTAL_ONLY = ("opened_h:", "rule:")  # metrics broken down by day only, not per dimension
DAY_METRICS = frozenset({"opened", "resolved", "backlog"})  # the only per-day series shown
STATUS_EVENTS = {"resolved": "resolved", "closed": "closed", "reopened": "open"}
# Bumped when what the fold counts changes, so stored folded days (db.report_days) refold.
FOLD_VERSION = 2


def person(actor: str | None) -> str:
    """The actor if it is a person (an agent or supervisor), else ""."""
    return "" if (actor or "") in SYSTEM_ACTORS else str(actor)

Dims = tuple[str, str, str, str, str]


def bucket_of(seconds: float) -> str:
    return BUCKET_LABELS[bisect_left(BUCKETS, seconds)]


def clean(value: Any) -> str:
    """A dimension value safe inside a rollup field name (``|`` separates dimensions)."""
    return str(value or "").replace("|", "/")


class Contribution(NamedTuple):
    day: str  # local date YYYY-MM-DD
    metric: str
    dims: Dims
    amount: int


class Entry(NamedTuple):
    """A listed item (breached ticket, default-queue ticket, CSAT comment) with its dims."""

    day: str
    kind: str  # breached | default | comment
    dims: Dims
    data: dict[str, str]


@dataclass
class TicketState:
    """What the fold remembers of one ticket between its events."""

    queue: str = ""
    channel: str = ""
    segment: str = "unknown"
    region: str = ""  # the ticket's own region (the queue's region wins, see Context.region)
    customer: str = ""
    opened_ms: int = 0  # 0: not known (the consumer started after the ticket opened)
    status: str = ""  # "" unknown: not counted in the backlog
    agent: str = ""
    sla_policy: str = ""
    responded: bool = False
    resolved: bool = False
    rated: bool = False
    warned: frozenset[str] = field(default_factory=frozenset)
    breached: frozenset[str] = field(default_factory=frozenset)

    def to_fields(self) -> dict[str, str]:
        return {
            "q": self.queue,
            "c": self.channel,
            "s": self.segment,
            "r": self.region,
            "cu": self.customer,
            "o": str(self.opened_ms),
            "st": self.status,
            "a": self.agent,
            "p": self.sla_policy,
            "f": ("R" if self.responded else "")
            + ("S" if self.resolved else "")
            + ("C" if self.rated else ""),
            "w": ",".join(sorted(self.warned)),
            "b": ",".join(sorted(self.breached)),
        }

    @classmethod
    def from_fields(cls, f: Mapping[str, str]) -> TicketState:
        flags = f.get("f", "")
        return cls(
            queue=f.get("q", ""),
            channel=f.get("c", ""),
            segment=f.get("s", "unknown") or "unknown",
            region=f.get("r", ""),
            customer=f.get("cu", ""),
            opened_ms=int(f.get("o") or 0),
            status=f.get("st", ""),
            agent=f.get("a", ""),
            sla_policy=f.get("p", ""),
            responded="R" in flags,
            resolved="S" in flags,
            rated="C" in flags,
            warned=frozenset(x for x in f.get("w", "").split(",") if x),
            breached=frozenset(x for x in f.get("b", "").split(",") if x),
        )


BusinessSeconds = Callable[[str, int, int], int]  # (queue, start_ms, end_ms) -> seconds


@dataclass(frozen=True)
class Context:
    """What the fold needs from the config: time zone, queue regions, calendars, policies."""

    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo("Asia/Riyadh"))
    queue_regions: Mapping[str, str] = field(default_factory=dict)
    policy_targets: Mapping[str, frozenset[str]] = field(default_factory=dict)
    business: BusinessSeconds | None = None  # None: business time = wall time
    # memo tables (minute -> local day/hour, raw dims -> cleaned dims): the fold's hot path
    _minutes: dict[int, tuple[str, int]] = field(default_factory=dict, compare=False, repr=False)
    _dims: dict[tuple[str, ...], Dims] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_config(cls, cfg: Any) -> Context:
        from omnidesk.calendar import NATIONAL, build_calendars

        calendars = build_calendars(cfg.calendars)
        national = calendars.get(NATIONAL) or next(iter(calendars.values()))
        by_queue = {name: calendars.get(q.calendar, national) for name, q in cfg.queues.items()}

        def business(queue: str, a_ms: int, b_ms: int) -> int:
            cal = by_queue.get(queue, national)
            return int(cal.seconds_between(a_ms / 1000, b_ms / 1000))

        targets = {
            name: frozenset(t for t in SLA_TARGETS if getattr(p, t) is not None)
            for name, p in cfg.sla_policies.items()
        }
        tz = getattr(national, "tz", None) or ZoneInfo("Asia/Riyadh")
        regions = {name: q.region for name, q in cfg.queues.items() if q.region}
        return cls(tz=tz, queue_regions=regions, policy_targets=targets, business=business)

    def local(self, ts_ms: int) -> datetime:
        return datetime.fromtimestamp(ts_ms / 1000, UTC).astimezone(self.tz)

    def day_hour(self, ts_ms: int) -> tuple[str, int]:
        minute = ts_ms // 60_000
        hit = self._minutes.get(minute)
        if hit is None:
            if len(self._minutes) > 500_000:
                self._minutes.clear()
            at = self.local(minute * 60_000)
            hit = self._minutes[minute] = (at.strftime("%Y-%m-%d"), at.hour)
        return hit

    def day(self, ts_ms: int) -> str:
        return self.day_hour(ts_ms)[0]

    def region(self, queue: str, ticket_region: str) -> str:
        return self.queue_regions.get(queue) or ticket_region or ""

    def business_seconds(self, queue: str, a_ms: int, b_ms: int) -> int:
        if self.business is None:
            return max(0, (b_ms - a_ms) // 1000)
        return max(0, self.business(queue, a_ms, b_ms))

    def has_target(self, policy: str, target: str) -> bool:
        """Does the ticket's SLA policy set this target? Unknown policies: yes if named."""
        if not policy:
            return False
        known = self.policy_targets.get(policy)
        return True if known is None else target in known


def dims_of(state: TicketState, ctx: Context, agent: str | None = None) -> Dims:
    key = (state.queue, state.channel, state.segment, state.region,
           state.agent if agent is None else agent)  # fmt: skip
    hit = ctx._dims.get(key)
    if hit is None:
        q, ch, seg, reg, who = key
        hit = (clean(q), clean(ch), clean(seg), clean(ctx.region(q, reg)), clean(who))
        if len(ctx._dims) > 100_000:
            ctx._dims.clear()
        ctx._dims[key] = hit
    return hit


def apply(
    event: Mapping[str, str],
    state: TicketState | None,
    customer_last_ms: int | None,
    ctx: Context,
) -> tuple[TicketState | None, int | None, list[Contribution], list[Entry]]:
    """Fold one event. Returns (ticket state, customer's last-opened ms, contributions, entries)."""
    kind = event.get("type", "")
    tid = event.get("ticket", "")
    if not tid:
        return state, customer_last_ms, [], []
    ts = _int(event.get("ts"))
    day, hour = ctx.day_hour(ts)
    out: list[Contribution] = []
    entries: list[Entry] = []
    old = state
    if state is None:
        state = TicketState(queue=event.get("queue", ""), channel=event.get("channel", ""))
    state = copy(state)
    if event.get("queue"):
        state.queue = event["queue"]

    def add(metric: str, amount: int = 1, agent: str | None = None) -> None:
        out.append(Contribution(day, metric, dims_of(state, ctx, agent), amount))

    if kind == "ticket_opened":
        if old is not None and old.opened_ms:
            return old, customer_last_ms, [], []  # replayed: already counted
        state.channel = event.get("channel", "") or state.channel
        state.segment = event.get("segment") or "unknown"
        state.region = event.get("region", "")
        state.customer = event.get("customer", "")
        state.opened_ms = _int(event.get("created")) or ts
        state.status = "new"
        add("opened")
        add(f"opened_h:{hour:02d}")
        if state.customer:
            if customer_last_ms is not None and ts - customer_last_ms <= REPEAT_WINDOW_MS:
                add("repeat_30d")
            customer_last_ms = ts
    elif kind == "routed":
        rule = event.get("rule", "")
        state.sla_policy = event.get("sla_policy", "")
        if rule:
            add(f"rule:{clean(rule)}")
        else:
            add("default_queue")
            entries.append(Entry(day, "default", dims_of(state, ctx), {"ticket": tid}))
    elif kind == "assigned":
        state.agent = event.get("agent", "") or person(event.get("actor"))
        add("assigned")
    elif kind in ("transferred", "escalated"):
        source = event.get("from", "")
        if old is not None and source and source != state.queue:
            moved_from = replace(state, queue=source)
            out.append(Contribution(day, "transfers_out", dims_of(moved_from, ctx), 1))
        state.agent = ""  # a move unassigns (move.lua)
        add("transfers", agent=person(event.get("actor")))  # to the agent who made it
        if kind == "escalated":
            add("escalated")
    elif kind == "replied" and event.get("actor", "") not in SYSTEM_ACTORS - {""}:
        agent = event.get("actor", "")  # the CSAT survey and other system sends are no reply
        add("replies", agent=agent)
        if not state.responded:
            state.responded = True
            if state.opened_ms:
                wall = max(0, (ts - state.opened_ms) // 1000)
                biz = ctx.business_seconds(state.queue, state.opened_ms, ts)
                add("frt_n", agent=agent)
                add("frt_w", wall, agent=agent)
                add("frt_b", biz, agent=agent)
                add(f"frt_wh:{bucket_of(wall)}", agent=agent)
                add(f"frt_bh:{bucket_of(biz)}", agent=agent)
            if ctx.has_target(state.sla_policy, "first_response"):
                add(f"sla:first_response:{_outcome(state, 'first_response')}", agent=agent)
    elif kind in ("status_changed", *STATUS_EVENTS):
        new = event.get("to", "") if kind == "status_changed" else STATUS_EVENTS[kind]
        before = state.status or event.get("from", "")
        if new:
            if before in OPEN and new in DONE:
                add("resolved")
                if not state.resolved:
                    state.resolved = True
                    if state.opened_ms:
                        wall = max(0, (ts - state.opened_ms) // 1000)
                        biz = ctx.business_seconds(state.queue, state.opened_ms, ts)
                        add("res_n")
                        add("res_w", wall)
                        add("res_b", biz)
                        add(f"res_wh:{bucket_of(wall)}")
                        add(f"res_bh:{bucket_of(biz)}")
                    if ctx.has_target(state.sla_policy, "resolution"):
                        add(f"sla:resolution:{_outcome(state, 'resolution')}")
            elif before in DONE and new in OPEN:
                add("reopened")
            state.status = new
    elif kind in ("sla_warned", "sla_breached"):
        target = event.get("target", "") or "unknown"
        if kind == "sla_warned":
            state.warned = state.warned | {target}
            add(f"sla_warn_ev:{clean(target)}")
        else:
            state.breached = state.breached | {target}
            add(f"sla_breach_ev:{clean(target)}")
            data = {"ticket": tid, "target": target, "late_s": event.get("late_s", "")}
            entries.append(Entry(day, "breached", dims_of(state, ctx), data))
    elif kind == "csat":
        score = _int(event.get("score"))
        if 1 <= score <= 5 and not state.rated:
            state.rated = True
            add("csat_n")
            add("csat_sum", score)
            add(f"csat:{score}")
            comment = event.get("comment", "")
            if comment:
                data = {"ticket": tid, "score": str(score), "comment": comment[:1000]}
                entries.append(Entry(day, "comment", dims_of(state, ctx), data))

    out += _backlog_moves(day, old, state, ctx)
    return state, customer_last_ms, out, entries


def _backlog_moves(
    day: str, old: TicketState | None, new: TicketState, ctx: Context
) -> list[Contribution]:
    """-1 where the ticket stood, +1 where it stands, when it opened, closed or moved."""
    was = old is not None and old.status in OPEN
    now = new.status in OPEN
    before = dims_of(old, ctx) if old is not None else None
    after = dims_of(new, ctx)
    if was == now and (not now or before == after):
        return []
    moves = []
    if was and before is not None:
        moves.append(Contribution(day, "backlog", before, -1))
    if now:
        moves.append(Contribution(day, "backlog", after, 1))
    return moves


def _outcome(state: TicketState, target: str) -> str:
    if target in state.breached:
        return "breached"
    return "warned" if target in state.warned else "met"


def _int(value: Any) -> int:
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return 0
