"""SLA sweeper benchmark: a million running clocks in Redis, a window in which 100,000 fall due.

    python bench/sla.py [--clocks 1000000] [--due 100000] [--window 5.0] [--stride 1]

Everything here is the service's own code: clocks are opened through `SlaClocks.open_many`
(the intake write path, pipelined) and fired by `SlaClocks.sweep` (claim a batch under a
lease, compute the transitions, commit the batch in one script with the ladder actions and
events), on the state format the daemon stores. It starts its own redis-server on a free port
(nothing shared is touched), opens `--clocks` complaint tickets, `--due` of them timed so that
their first ladder step falls due within `--window` seconds, then:

  phase 1 (real time): the daemon's sweeper loop (`SlaClocks.run_sweeper`) runs while the
    steps fall due; lateness = due time -> the commit that fired it, p50/p99;
  phase 2 (catch-up): the clock jumps to when the same tickets' next step (80 %: raise
    priority, tag) is due all at once; steps fired per second = the sweeper's throughput.

Memory per clock is INFO used_memory after opening minus before, over N: the packed state in
its ~100-ticket bucket hash and that bucket's share of the due ZSET, everything the SLA
service keeps per running ticket (no ticket hashes exist yet, so no per-queue counts). The
tickets' own hashes (the ticket store, not the SLA service) are written afterwards, only for
the tickets that fall due, so the ladder actions have something to change. Notify actions
are left out of the ladder: the daemon sends each through dramatiq, outside the commit.
The baseline, in the same run, is the same due load as dramatiq delayed messages (one
`send_with_options(delay=...)` per step) consumed by an in-process worker.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from omnidesk.configload import parse_config
from omnidesk.model import Channel, Ticket
from omnidesk.store import Store
from omnidesk.sweeper import Fired, SlaClocks

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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_redis() -> tuple[subprocess.Popen[bytes], int, str]:
    port, workdir = free_port(), tempfile.mkdtemp(prefix="bench-sla-")
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no",
         "--dir", workdir, "--bind", "127.0.0.1"],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    client = redis.Redis(port=port)
    for _ in range(100):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
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


def ticket_hashes(store: Store, ids: list[str]) -> None:
    """Minimal ticket hashes (the ticket store's fields the ladder actions touch)."""
    pipe = store.r.pipeline(transaction=False)
    for i, tid in enumerate(ids):
        pipe.hset(store.key("ticket", tid), mapping={
            "queue": "riyadh", "priority": "normal", "status": "open", "channel": "web",
            "score": str(10**13 + 1), "created_ms": "1", "tags": "[]",
        })  # fmt: skip
        if i % 5000 == 4999:
            pipe.execute()
    pipe.execute()


# ---------------------------------------------------------------- sweeping


class Lateness:
    """`SlaClocks.on_fired`: due time -> the (virtual) moment its batch was committed."""

    def __init__(self, now: Callable[[], datetime]) -> None:
        self.now = now
        self.values: list[float] = []
        self.expect = 0
        self.done = threading.Event()

    def __call__(self, fired: Fired) -> None:
        self.values.append(max(0.0, (self.now() - fired.due_at).total_seconds()))
        if len(self.values) >= self.expect:
            self.done.set()


def run_sweeper(clocks: SlaClocks, seen: Lateness, expect: int, interval: float, timeout: float):  # type: ignore[no-untyped-def]
    """The daemon's own loop (`SlaClocks.run_sweeper`) until `expect` steps fired."""
    seen.values, seen.expect = [], expect
    seen.done.clear()

    async def main() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(clocks.run_sweeper(stop, interval))
        await asyncio.to_thread(seen.done.wait, timeout)
        stop.set()
        await task

    asyncio.run(main())
    return len(seen.values), seen.values


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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clocks", type=int, default=1_000_000)
    ap.add_argument("--due", type=int, default=None, help="default: min(100000, clocks / 10)")
    ap.add_argument(
        "--window", type=float, default=5.0, help="seconds over which they fall due (5 s: 20k/s)"
    )
    ap.add_argument(
        "--interval",
        type=float,
        default=0.25,
        help="pause between sweeps (s), as the daemon",
    )
    ap.add_argument("--batch", type=int, default=1000, help="tickets per claim/commit")
    ap.add_argument(
        "--stride",
        type=int,
        default=1,
        help="every stride-th ticket falls due (10: one in ten of each bucket)",
    )
    ap.add_argument("--threads", type=int, default=8, help="baseline worker threads")
    ap.add_argument("--no-baseline", action="store_true")
    args = ap.parse_args()
    n = args.clocks
    due = args.due if args.due is not None else min(100_000, max(1, n // 10))
    proc, port, workdir = start_redis()
    try:
        r = redis.Redis(port=port)
        store = Store.from_url(f"redis://127.0.0.1:{port}/0", "bsla")
        cfg = parse_config(CONFIG, Path("bench.yaml")).data
        origin = [time.time()]  # wall time at which the virtual clock reads V0

        def now() -> datetime:
            return V0 + timedelta(seconds=time.time() - origin[0])

        seen = Lateness(now)
        clocks = SlaClocks(store, cfg, clock=now, batch=args.batch, on_fired=seen)
        before = used_memory(r)
        t0 = time.time()
        due_ids = load(clocks, n, due, args.window, args.stride)
        load_s = time.time() - t0
        bytes_per_clock = (used_memory(r) - before) / n
        print(f"opened {n:,} tickets' clocks through SlaClocks.open_many in {load_s:.1f}s "
              f"({n / load_s:,.0f}/s, pipelined); {due:,} fall due within "
              f"{args.window}s")  # fmt: skip
        print(f"redis memory: {bytes_per_clock:.1f} bytes per running ticket (packed state in "
              "a ~100-ticket bucket hash + the bucket's due-ZSET entry; INFO used_memory "
              "delta / N)")  # fmt: skip
        ticket_hashes(store, due_ids)

        # phase 1, real time: the first steps fall due over the window
        origin[0] = time.time() + 2.0
        fired, lateness = run_sweeper(clocks, seen, due, args.interval, timeout=120)
        p50, p99 = pct(lateness, 0.5), pct(lateness, 0.99)
        print(f"phase 1 (real time, {due / args.window:,.0f} steps/s falling due, the daemon's "
              f"sweeper loop, {args.interval * 1000:.0f} ms between sweeps): fired {fired:,}; "
              "lateness due -> "
              f"committed p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms, "
              f"max {max(lateness, default=0) * 1000:.1f} ms")  # fmt: skip

        # phase 2, catch-up: the clock jumps to 11:30, past every due ticket's 80 % step
        origin[0] = time.time() - 5400
        t0 = time.time()
        fired2, _ = run_sweeper(clocks, seen, due, args.interval, timeout=600)
        span = time.time() - t0
        steps_per_s = fired2 / span
        print(f"phase 2 (catch-up, {due:,} steps due at once among {n:,} clocks): fired "
              f"{fired2:,} in {span:.2f}s -> {steps_per_s:,.0f} steps/s "
              f"(batch {args.batch})")  # fmt: skip
        sample = store.r.hmget(store.key("ticket", due_ids[0]), "priority", "tags")
        counts = clocks.counts()
        print(f"check: {due_ids[0]} priority {sample[0]}, tags {sample[1]}; "
              f"warned {counts['warned']:,} "
              f"(expected {2 * due:,}); held {counts['held']}")  # fmt: skip

        baseline = float("nan")
        if not args.no_baseline:
            bfired, blate, bspan, _ = dramatiq_baseline(port, due, 0.0, args.threads, timeout=600)
            baseline = bfired / bspan if bspan > 0 else float("nan")
            print(f"baseline (dramatiq delayed messages, {args.threads} worker threads, the same "
                  f"{due:,} steps due at once): {bfired:,} in {bspan:.2f}s -> "
                  f"{baseline:,.0f} steps/s; lateness p50 {pct(blate, 0.5):.3f}s "
                  f"p99 {pct(blate, 0.99):.3f}s")  # fmt: skip
            print(f"ratio sweeper / baseline: {steps_per_s / baseline:.1f}x")
        loadavg = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        print(f"machine: {os.cpu_count()} cores, load average now {loadavg} (other work on "
              "the host "
              "slows every figure above)")  # fmt: skip
        store.r.close()
        clocks.rb.close()
        r.close()
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps({
        "steps_per_s": round(steps_per_s, 1),
        "baseline_steps_per_s": round(baseline, 1),
        "lateness_p50_s": round(p50, 4),
        "lateness_p99_s": round(p99, 4),
        "bytes_per_clock": round(bytes_per_clock, 1),
    }))  # fmt: skip
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    raise SystemExit(main())
