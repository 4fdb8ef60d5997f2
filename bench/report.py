"""Benchmark: a 90-day report over a generated 1,000,000-ticket history, from the rollups.

How the history gets into the rollups (honestly): tickets and their events (opened, routed,
assigned, replied, resolved, SLA warnings/breaches, CSAT) are generated in memory and folded
by the same code as the daemon's consumer (`fold.apply`, then `rollup.aggregate`'s fan-out),
in 2 processes; the summed hashes are then written with pipelined HSETs instead of one Lua
call per batch (the consumer's per-event path is not what is measured here). Then
`figures.read_raw` + `summarize` answer a 90-day report, unfiltered and filtered on each
dimension's largest value (queue, channel, segment, region, agent; each a one-filter report
reading its by: hashes, and --channel once more from every queue's cubes, the old path), and
the baseline (recomputing the same figures from the generated events) is timed on a
slice and scaled. It starts its own redis-server on a free port and stops it at the end.

    python bench/report.py [--tickets 1000000] [--days 90]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from multiprocessing import Pool
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import redis

from omnidesk.configload import load_config
from omnidesk.reports.figures import read_raw, summarize
from omnidesk.reports.fold import DIMS, Context, Contribution, apply
from omnidesk.reports.recompute import recompute
from omnidesk.reports.rollup import entry_json, fan_out

CONFIG = Path(__file__).resolve().parent.parent / "queue_config.yaml"
CHANNELS = ("email", "whatsapp", "web", "telegram", "twitter")
END = date(2026, 6, 30)


def story(rnd: random.Random, n: int, start_ms: int, span_ms: int, queues: list[str],
          worker: int) -> list[dict[str, str]]:  # fmt: skip
    """One ticket's events, in time order."""
    tid = f"OD-{worker}-{n:07d}"
    t = start_ms + rnd.randrange(span_ms)
    q = queues[min(int(rnd.paretovariate(1.2)) - 1, len(queues) - 1)]
    ch = CHANNELS[rnd.randrange(5)]
    agent = f"{q}-agent{rnd.randrange(4)}"

    def ev(kind: str, when: int, **f: str) -> dict[str, str]:
        return {"type": kind, "ticket": tid, "queue": q, "channel": ch, "ts": str(when), **f}

    out = [
        ev("ticket_opened", t, customer=f"C-{worker}-{rnd.randrange(300_000)}",
           segment="business" if rnd.random() < 0.3 else "consumer"),
        ev("routed", t, rule="" if rnd.random() < 0.05 else f"rule-{rnd.randrange(60)}",
           sla_policy="standard"),
    ]  # fmt: skip
    t += rnd.randrange(60_000, 3_600_000)
    out.append(ev("assigned", t, agent=agent))
    if rnd.random() < 0.15:
        t += rnd.randrange(60_000, 4 * 3_600_000)
        out.append(ev("sla_warned", t, target="first_response", at="0.8"))
        if rnd.random() < 0.5:
            out.append(ev("sla_breached", t + 1000, target="first_response", late_s="0.2"))
    t += rnd.randrange(60_000, 8 * 3_600_000)
    out.append(ev("replied", t, actor=agent))
    if rnd.random() < 0.85:
        t += rnd.randrange(600_000, 5 * 86_400_000)
        out.append(ev("status_changed", t, **{"from": "open", "to": "resolved"}))
        if rnd.random() < 0.3:
            out.append(ev("csat", t + 3_600_000, score=str(rnd.randint(1, 5)),
                          comment="شكراً" if rnd.random() < 0.1 else ""))  # fmt: skip
    return out


def fold_part(args: tuple[int, int, int, int, int]) -> tuple[Counter, list[str], int]:
    worker, tickets, start_ms, span_ms, seed = args
    ctx = Context.from_config(load_config(CONFIG).data)
    queues = sorted(load_config(CONFIG).data.queues)
    rnd = random.Random(seed)
    events: list[tuple[int, dict[str, str]]] = []
    for n in range(tickets):
        events += [(int(e["ts"]), e) for e in story(rnd, n, start_ms, span_ms, queues, worker)]
    events.sort(key=lambda x: x[0])
    cells: Counter = Counter()
    entries: list[str] = []
    states: dict = {}
    customers: dict = {}
    for _, e in events:
        tid, cust = e["ticket"], e.get("customer", "")
        state, last, out, listed = apply(e, states.get(tid), customers.get(cust), ctx)
        states[tid] = state
        if cust and last is not None:
            customers[cust] = last
        for c in out:
            cells[c.day, c.metric, c.dims] += c.amount
        entries += [f"{x.day}\t{x.kind}\t{entry_json(x)}" for x in listed]
    return cells, entries, len(events)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=90)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so `finally` stops redis-server
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="bench-report-")
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", workdir],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        r = redis.Redis(port=port, decode_responses=True)
        for _ in range(100):
            try:
                r.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        run(r, args.tickets, args.days)
    finally:
        server.terminate()
        server.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)


def run(r: redis.Redis, tickets: int, days: int) -> None:
    prefix = "bench"
    start = END - timedelta(days=days - 1)
    start_ms = int(datetime(start.year, start.month, start.day, tzinfo=UTC).timestamp() * 1000)
    span_ms = (days - 6) * 86_400_000  # leave room for resolutions inside the period
    workers = 2
    t0 = time.perf_counter()
    parts = [(w, tickets // workers, start_ms, span_ms, 1000 + w) for w in range(workers)]
    with Pool(workers) as pool:
        results = pool.map(fold_part, parts)
    cells: Counter = Counter()
    entries: list[str] = []
    n_events = 0
    for c, e, n in results:
        cells.update(c)
        entries += e
        n_events += n
    t_fold = time.perf_counter() - t0
    t0 = time.perf_counter()
    hashes: dict[str, Counter] = {}
    for (day, metric, dims), amount in cells.items():
        for key, field in fan_out(Contribution(day, metric, dims, amount)):
            hashes.setdefault(key, Counter())[field] += amount
    fields = sum(len(h) for h in hashes.values())
    pipe = r.pipeline(transaction=False)
    for i, (key, h) in enumerate(hashes.items()):
        pipe.hset(f"{prefix}:ru:{key}", mapping={f: n for f, n in h.items() if n})
        if i % 200 == 0:
            pipe.execute()
    for line in entries:
        day, kind, item = line.split("\t", 2)
        pipe.rpush(f"{prefix}:ru:list:{day}:{kind}", item)
    pipe.set(f"{prefix}:ru:byfilter", "1")  # the by: hashes cover the whole history
    pipe.execute()
    t_write = time.perf_counter() - t0
    mem = r.info("memory")["used_memory_human"]
    print(f"generated {tickets:,} tickets, {n_events:,} events over {days} days; "
          f"folded in {t_fold:.1f}s (2 processes); {len(hashes):,} hashes, {fields:,} fields "
          f"written in {t_write:.1f}s; redis memory {mem}")  # fmt: skip

    def timed(filters: dict[str, str]) -> tuple[float, dict]:
        best = float("inf")
        for _ in range(3):
            t = time.perf_counter()
            raw = read_raw(r, prefix, start, END, filters, today=END)
            figures = summarize(raw, start, END, filters)
            best = min(best, time.perf_counter() - t)
        return best, figures

    report_s, figures = timed({})
    print(f"90-day report, no filter: {report_s:.3f}s (best of 3); opened "
          f"{figures['totals']['opened']:,}, FRT p50/p90 business "
          f"{figures['totals']['first_response']['business']['p50_s']}/"
          f"{figures['totals']['first_response']['business']['p90_s']} s")  # fmt: skip
    # each dimension filtered on its largest value (the most data a one-filter report reads)
    filter_s: dict[str, float] = {}
    for dim in DIMS:
        slices = {v: b for v, b in figures["by"][dim].items() if v}  # an agent, not "none"
        value = max(slices, key=lambda v: slices[v]["opened"] + slices[v]["replies"])
        filter_s[dim], fig = timed({dim: value})
        print(f"90-day report, --{dim} {value}: {filter_s[dim]:.3f}s; opened "
              f"{fig['totals']['opened']:,}, replies {fig['totals']['replies']:,}")  # fmt: skip
    r.delete(f"{prefix}:ru:byfilter")  # as before the by: hashes: every queue's cubes
    cubes_s, _ = timed({"channel": "email"})
    r.set(f"{prefix}:ru:byfilter", "1")
    print(f"  (--channel email read from every queue's cubes instead: {cubes_s:.3f}s, "
          f"{cubes_s / filter_s['channel']:.1f}x slower)")  # fmt: skip

    # baseline: recomputing from raw events, timed on 1% of the tickets and scaled
    ctx = Context.from_config(load_config(CONFIG).data)
    queues = sorted(load_config(CONFIG).data.queues)
    rnd = random.Random(7)
    sample = max(1000, tickets // 100)
    evs = sorted((e for n in range(sample) for e in story(rnd, n, start_ms, span_ms, queues, 9)),
                 key=lambda e: int(e["ts"]))  # fmt: skip
    t = time.perf_counter()
    summarize(recompute(evs, start, END, {}, ctx), start, END, {})
    baseline = (time.perf_counter() - t) * tickets / sample
    print(
        f"baseline: recomputing from raw events ~{baseline:.0f}s for {tickets:,} tickets "
        f"(timed on {sample:,}, scaled); rollups answer {baseline / report_s:,.0f}x faster"
    )
    line = {"tickets": tickets, "report_s": round(report_s, 4),
            **{f"report_{dim}_s": round(t, 4) for dim, t in filter_s.items()},
            "report_channel_cubes_s": round(cubes_s, 4), "rollup_fields": fields,
            "baseline_recompute_s": round(baseline, 1)}  # fmt: skip
    print(json.dumps(line))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
