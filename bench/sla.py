"""SLA sweeper benchmark: a million running clocks in Redis, a window in which 100,000 fall due,
against a plain sorted-set poller doing the same work per step. It asserts what it measures.

    python bench/sla.py [--clocks 1000000] [--due 100000] [--window 5.0] [--rounds 3]

It starts its own redis-server on a free port (nothing shared is touched) and runs rounds,
sweeper round then poller round, each on a freshly emptied Redis with an equal load, so
machine noise (other work on the 2-core host) hits both sides alike.

Sweeper round, everything the service's own code: `--clocks` complaint tickets' clocks are
opened through `SlaClocks.open_many` (the intake write path, pipelined), `--due` of them timed
so that their first ladder step falls due within `--window` seconds, and fired by the
daemon's sweeper loop (`SlaClocks.run_sweeper`: claim buckets of ~100 tickets under a lease,
compute the transitions in Python, commit the batch in one Lua script, sla_commit.lua):

  phase 1 (real time): lateness = due time -> the commit that fired it, p50/p99;
  phase 2 (catch-up): the clock jumps past the same tickets' 80 % step (raise priority 1,
    tag sla_risk), all due at once; steps fired per second is the sweeper's throughput.

  Per batch the commit script (sla_commit.lua) checks each bucket's lease and reads its
  records in one HMGET; per ticket it checks the record's version, reads the ticket hash
  (HMGET), raises the priority and the score, adds the tag (JSON list) in one HSET, XADDs
  the sla_warned event to the events stream and keeps the per-queue counts; per bucket it
  writes the new packed states (version + 1) in one HSET and keeps the overdue index; at
  the end one ZADD per queue re-scores the tickets in its waiting ZSET and one HINCRBY
  counts the steps; each bucket is re-scored and released.

Poller round (the baseline the issue asks for: a plain sorted-set poller in Python and
Redis): one ZSET of every ticket's next due step (ticket -> ms) and a state hash (ticket ->
"<next step>|<the steps' due ms>"), `--clocks` of them with the same `--due` tickets due at
once, the same ticket hashes, fired by one loop that per batch of `--batch`:
ZRANGEBYSCORE the due ones; reads their ticket hashes (HMGET each) and states (one HMGET)
in one pipeline; computes in Python; and commits in one MULTI/EXEC: per step one HSET of
priority, score and tags on the ticket hash and one XADD of the same sla_warned event (same
fields); per batch one ZADD per queue's waiting ZSET, one HSET of the states (step + 1),
one ZADD of the next steps' due times and one HINCRBY of sla_warned. What it does not
do, and the sweeper does: leases and version checks (it is exactly once only as the single
poller it is here; two pollers would fire a step twice), the overdue index and per-queue
counts; its state is not the SLA clocks (no calendars, no pauses). So the comparison leans
its way.

Memory per clock is INFO used_memory after opening minus before, over N: the packed state in
its ~100-ticket bucket hash and that bucket's share of the due ZSET, everything the SLA
service keeps per running ticket. The tickets' own hashes (the ticket store) are written
afterwards, only for the due tickets, so the ladder actions have something to change.
Notify actions are left out of the ladder: the daemon sends each through dramatiq, outside
the commit. `--dramatiq` adds the old third figure: the same due load as dramatiq delayed
messages (one `send_with_options(delay=...)` per step) consumed by an in-process worker
(it only records lateness, no ladder actions: a floor, not a like-for-like).

Checked, exit status 1 on a miss (each printed as a "check:" line): every due step fired
exactly once on each side (the fired records, the events stream and P:stats all agree,
no other ticket fired, and one more sweep after each phase fires nothing), with the right
ladder actions (priority high, tags sla_watch then sla_risk); the sweeper's steps/s
(median over rounds) at least the poller's; lateness p99 under 1 s; under 200 bytes per
clock. `--quick` (a few seconds, for the suite) prints the two timing targets without
enforcing them. The last line is one JSON object.

Kept whole though over 500 lines: a benchmark is read top to bottom as one script, its
two sides and its checks together.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.benchkit import clean_up_on_signals, private_redis
from omnidesk.configload import parse_config
from omnidesk.model import Channel, Ticket
from omnidesk.sla.engine import SlaClocks
from omnidesk.sla.sweeper import Fired, describe
from omnidesk.store import Store

RIYADH = ZoneInfo("Asia/Riyadh")
CONFIG = """
sla_policies:
  complaint:
    first_response: 4h
    resolution: 5d
    ladder:
      - {at: 0.5, targets: [first_response], actions: [{tag: sla_watch}]}
      - {at: 0.8, actions: [{raise_priority: 1}, {tag: sla_risk}]}
      - {at: 1.0, actions: [{move_to: escalation}]}
queues:
  riyadh: {kind: branch, sla_policy: complaint}
  escalation: {kind: escalation}
default: {queue: riyadh, sla_policy: complaint}
"""
# Sunday 10:00 Riyadh: the window opens here; due tickets were opened 2 business hours before
V0 = datetime(2026, 1, 11, 10, tzinfo=RIYADH)
GROUPS = 1000  # due tickets are opened in this many groups spread over the window


def start_redis() -> tuple[subprocess.Popen[bytes], int, str]:
    workdir = tempfile.mkdtemp(prefix="bench-sla-")
    proc, port = private_redis(workdir)
    return proc, port, workdir


def used_memory(r: redis.Redis) -> int:
    return int(r.info("memory")["used_memory"])


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# ---------------------------------------------------------------- loading


def ticket(n: int, at: datetime) -> Ticket:
    return Ticket(
        id=f"OD-2026-{n:07d}",
        channel=Channel.WEB,
        account="web",
        customer_id="C-1",
        created_at=at,
        updated_at=at,
        queue="riyadh",
        sla_policy="complaint",
    )


def load(clocks: SlaClocks, n: int, due: int, window: float, stride: int = 1) -> list[str]:
    """Open n tickets: `due` spread so their first step falls in [V0, V0 + window], the rest
    an hour later (their first step is hours away). The due ones are every `stride`-th
    ticket: with 1 they fill whole buckets (tickets close in id were opened close in time, so
    they fall due together); with 10, one in ten of each claimed bucket is due. Returns the
    due tickets' ids."""
    due_numbers = [i * stride for i in range(due)]
    due_ids: list[str] = []
    per = max(1, -(-due // GROUPS))
    for g, start in enumerate(range(0, due, per)):
        opened = V0 - timedelta(hours=2) + timedelta(seconds=window * g / GROUPS)
        batch = [ticket(i, opened) for i in due_numbers[start : start + per]]
        clocks.open_many(batch, opened)
        due_ids += [t.id for t in batch]
    later = V0 + timedelta(hours=1)
    taken = set(due_numbers)
    rest = [i for i in range(n + due * (stride - 1)) if i not in taken][: n - due]
    for start in range(0, len(rest), 50_000):
        clocks.open_many((ticket(i, later) for i in rest[start : start + 50_000]), later)
    return due_ids


def ticket_hashes(store: Store, ids: list[str], tags: str = "[]") -> None:
    """Minimal ticket hashes (the ticket store's fields the ladder actions touch)."""
    pipe = store.r.pipeline(transaction=False)
    for i, tid in enumerate(ids):
        pipe.hset(store.key("ticket", tid), mapping={
            "queue": "riyadh", "priority": "normal", "status": "open", "channel": "web",
            "score": str(10**13 + 1), "created_ms": "1", "tags": tags,
        })  # fmt: skip
        if i % 5000 == 4999:
            pipe.execute()
    pipe.execute()


# ---------------------------------------------------------------- sweeping


class Recorder:
    """`SlaClocks.on_fired`: which (ticket, ladder step) fired, and its lateness: due time ->
    the (virtual) moment its batch was committed."""

    def __init__(self, now: Callable[[], datetime]) -> None:
        self.now = now
        self.values: list[float] = []
        self.fired: list[tuple[str, int]] = []
        self.expect = 0
        self.done = threading.Event()

    def __call__(self, fired: Fired) -> None:
        self.values.append(max(0.0, (self.now() - fired.due_at).total_seconds()))
        self.fired.append((fired.ticket, fired.index))
        if len(self.values) >= self.expect:
            self.done.set()


def run_sweeper(
    clocks: SlaClocks, seen: Recorder, expect: int, interval: float, timeout: float
) -> tuple[list[float], list[tuple[str, int]]]:
    """The daemon's own loop (`SlaClocks.run_sweeper`) until `expect` steps fired; returns
    their lateness and which steps they were."""
    seen.values, seen.fired, seen.expect = [], [], expect
    seen.done.clear()

    async def main() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(clocks.run_sweeper(stop, interval))
        await asyncio.to_thread(seen.done.wait, timeout)
        stop.set()
        await task

    asyncio.run(main())
    return seen.values, seen.fired


def exactly_once(fired: list[tuple[str, int]], ids: list[str], index: int) -> str | None:
    """None when `fired` is each of `ids` at ladder step `index` once and nothing else."""
    counts = Counter(fired)
    expected = {(tid, index) for tid in ids}
    twice = sum(1 for c in counts.values() if c > 1)
    missing = len(expected - counts.keys())
    extra = len(counts.keys() - expected)
    if twice or missing or extra:
        return f"step {index}: {missing} never fired, {twice} fired twice, {extra} unexpected"
    return None


def stream_steps(r: redis.Redis, key: str) -> Counter[tuple[str, str, str]]:
    """(type, ticket, step) of every event in the stream, counted."""
    out: Counter[tuple[str, str, str]] = Counter()
    last = "-"
    while True:
        page = r.xrange(key, min=last, count=10_000)
        if last != "-":
            page = page[1:]
        if not page:
            return out
        for _, f in page:
            out[(f[b"type"].decode(), f[b"ticket"].decode(), f[b"step"].decode())] += 1
        last = page[-1][0].decode()


def actions_applied(store: Store, ids: list[str]) -> str | None:
    """None when every ticket's hash shows the 50 % and 80 % steps' actions once each."""
    wrong = 0
    for start in range(0, len(ids), 10_000):
        pipe = store.r.pipeline(transaction=False)
        for tid in ids[start : start + 10_000]:
            pipe.hmget(store.key("ticket", tid), "priority", "tags")
        for priority, tags in pipe.execute():
            wrong += priority != "high" or json.loads(tags or "[]") != ["sla_watch", "sla_risk"]
    return f"{wrong} tickets lack priority high or tags [sla_watch, sla_risk]" if wrong else None


def events_agree(r: redis.Redis, key: str, ids: list[str], steps: list[str]) -> str | None:
    """None when the events stream holds one sla_warned event per ticket and step, no more."""
    seen = stream_steps(r, key)
    expected = {("sla_warned", tid, step) for tid in ids for step in steps}
    twice = sum(1 for c in seen.values() if c > 1)
    missing = len(expected - seen.keys())
    extra = len(seen.keys() - expected)
    if twice or missing or extra:
        return f"events: {missing} missing, {twice} twice, {extra} unexpected"
    return None


@dataclass
class Round:
    """One side's figures and findings in one round."""

    steps_per_s: float
    lateness: list[float] = field(default_factory=list)
    bytes_per_clock: float = float("nan")
    problems: list[str] = field(default_factory=list)


def sweeper_round(r: redis.Redis, url: str, cfg: Any, args: argparse.Namespace) -> Round:
    """Open the clocks, fire the first steps in real time, then the 80 % steps at once."""
    r.flushall()
    store = Store.from_url(url, "bsla")
    origin = [time.time()]  # wall time at which the virtual clock reads V0

    def now() -> datetime:
        return V0 + timedelta(seconds=time.time() - origin[0])

    seen = Recorder(now)
    clocks = SlaClocks(store, cfg, clock=now, batch=args.batch, on_fired=seen)
    n, due = args.clocks, args.due
    before = used_memory(r)
    t0 = time.time()
    due_ids = load(clocks, n, due, args.window, args.stride)
    load_s = time.time() - t0
    bytes_per_clock = (used_memory(r) - before) / n
    print(f"  sweeper: opened {n:,} clocks through SlaClocks.open_many in {load_s:.1f}s "
          f"({n / load_s:,.0f}/s); {bytes_per_clock:.1f} bytes per running ticket (packed "
          "state in a ~100-ticket bucket hash + the bucket's due-ZSET entry; INFO "
          "used_memory delta / N)")  # fmt: skip
    ticket_hashes(store, due_ids)

    # phase 1, real time: the first steps fall due over the window
    origin[0] = time.time() + 2.0
    lateness, fired1 = run_sweeper(clocks, seen, due, args.interval, timeout=120)
    print(f"  sweeper phase 1 (real time, {due / args.window:,.0f} steps/s falling due, "
          f"{args.interval * 1000:.0f} ms between sweeps): fired {len(fired1):,}; lateness "
          f"due -> committed p50 {pct(lateness, 0.5) * 1000:.1f} ms, "
          f"p99 {pct(lateness, 0.99) * 1000:.1f} ms, "
          f"max {max(lateness, default=0) * 1000:.1f} ms")  # fmt: skip

    clocks.sweep()  # as after phase 2 (`fired1` is the recorder's list until phase 2)

    # phase 2, catch-up: the clock jumps to 11:30, past every due ticket's 80 % step
    origin[0] = time.time() - 5400
    t0 = time.time()
    _, fired2 = run_sweeper(clocks, seen, due, args.interval, timeout=600)
    span = time.time() - t0
    result = Round(len(fired2) / span, lateness, bytes_per_clock)
    print(f"  sweeper phase 2 (catch-up, {due:,} steps due at once among {n:,} clocks): "
          f"fired {len(fired2):,} in {span:.2f}s -> {result.steps_per_s:,.0f} steps/s "
          f"(batch {args.batch})")  # fmt: skip
    clocks.sweep()  # one more sweep fires nothing: a step fired again would show in fired2
    counts = clocks.counts()
    problems = [
        exactly_once(fired1, due_ids, 0),
        exactly_once(fired2, due_ids, 1),
        actions_applied(store, due_ids),
        events_agree(r, store.key("events"), due_ids, ["0.5", "0.8"]),
        None if counts["warned"] == 2 * due else f"P:stats sla_warned {counts['warned']}",
        None if counts["held"] == 0 else f"{counts['held']} buckets still held",
    ]
    result.problems = [f"sweeper: {p}" for p in problems if p]
    store.r.close()
    clocks.rb.close()
    return result


# ---------------------------------------------------------------- the sorted-set poller

RANK = {"low": 0, "normal": 1, "high": 2, "urgent": 3}
RANK_NAME = {rank: name for name, rank in RANK.items()}
TICKET_FIELDS = ("queue", "priority", "score", "status", "assignee", "channel", "tags")


class ZsetPoller:
    """The baseline: one ZSET of due steps polled in batches, the ladder actions applied in
    Python and committed in one MULTI/EXEC per batch (see the module docstring)."""

    def __init__(self, store: Store, cfg: Any, policy: str, batch: int) -> None:
        self.store = store
        self.batch = batch
        self.policy = policy
        self.ladder = cfg.sla_policies[policy].ladder
        self.due_key = store.key("poll", "due")
        self.state_key = store.key("poll", "state")
        self.fired: list[tuple[str, int]] = []
        # each rung's event type and constant fields, as sla_commit.lua's templates
        self.events = [
            {
                "type": "sla_warned" if rung.at < 1.0 else "sla_breached",
                "flat": {
                    "target": "first_response",
                    "at": f"{rung.at:g}",
                    "step": f"{rung.at:g}",
                    "policy": policy,
                    "actions": "; ".join(describe(a) for a in rung.actions),
                },
            }
            for rung in self.ladder
        ]

    def load(self, n: int, due: int, now_ms: int) -> list[str]:
        """n tickets' next steps: `due` of them at step 1 (the 80 % step) due by `now_ms`,
        the rest at step 0 an hour later. Returns the due tickets' ids."""
        due_ids: list[str] = []
        pipe = self.store.r.pipeline(transaction=False)
        for i in range(n):
            tid = f"OD-2026-{i:07d}"
            if i < due:
                step, times = 1, [now_ms - 3_000_000, now_ms - 1_000, now_ms + 2_000_000]
                due_ids.append(tid)
            else:
                step, times = 0, [now_ms + 3_600_000, now_ms + 6_000_000, now_ms + 9_000_000]
            pipe.zadd(self.due_key, {tid: times[step]})
            pipe.hset(self.state_key, tid, f"{step}|{','.join(map(str, times))}")
            if i % 10_000 == 9_999:
                pipe.execute()
        pipe.execute()
        return due_ids

    def poll(self, now_ms: int) -> int:
        """One batch: take the due steps, apply them, commit; returns how many fired. Reads
        in one pipeline; the commit sends per step the ticket's HSET and its event's XADD,
        and per batch one ZADD per waiting queue, one HSET of states, one ZADD of next due
        times (a competent poller batches what it can)."""
        r = self.store.r
        tids = r.zrangebyscore(self.due_key, "-inf", now_ms, start=0, num=self.batch)
        if not tids:
            return 0
        pipe = r.pipeline(transaction=False)
        for tid in tids:
            pipe.hmget(self.store.key("ticket", tid), *TICKET_FIELDS)
        pipe.hmget(self.state_key, tids)
        *tickets, states = pipe.execute()
        tx = r.pipeline(transaction=True)
        waiting: dict[str, dict[str, int]] = {}
        next_states: dict[str, str] = {}
        next_due: dict[str, int] = {}
        finished: list[str] = []
        for tid, fields, state in zip(tids, tickets, states, strict=True):
            step_text, _, times_text = state.partition("|")
            step, times = int(step_text), [int(t) for t in times_text.split(",")]
            rung, event = self.ladder[step], self.events[step]
            queue, priority, score, status, assignee, channel, tags = fields
            changed, rescored = apply_rung(rung.actions, priority, score, tags)
            if rescored is not None and status in ("new", "open") and not assignee:
                waiting.setdefault(queue, {})[tid] = rescored
            if changed:
                tx.hset(self.store.key("ticket", tid), mapping=changed)
            due_ms = times[step]
            late_s = max(0.0, (now_ms - due_ms) / 1000)
            tx.xadd(self.store.key("events"), {
                "type": event["type"], "ticket": tid, "queue": queue or "",
                "channel": channel or "", "actor": "sla", "ts": str(now_ms),
                "due": datetime.fromtimestamp(due_ms / 1000, UTC).isoformat(),
                "late_s": f"{late_s:.3f}", "late": "1" if late_s > 5 else "0", **event["flat"],
            })  # fmt: skip
            next_states[tid] = f"{step + 1}|{times_text}"
            if step + 1 < len(times):
                next_due[tid] = times[step + 1]
            else:
                finished.append(tid)
            self.fired.append((tid, step))
        for queue, members in waiting.items():
            tx.zadd(self.store.key("queue", queue, "waiting"), members)
        tx.hset(self.state_key, mapping=next_states)
        if next_due:
            tx.zadd(self.due_key, next_due)
        if finished:
            tx.zrem(self.due_key, *finished)
        tx.hincrby(self.store.key("stats"), "sla_warned", len(tids))
        tx.execute()
        return len(tids)


def apply_rung(
    actions: list[Any], priority: str | None, score: str | None, tags: str | None
) -> tuple[dict[str, str], int | None]:
    """The ticket fields a rung's actions change, and the new urgency score when they
    changed the priority (None otherwise)."""
    rank, score_n = RANK.get(priority or "normal", 1), int(score or 0)
    tag_list = json.loads(tags or "[]")
    changed: dict[str, str] = {}
    rescored = None
    for action in actions:
        if action.raise_priority or action.set_priority:
            rank = (min(3, rank + action.raise_priority) if action.raise_priority
                    else RANK[str(action.set_priority)])  # fmt: skip
            score_n = (3 - rank) * 10**13 + score_n % 10**13
            changed["priority"], changed["score"] = RANK_NAME[rank], str(score_n)
            rescored = score_n
        elif action.tag:
            if action.tag not in tag_list:
                tag_list.append(action.tag)
                changed["tags"] = json.dumps(tag_list, separators=(",", ":"))
        else:
            raise NotImplementedError(f"the poller does not apply {action}")
    return changed, rescored


def poller_round(r: redis.Redis, url: str, cfg: Any, args: argparse.Namespace) -> Round:
    """The same clocks and due steps as a sorted-set poller's load, fired at once."""
    r.flushall()
    store = Store.from_url(url, "bsla")
    poller = ZsetPoller(store, cfg, "complaint", args.batch)
    now_ms = int(V0.timestamp() * 1000)
    before = used_memory(r)
    due_ids = poller.load(args.clocks, args.due, now_ms)
    bytes_per_clock = (used_memory(r) - before) / args.clocks
    ticket_hashes(store, due_ids, tags='["sla_watch"]')  # as the sweeper's phase 1 left them
    t0 = time.time()
    fired = 0
    while got := poller.poll(now_ms):
        fired += got
    span = time.time() - t0
    result = Round(fired / span, bytes_per_clock=bytes_per_clock)
    print(f"  poller: {args.clocks:,} clocks in one ZSET + state hash ({bytes_per_clock:.1f} "
          f"bytes each); catch-up fired {fired:,} in {span:.2f}s -> "
          f"{result.steps_per_s:,.0f} steps/s (batch {args.batch})")  # fmt: skip
    warned = int(store.r.hget(store.key("stats"), "sla_warned") or 0)
    problems = [
        exactly_once(poller.fired, due_ids, 1),
        actions_applied(store, due_ids),
        events_agree(r, store.key("events"), due_ids, ["0.8"]),
        None if warned == args.due else f"P:stats sla_warned {warned}",
    ]
    result.problems = [f"poller: {p}" for p in problems if p]
    store.r.close()
    return result


# ---------------------------------------------------------------- the dramatiq baseline


def dramatiq_baseline(
    port: int, due: int, window: float, threads: int, timeout: float
) -> tuple[int, list[float], float, float]:
    import dramatiq
    from dramatiq.brokers.redis import RedisBroker

    broker = RedisBroker(url=f"redis://127.0.0.1:{port}/1", namespace="bsla-dramatiq")
    dramatiq.set_broker(broker)
    lateness: list[float] = []
    lock = threading.Lock()
    done = threading.Event()

    @dramatiq.actor(broker=broker, queue_name="sla_steps", max_retries=0)
    def fire(clock: int, step: int, due_s: float) -> None:
        late = max(0.0, time.time() - due_s)
        with lock:
            lateness.append(late)
            if len(lateness) >= due:
                done.set()

    # sending is slow (one round trip per message): time a sample, then leave room for it
    t0 = time.time()
    sample = min(2000, due)
    for i in range(sample):
        fire.send_with_options(args=(i, 0, t0 + 3600), delay=3_600_000)
    rate = sample / max(1e-6, time.time() - t0)
    broker.flush_all()
    start = time.time() + due / rate * 1.4 + 2.0
    rng = random.Random(7)
    sent_at = time.time()
    for i in range(due):
        due_s = start + rng.random() * window
        fire.send_with_options(args=(i, 0, due_s), delay=max(0, int((due_s - time.time()) * 1000)))
    send_s = time.time() - sent_at
    print(f"baseline: sent {due} delayed messages in {send_s:.1f}s ({due / send_s:,.0f}/s); "
          f"window opens {start - time.time():+.1f}s after the last send")  # fmt: skip
    worker = dramatiq.Worker(broker, worker_threads=threads, worker_timeout=100)
    worker.start()
    done.wait(timeout=max(1.0, start + window - time.time()) + timeout)
    end = time.time()
    worker.stop(timeout=5_000)
    broker.flush_all()
    broker.close()
    return len(lateness), lateness, end - start, end


# ---------------------------------------------------------------- main


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clocks", type=int, default=1_000_000)
    ap.add_argument("--due", type=int, default=None, help="default: min(100000, clocks / 10)")
    ap.add_argument(
        "--window", type=float, default=5.0, help="seconds over which they fall due (5 s: 20k/s)"
    )
    ap.add_argument(
        "--interval", type=float, default=0.25, help="pause between sweeps (s), as the daemon"
    )
    ap.add_argument("--batch", type=int, default=1000, help="tickets per claim/commit")
    ap.add_argument(
        "--stride",
        type=int,
        default=1,
        help="every stride-th ticket falls due (10: one in ten of each bucket)",
    )
    ap.add_argument("--rounds", type=int, default=3, help="sweeper round, poller round, ...")
    ap.add_argument("--dramatiq", action="store_true", help="add the dramatiq figure")
    ap.add_argument("--max-p99", type=float, default=1.0, help="lateness target (s)")
    ap.add_argument("--max-bytes", type=float, default=200.0, help="bytes per clock target")
    ap.add_argument(
        "--quick",
        action="store_true",
        help="a few seconds (tests): timing targets are printed, not enforced",
    )
    ap.add_argument("--threads", type=int, default=8, help="dramatiq worker threads")
    args = ap.parse_args()
    clean_up_on_signals()
    if args.quick:
        args.clocks, args.due, args.window, args.rounds = 20_000, 1000, 0.5, 1
    args.due = args.due if args.due is not None else min(100_000, max(1, args.clocks // 10))
    cfg = parse_config(CONFIG, Path("bench.yaml")).data
    proc, port, workdir = start_redis()
    sweeps: list[Round] = []
    polls: list[Round] = []
    baseline: float | None = None
    try:
        r = redis.Redis(port=port)
        url = f"redis://127.0.0.1:{port}/0"
        for k in range(args.rounds):
            print(f"round {k + 1} of {args.rounds} (load average {os.getloadavg()[0]:.1f}):")
            sweeps.append(sweeper_round(r, url, cfg, args))
            polls.append(poller_round(r, url, cfg, args))
        if args.dramatiq:
            r.flushall()
            bfired, blate, bspan, _ = dramatiq_baseline(
                port, args.due, 0.0, args.threads, timeout=600
            )
            baseline = bfired / bspan if bspan > 0 else float("nan")
            print(f"dramatiq delayed messages ({args.threads} worker threads, the same "
                  f"{args.due:,} steps due at once, no ladder actions): {bfired:,} in "
                  f"{bspan:.2f}s -> {baseline:,.0f} steps/s; lateness p50 "
                  f"{pct(blate, 0.5):.3f}s p99 {pct(blate, 0.99):.3f}s")  # fmt: skip
        r.close()
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)

    steps_per_s = median([x.steps_per_s for x in sweeps])
    poller_per_s = median([x.steps_per_s for x in polls])
    ratio = steps_per_s / poller_per_s
    lateness = [v for x in sweeps for v in x.lateness]
    p50, p99 = pct(lateness, 0.5), pct(lateness, 0.99)
    bytes_per_clock = median([x.bytes_per_clock for x in sweeps])
    print(f"sweeper {steps_per_s:,.0f} steps/s, poller {poller_per_s:,.0f} steps/s (medians of "
          f"{args.rounds} rounds: {', '.join(f'{x.steps_per_s:,.0f}' for x in sweeps)} vs "
          f"{', '.join(f'{x.steps_per_s:,.0f}' for x in polls)}): {ratio:.2f}x")  # fmt: skip
    loadavg = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"machine: {os.cpu_count()} cores, load average now {loadavg} (other work on the "
          "host slows every figure above)")  # fmt: skip
    timing = "" if not args.quick else " (--quick: not enforced)"
    checks = [
        ("every due step fired exactly once, with its ladder actions, on both sides",
         not any(x.problems for x in (*sweeps, *polls)), True),
        (f"sweeper {steps_per_s:,.0f} steps/s >= poller {poller_per_s:,.0f}{timing}",
         steps_per_s >= poller_per_s, not args.quick),
        (f"lateness p99 {p99:.3f} s < {args.max_p99:g} s{timing}", p99 < args.max_p99,
         not args.quick),
        (f"{bytes_per_clock:.1f} bytes per clock < {args.max_bytes:g}",
         bytes_per_clock < args.max_bytes, True),
    ]  # fmt: skip
    for problem in (p for x in (*sweeps, *polls) for p in x.problems):
        print(f"  {problem}")
    for text, ok, _ in checks:
        print(f"check: {text}: {'ok' if ok else 'MISSED'}")
    passed = all(ok for _, ok, enforced in checks if enforced)
    print(json.dumps({
        "steps_per_s": round(steps_per_s, 1),
        "zset_poller_steps_per_s": round(poller_per_s, 1),
        "ratio_vs_poller": round(ratio, 2),
        "baseline_steps_per_s": None if baseline is None else round(baseline, 1),
        "lateness_p50_s": round(p50, 4),
        "lateness_p99_s": round(p99, 4),
        "bytes_per_clock": round(bytes_per_clock, 1),
        "fired_exactly_once": checks[0][1],
        "checks_passed": passed,
    }))  # fmt: skip
    return 0 if passed else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    raise SystemExit(main())
