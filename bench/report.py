"""Benchmark: a 90-day report from PostgreSQL, our report path against plain SQL over the
events, both measured (nothing extrapolated).

The history is bench/history.py's (its SQL generator, imported, not copied): N events
(default 1,000,000) over a year of realistic ticket stories, in the real config's queues,
with each story's ticket row as the records writer keeps it, in a database of its own
(`od_bench_report`; --reuse keeps one seeded at the same size).
Every finished day is then folded into `report_days`, as the daemon's background job does
(timed apart as fold_s). Two ways to answer the same unfiltered 90-day report ending on the
history's last day are timed in rounds, interleaved (A B, then B A, ...) so the machine's
noise hits both alike:

- report: what `omnidesk report`, scheduled reports and GET /v1/reports run
  (omnidesk.reports.days.figures: the folded days' counters from report_days, the events
  query of omnidesk/reports/sql.py over the days not folded);
- sql_baseline: the same figures by SQL over the indexed events table alone (the same
  function with stored=False: the window-function query over every event of the period).

Both must give equal figures in every round (exit 1 otherwise). With --queue the report is
filtered on that queue too.

    python bench/report.py [--events 1000000] [--days 90] [--rounds 5] [--reuse]
            [--server postgresql://postgres@127.0.0.1:5432/postgres] [--queue Q]

Ends with one JSON line: {"report_s", "sql_baseline_s", "ratio", "events", "period_events",
"rounds", "fold_s"} (medians of the rounds; ratio = sql_baseline_s / report_s; events: the
whole history, period_events: those inside the 90 days).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg

from bench.history import CONFIG, END, log, prepare, time_fold
from omnidesk.configload import load_config
from omnidesk.reports.days import figures
from omnidesk.reports.fold import Context
from omnidesk.reports.sql import QueueCalendars, local_bounds

DB = "od_bench_report"


Side = Callable[[psycopg.Connection[Any]], dict[str, Any]]


def measure(url: str, run: Side) -> tuple[float, dict[str, Any]]:
    """One run on a connection of its own: (seconds, figures)."""
    with psycopg.connect(url) as conn:
        started = time.perf_counter()
        result = run(conn)
        return time.perf_counter() - started, result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--days", type=int, default=90)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--queue", help="filter the report on this queue")
    ap.add_argument("--reuse", action="store_true", help="keep a seeded database of this size")
    ap.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--db", default=DB)
    ap.add_argument("--fold-days", type=int, default=31, help="days folded per transaction")
    args = ap.parse_args()

    url = prepare(args.server, args.db, args.reuse, args.events, 0, story_tickets=True)
    fold_s, _ = time_fold(url, args.fold_days)
    loaded = load_config(CONFIG)
    ctx = Context.from_config(loaded.data)
    calendars = QueueCalendars.from_config(loaded.data)
    start, end = END - timedelta(days=args.days - 1), END
    filters = {"queue": args.queue} if args.queue else {}
    lo, hi = local_bounds(ctx, start, end)
    with psycopg.connect(url) as conn:
        total = conn.execute("SELECT count(*) FROM events").fetchone()[0]
        inside = conn.execute("SELECT count(*) FROM events WHERE ts >= %s AND ts < %s",
                              (lo, hi)).fetchone()[0]  # fmt: skip
        folded = conn.execute("SELECT count(*) FROM report_days_done WHERE day BETWEEN %s AND %s",
                              (start, end)).fetchone()[0]  # fmt: skip
    log(f"{args.days}-day report {start}..{end}: {inside:,} of {total:,} events, "
        f"{folded} of its days folded")  # fmt: skip

    sides: dict[str, Side] = {
        "report": lambda conn: figures(conn, ctx, start, end, filters, calendars),
        "sql_baseline": lambda conn: figures(conn, ctx, start, end, filters, calendars,
                                             stored=False),
    }  # fmt: skip
    times: dict[str, list[float]] = {name: [] for name in sides}
    for round_no in range(args.rounds):
        order = list(sides) if round_no % 2 == 0 else list(reversed(sides))
        results = {}
        for name in order:
            seconds, results[name] = measure(url, sides[name])
            times[name].append(seconds)
        log(f"round {round_no + 1}: " + ", ".join(f"{n} {times[n][-1]:.3f} s" for n in sides))
        if results["report"] != results["sql_baseline"]:
            log("MISMATCH: the report path and the plain SQL over the events disagree")
            for key in results["report"]:
                if results["report"][key] != results["sql_baseline"].get(key):
                    log(f"  differs: {key}")
            return 1
        if not results["report"]["totals"]["opened"]:
            log("the period holds no opened ticket: nothing was measured")
            return 1
    report_s = statistics.median(times["report"])
    baseline_s = statistics.median(times["sql_baseline"])
    print(json.dumps({
        "report_s": round(report_s, 4), "sql_baseline_s": round(baseline_s, 4),
        "ratio": round(baseline_s / report_s, 1) if report_s else None,
        "events": total, "period_events": inside, "rounds": args.rounds,
        "fold_s": round(fold_s, 1),
    }))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
