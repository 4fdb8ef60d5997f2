"""SLA sweeper benchmark: a million running clocks in Redis, a window in which 100,000 fall due.

    python bench/sla.py [--clocks 1000000] [--due 100000] [--window 2.0]

Starts its own redis-server on a free port (nothing shared is touched), loads `--clocks`
running clocks, then sweeps in real time while `--due` of them fall due within `--window`
seconds, and reports steps fired per second, lateness (due time -> fired) p50/p99 and Redis
memory per clock. The baseline, in the same run, is the same due load as dramatiq delayed
messages (one `send_with_options(delay=...)` per step) consumed by an in-process worker.

What one running clock costs in Redis here (the hot, compact form):
  - one due-ZSET entry: member = the ticket's short id, score = next step due (ms);
  - one field in a bucketed hash (100 clocks per hash, so listpack-encoded): policy, steps
    fired, and the ladder's due times as base-36 ms offsets (~24 bytes).
By default one Lua script pops, fires and re-scores a batch (fire first, notify after, as
omnidesk.sweeper marks a step fired before notifying); `--leased` claims under a lease and
commits in a second script instead, the service's two-phase shape.
The service's full SlaState JSON (pauses, history, explain) is NOT part of that figure; its
size is printed alongside, and `--real N` times the full service path (SlaClocks.sweep:
claim, decode, fire one step per Lua script, release) on N tickets for an honest comparison.
"""

from __future__ import annotations

import argparse
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
from datetime import UTC, datetime, timedelta
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

BUCKET = 100  # clocks per hash: under hash-max-listpack-entries (128), so compact
P = "bsla"

CLAIM = """
-- claim up to ARGV[3] due clocks: the score becomes the lease; return id, due, record
local due = KEYS[1]
local lease = tonumber(ARGV[1]) + tonumber(ARGV[2])
local got = redis.call("ZRANGEBYSCORE", due, "-inf", ARGV[1], "WITHSCORES", "LIMIT", 0,
                       tonumber(ARGV[3]))
local out = {}
for i = 1, #got, 2 do
  local id = got[i]
  redis.call("ZADD", due, lease, id)
  local rec = redis.call("HGET", ARGV[4] .. math.floor(tonumber(id) / 100), id)
  out[#out + 1] = id
  out[#out + 1] = got[i + 1]
  out[#out + 1] = rec or ""
end
return out
"""

FIRE = """
-- pop up to ARGV[2] due clocks and fire their step in one atomic script: advance the
-- record, re-score to the next step (or drop). Returns id, due score pairs of what fired;
-- the caller then runs notifications (the same fire-first order as omnidesk.sweeper).
local due = KEYS[1]
local got = redis.call("ZRANGEBYSCORE", due, "-inf", ARGV[1], "WITHSCORES", "LIMIT", 0,
                       tonumber(ARGV[2]))
for i = 1, #got, 2 do
  local id = got[i]
  local key = ARGV[3] .. math.floor(tonumber(id) / 100)
  local rec = redis.call("HGET", key, id)
  local done = tonumber(string.sub(rec, 2, 2)) + 1
  local parts, k = {}, 0
  for part in string.gmatch(rec, "[^.]+") do k = k + 1; parts[k] = part end
  parts[1] = "c" .. done
  redis.call("HSET", key, id, table.concat(parts, "."))
  if done < 3 then redis.call("ZADD", due, tonumber(parts[2 + done], 36), id)
  else redis.call("ZREM", due, id) end
end
return got
"""

COMMIT = """
-- for each (id, lease, record, next): only the lease holder writes; record + re-score
local due = KEYS[1]
local n = 0
for i = 2, #ARGV, 4 do
  local id = ARGV[i]
  if redis.call("ZSCORE", due, id) == ARGV[i + 1] then
    redis.call("HSET", ARGV[1] .. math.floor(tonumber(id) / 100), id, ARGV[i + 2])
    if ARGV[i + 3] == "" then redis.call("ZREM", due, id)
    else redis.call("ZADD", due, ARGV[i + 3], id) end
    n = n + 1
  end
end
return n
"""


def b36(n: int) -> str:
    chars = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = chars[r] + out
        if not n:
            return out


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


# ---------------------------------------------------------------- the compact sweeper


def load_clocks(r: redis.Redis, n: int, due: int, window_ms: int, start_ms: int) -> None:
    """`due` clocks get their first step inside the window, the rest days later."""
    rng = random.Random(7)
    pipe = r.pipeline(transaction=False)
    zbatch: dict[str, int] = {}
    bucket: dict[str, str] = {}
    day = 86_400_000
    stride = max(1, n // max(1, due))
    for i in range(n):
        if i % stride == 0 and i // stride < due:
            first = start_ms + rng.randrange(window_ms)
        else:
            first = start_ms + 10 * day + rng.randrange(30 * day)  # beyond both phases
        steps = (first, first + 3 * day, first + 5 * day)  # 50 %, 80 %, 100 % of the target
        sid = str(i)
        zbatch[sid] = first
        bucket[sid] = "c0." + ".".join(b36(s) for s in steps)
        if (i + 1) % BUCKET == 0 or i == n - 1:
            pipe.hset(f"{P}:c:{i // BUCKET}", mapping=bucket)
            bucket = {}
        if len(zbatch) >= 10_000 or i == n - 1:
            pipe.zadd(f"{P}:due", zbatch)
            zbatch = {}
            pipe.execute()
    pipe.execute()


def compact_sweep(
    r: redis.Redis,
    origin: float,
    expect: int,
    interval: float,
    batch: int,
    timeout: float,
    shift_ms: int = 0,
    one_script: bool = True,
) -> tuple[int, list[float], float, float]:
    """Sweep in real time until `expect` steps fired; (fired, lateness_s, busy_s, span_end).
    The sweeper's clock reads (wall - origin) + shift_ms, in the loaded clocks' time base."""
    claim, commit = r.register_script(CLAIM), r.register_script(COMMIT)
    fire = r.register_script(FIRE)
    fired, lateness, busy = 0, [], 0.0
    deadline = time.time() + timeout
    while fired < expect and time.time() < deadline:
        t0 = time.time()
        now_ms = int((t0 - origin) * 1000) + shift_ms
        if one_script:
            got = fire(keys=[f"{P}:due"], args=[now_ms, batch, f"{P}:c:"])
            if not got:
                time.sleep(interval)
                continue
            t1 = time.time()
            busy += t1 - t0
            fired_ms = (t1 - origin) * 1000 + shift_ms
            lateness += [max(0.0, (fired_ms - float(d)) / 1000) for d in got[1::2]]
            fired += len(got) // 2
            continue
        got = claim(keys=[f"{P}:due"], args=[now_ms, 30_000, batch, f"{P}:c:"])
        if not got:
            time.sleep(interval)
            continue
        lease = str(now_ms + 30_000)
        args: list[str] = [f"{P}:c:"]
        dues = []
        for i in range(0, len(got), 3):
            sid, score, rec = got[i].decode(), float(got[i + 1]), got[i + 2].decode()
            parts = rec.split(".")
            done = int(parts[0][1:]) + 1  # the ladder step firing now
            nxt = str(int(parts[1 + done], 36)) if done < 3 else ""
            args += [sid, lease, f"c{done}." + ".".join(parts[1:]), nxt]
            dues.append(score)
        fired += commit(keys=[f"{P}:due"], args=args)
        t1 = time.time()
        busy += t1 - t0
        fired_ms = (t1 - origin) * 1000 + shift_ms
        lateness += [max(0.0, (fired_ms - d) / 1000) for d in dues]
    return fired, lateness, busy, time.time()


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


# ---------------------------------------------------------------- the real service path


def real_path(port: int, n: int) -> tuple[float, int]:
    """SlaClocks.sweep on n full SlaStates (each with one step due); (steps/s, state bytes)."""
    from omnidesk import sla
    from omnidesk.configload import parse_config
    from omnidesk.store import Store
    from omnidesk.sweeper import SlaClocks

    cfg_text = """
sla_policies:
  complaint:
    first_response: 4h
    resolution: 5d
    ladder:
      - {at: 0.5, targets: [first_response], actions: [{notify: agent}]}
      - {at: 0.8, actions: [{notify: supervisors}, {raise_priority: 1}]}
      - {at: 1.0, actions: [{move_to: escalation}]}
queues:
  riyadh: {kind: branch, sla_policy: complaint}
  escalation: {kind: escalation}
default: {queue: riyadh, sla_policy: complaint}
"""
    cfg = parse_config(cfg_text, Path("bench.yaml")).data
    store = Store.from_url(f"redis://127.0.0.1:{port}/2", "breal")
    clocks = SlaClocks(store, cfg, batch=500)
    opened = datetime(2026, 1, 11, 5, tzinfo=UTC)  # Sunday 08:00 Riyadh
    state = sla.open_state(clocks.ctx, "T", "complaint", "national", opened)
    size = len(sla.encode_state(state))
    for i in range(n):
        clocks._write(f"T{i}", 0, sla.open_state(clocks.ctx, f"T{i}", "complaint", "national",
                                                 opened))  # fmt: skip
    sweep_at = opened + timedelta(hours=2, minutes=30)  # only first_response 50 % is due
    t0 = time.time()
    fired = clocks.sweep(sweep_at)
    elapsed = time.time() - t0
    store.delete_all()
    store.r.close()
    return len(fired) / elapsed, size


# ---------------------------------------------------------------- main


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clocks", type=int, default=1_000_000)
    ap.add_argument("--due", type=int, default=None, help="default: min(100000, clocks / 10)")
    ap.add_argument(
        "--window", type=float, default=5.0, help="seconds over which they fall due (5 s: 20k/s)"
    )
    ap.add_argument(
        "--leased", action="store_true", help="claim with a lease, then commit (2 round trips)"
    )
    ap.add_argument("--interval", type=float, default=0.005, help="sweeper poll when idle (s)")
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=8, help="baseline worker threads")
    ap.add_argument("--real", type=int, default=2000, help="tickets for the full-path figure")
    ap.add_argument("--no-baseline", action="store_true")
    args = ap.parse_args()
    n = args.clocks
    due = args.due if args.due is not None else min(100_000, max(1, n // 10))
    proc, port, workdir = start_redis()
    try:
        r = redis.Redis(port=port)
        before = used_memory(r)
        t0 = time.time()
        lead = 3.0  # the window opens this long after loading ends
        load_clocks(r, n, due, int(args.window * 1000), 0)
        load_s = time.time() - t0
        bytes_per_clock = (used_memory(r) - before) / n
        rate = n / load_s
        print(f"loaded {n:,} running clocks in {load_s:.1f}s ({rate:,.0f}/s, pipelined); "
              f"{due:,} fall due within {args.window}s")  # fmt: skip
        print(f"redis memory: {bytes_per_clock:.1f} bytes per running clock "
              "(due ZSET entry + ~24-byte packed record in a 100-clock listpack hash)")  # fmt: skip
        # phase 1, real time: `due` steps fall due over the window; lateness due -> fired
        origin = time.time() + lead
        fired, lateness, _, _ = compact_sweep(
            r, origin, due, args.interval, args.batch, timeout=120, one_script=not args.leased
        )
        p50, p99 = pct(lateness, 0.5), pct(lateness, 0.99)
        print(f"phase 1 (real time, {due / args.window:,.0f} steps/s falling due, poll "
              f"{args.interval * 1000:.0f} ms when idle): fired {fired:,}; lateness due -> "
              f"fired p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms, "
              f"max {max(lateness) * 1000:.1f} ms")  # fmt: skip
        # phase 2, catch-up: the clock jumps 3 days (a sweeper back after downtime), so the
        # same clocks' next step (80 %) is due all at once: the sweep's throughput
        day = 86_400_000
        t0 = time.time()
        fired2, _, _, end2 = compact_sweep(
            r, t0, due, args.interval, args.batch, timeout=300,
            shift_ms=int((t0 - origin) * 1000) + 3 * day + int(args.window * 1000) + 1,
            one_script=not args.leased,
        )  # fmt: skip
        steps_per_s = fired2 / (end2 - t0)
        print(f"phase 2 (catch-up, {due:,} steps due at once among {n:,} clocks): fired "
              f"{fired2:,} in {end2 - t0:.2f}s -> {steps_per_s:,.0f} steps/s")  # fmt: skip
        left = r.zcard(f"{P}:due")
        print(f"clocks still scheduled after the sweeps: {left:,} (a fired clock is re-scored "
              "to its next step in the same atomic script, so each step fires once)")  # fmt: skip

        baseline = float("nan")
        if not args.no_baseline:
            bfired, blate, bspan, _ = dramatiq_baseline(port, due, 0.0, args.threads, timeout=600)
            baseline = bfired / bspan if bspan > 0 else float("nan")
            print(f"baseline (dramatiq delayed messages, {args.threads} worker threads, the same "
                  f"{due:,} steps due at once): {bfired:,} in {bspan:.2f}s -> "
                  f"{baseline:,.0f} steps/s; lateness p50 {pct(blate, 0.5):.3f}s "
                  f"p99 {pct(blate, 0.99):.3f}s")  # fmt: skip
            print(f"ratio sweeper / baseline: {steps_per_s / baseline:.1f}x")

        real_rate, state_bytes = real_path(port, args.real) if args.real else (float("nan"), 0)
        if args.real:
            print(f"full service path (SlaClocks.sweep, JSON state, one Lua script per step): "
                  f"{real_rate:,.0f} steps/s on {args.real} tickets; one ticket's full SlaState "
                  f"JSON is {state_bytes} bytes (not in bytes_per_clock)")  # fmt: skip
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
