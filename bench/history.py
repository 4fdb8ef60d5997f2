"""Benchmark: reports and ticket lists from PostgreSQL at a year's volume.

(a) the report of a 365-day range over N events (default 10,000,000), unfiltered, with the
    real config's queues, regions, SLA policies and business calendars: first every finished
    day is folded into report_days (omnidesk.reports.days; timed apart as fold_s, from
    nothing), then the report sums the folded days and runs the event query over the SQL
    of omnidesk.reports.sql for the days not folded (the last days of the range);
(b) the 50-ticket page of a queue holding M tickets (default 1,000,000): the first page and a
    deep keyset page (90% of the way down), through omnidesk.db.tickets.list_tickets.

Seeding is SQL only (INSERT ... SELECT over generate_series, one month of events per
statement, into monthly partitions made by ensure_event_partitions), in its own database
`od_bench_history` (dropped and made again unless --reuse finds it seeded at the same size).
Each seeded ticket tells a realistic story: opened, routed (a rule, or the default queue for
one in ten), assigned, replied; 85% resolved, 25% rated (CSAT 1-5, some with a comment), 10%
breach an SLA target. The report's totals are asserted equal to the same counts taken
straight from the table, and each page must hold 50 tickets of the queue in
(created_at DESC, id DESC) order.

    python bench/history.py [--events 10000000] [--tickets 1000000] [--reuse]
            [--server postgresql://postgres@127.0.0.1:5432/postgres]

Ends with one JSON line: {"events", "year_report_s", "list_page_ms", "fold_s"}
(list_page_ms: the slower of the first and the deep page, median of 20 runs each;
year_report_s: the best of --report-runs, default 1; fold_s: folding every day). With
--check-raw the year's figures are also computed from the events alone and must be equal
(minutes at full size).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg
from psycopg.conninfo import make_conninfo

from omnidesk.configload import load_config
from omnidesk.db.migrate import upgrade
from omnidesk.db.tickets import list_tickets
from omnidesk.reports.days import figures, fold_step
from omnidesk.reports.fold import Context
from omnidesk.reports.sql import QueueCalendars, local_bounds

CONFIG = Path(__file__).resolve().parent.parent / "queue_config.yaml"
DB = "od_bench_history"
END = date(2026, 6, 30)
START = END - timedelta(days=364)
BIG_QUEUE = "bench-big"
EVENTS_PER_TICKET = 4 + 0.85 + 0.25 + 0.10  # see the story above
CHANNELS = ("email", "whatsapp", "web", "telegram", "twitter")

# One statement per month of tickets: i is the ticket number, h(k) an independent hash of
# it per k (hashint8extended), so the whole history is deterministic and needs no Python.
EVENTS_SQL = """
WITH t AS (
  SELECT i,
    %(t0)s::bigint + (i - 1) * %(step)s::bigint + abs(hashint8extended(i, 1)) %% 1000 AS ts0,
    (%(queues)s::text[])[1 + abs(hashint8extended(i, 2)) %% %(nq)s] AS q,
    (%(channels)s::text[])[1 + abs(hashint8extended(i, 3)) %% 5] AS ch,
    abs(hashint8extended(i, 4)) %% 100 AS p,
    'C-' || lpad((abs(hashint8extended(i, 5)) %% %(customers)s)::text, 8, '0') AS cust,
    abs(hashint8extended(i, 6)) %% 5 AS a,
    60000 + abs(hashint8extended(i, 7)) %% 86400000 AS reply_after,
    3600000 + abs(hashint8extended(i, 8)) %% 172800000 AS resolve_after
  FROM generate_series(%(lo)s::bigint, %(hi)s::bigint) g(i)
),
ev AS (
  SELECT i, ts0 AS ms, 0 AS k, 'ticket_opened' AS type, q, ch, 'intake' AS actor,
    jsonb_build_object('customer', cust, 'created', (ts0 - 2000)::text,
      'segment', CASE WHEN p %% 3 = 0 THEN 'business' ELSE 'consumer' END,
      'region', '') AS data FROM t
  UNION ALL SELECT i, ts0 + 1000, 1, 'routed', q, ch, 'router',
    jsonb_build_object('rule', CASE WHEN p %% 10 = 0 THEN '' ELSE 'rule-' || (p %% 7) END,
                       'sla_policy', 'standard') FROM t
  UNION ALL SELECT i, ts0 + 30000, 2, 'assigned', q, ch, 'assignment',
    jsonb_build_object('agent', q || '-agent' || a) FROM t
  UNION ALL SELECT i, ts0 + reply_after, 3, 'replied', q, ch, q || '-agent' || a,
    jsonb_build_object('message', 'M-' || i) FROM t
  UNION ALL SELECT i, ts0 + reply_after - 1000, 4, 'sla_breached', q, ch, 'sla',
    jsonb_build_object('target', 'first_response', 'late_s', '120') FROM t WHERE p < 10
  UNION ALL SELECT i, ts0 + reply_after + resolve_after, 5, 'status_changed', q, ch,
    q || '-agent' || a, jsonb_build_object('from', 'new', 'to', 'resolved') FROM t WHERE p >= 15
  UNION ALL SELECT i, ts0 + reply_after + resolve_after + 600000, 6, 'csat', q, ch, 'customer',
    jsonb_build_object('score', (1 + p %% 5)::text,
                       'comment', CASE WHEN p %% 4 = 0 THEN 'شكراً' ELSE '' END)
    FROM t WHERE p >= 75
)
INSERT INTO events (ts, stream_id, type, ticket_id, queue, channel, actor, data)
SELECT to_timestamp(ms / 1000.0), ms || '-' || (i * 8 + k), type,
       'OD-B-' || lpad(i::text, 9, '0'), q, ch, actor, data
  FROM ev
"""

# Each story's ticket row, as the records writer keeps it (its last snapshot): what a
# report of a period that starts after a ticket opened finds still-open tickets by.
STORY_TICKETS_SQL = """
INSERT INTO tickets (id, customer_id, channel, queue, status, created_at, updated_at)
SELECT ticket_id, min(data->>'customer'), min(channel), min(queue),
       CASE WHEN bool_or(type = 'status_changed') THEN 'resolved' ELSE 'new' END,
       min(ts), max(ts)
  FROM events WHERE ticket_id LIKE 'OD-B-%%' GROUP BY ticket_id
"""

TICKETS_SQL = """
INSERT INTO tickets (id, customer_id, channel, queue, status, created_at, updated_at,
                     subject, hot)
SELECT 'OD-L-' || lpad(i::text, 9, '0'),
       'C-' || lpad((abs(hashint8extended(i, 5)) %% 300000)::text, 8, '0'),
       (%(channels)s::text[])[1 + abs(hashint8extended(i, 3)) %% 5],
       CASE WHEN i %% 5 = 0 THEN 'bench-other' ELSE %(big)s END,
       (ARRAY['new', 'open', 'pending_customer', 'resolved', 'closed'])
         [1 + abs(hashint8extended(i, 4)) %% 5],
       to_timestamp(%(t0)s + (i / 2) * 25),  -- pairs share a created_at: ties for the cursor
       to_timestamp(%(t0)s + (i / 2) * 25),
       'subject ' || i, i %% 3 = 0
  FROM generate_series(%(lo)s::bigint, %(hi)s::bigint) g(i)
"""


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def prepare(
    server: str, name: str, reuse: bool, events: int, tickets: int, story_tickets: bool = False
) -> str:
    """The seeded database's URL; `story_tickets` also stores each story's ticket row (what
    a report of a period starting after the history's first day needs; bench/report.py)."""
    url = make_conninfo(server, dbname=name)
    size = f"{events}/{tickets}" + ("/stories" if story_tickets else "")
    with psycopg.connect(server, autocommit=True) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists and reuse:
            with psycopg.connect(url) as conn:
                row = conn.execute("SELECT value FROM bench_meta WHERE key = 'size'").fetchone()
                if row and row[0] == size:
                    log(f"reusing {name} ({events} events, {tickets} tickets)")
                    upgrade(url)  # schema files added since it was seeded
                    return url
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    upgrade(url)
    seed(url, events, tickets, story_tickets)
    return url


def seed(url: str, events: int, tickets: int, story_tickets: bool = False) -> None:
    ctx = Context()
    lo_at, hi_at = local_bounds(ctx, START, END)
    t0 = int(lo_at.timestamp() * 1000) + 3600_000
    span = int(hi_at.timestamp() * 1000) - t0 - 4 * 86400_000  # every story ends in range
    n = max(1, round(events / EVENTS_PER_TICKET))
    step = span // n
    queues = [q for q in load_config(CONFIG).data.queues if q != "system-noise"]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT ensure_event_partitions(%s, %s)", (lo_at, hi_at))
        conn.execute("SET synchronous_commit = off")
        per = max(1, n // 24)  # about half a month of tickets per statement
        started = time.perf_counter()
        for lo in range(1, n + 1, per):
            hi = min(n, lo + per - 1)
            conn.execute(EVENTS_SQL, {
                "t0": t0, "step": step, "queues": queues, "nq": len(queues),
                "channels": list(CHANNELS), "customers": max(1, n // 3), "lo": lo, "hi": hi,
            })  # fmt: skip
            log(f"events: tickets {hi}/{n} ({time.perf_counter() - started:.0f} s)")
        t0_s = int(lo_at.timestamp())
        per = 200_000
        for lo in range(1, tickets + 1, per):
            hi = min(tickets, lo + per - 1)
            conn.execute(TICKETS_SQL, {"channels": list(CHANNELS), "big": BIG_QUEUE,
                                       "t0": t0_s, "lo": lo, "hi": hi})  # fmt: skip
        log(f"tickets: {tickets} ({time.perf_counter() - started:.0f} s)")
        if story_tickets:
            conn.execute(STORY_TICKETS_SQL)
            log(f"story tickets: {n} ({time.perf_counter() - started:.0f} s)")
        conn.execute("VACUUM ANALYZE events")
        conn.execute("VACUUM ANALYZE tickets")
        conn.execute("CREATE TABLE bench_meta (key text PRIMARY KEY, value text)")
        size = f"{events}/{tickets}" + ("/stories" if story_tickets else "")
        conn.execute("INSERT INTO bench_meta VALUES ('size', %s)", (size,))
        log(f"seeded and analyzed in {time.perf_counter() - started:.0f} s")


def expected(conn: psycopg.Connection[Any]) -> dict[str, int]:
    """The report's totals counted straight from the table (each story is simple enough)."""
    rows = conn.execute("SELECT type, count(*) FROM events GROUP BY type").fetchall()
    by = dict(rows)
    return {
        "opened": by.get("ticket_opened", 0),
        "resolved": by.get("status_changed", 0),
        "replies": by.get("replied", 0),
        "csat": by.get("csat", 0),
        "breach_events": by.get("sla_breached", 0),
    }


def time_fold(url: str, max_days: int) -> tuple[float, int]:
    """Fold every finished day from nothing, as a daemon's first rounds would."""
    loaded = load_config(CONFIG)
    ctx = Context.from_config(loaded.data)
    calendars = QueueCalendars.from_config(loaded.data)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("TRUNCATE report_days, report_day_lists, report_days_done, "
                     "report_months_done")  # fmt: skip
        started = time.perf_counter()
        days = 0
        while n := fold_step(conn, ctx, calendars, max_days=max_days):
            days += n
            if days % 28 < n:
                log(f"fold: {days} days ({time.perf_counter() - started:.0f} s)")
        seconds = time.perf_counter() - started
        conn.execute("ANALYZE report_days")
        conn.execute("ANALYZE report_day_lists")
    log(f"fold: {days} days in {seconds:.1f} s")
    return seconds, days


def time_report(url: str, runs: int, stored: bool = True) -> tuple[float, dict[str, Any]]:
    loaded = load_config(CONFIG)
    ctx = Context.from_config(loaded.data)
    calendars = QueueCalendars.from_config(loaded.data)
    times = []
    result: dict[str, Any] = {}
    for _ in range(runs):
        with psycopg.connect(url) as conn:
            started = time.perf_counter()
            result = figures(conn, ctx, START, END, {}, calendars, stored=stored)
            times.append(time.perf_counter() - started)
    log(f"year report ({'stored days' if stored else 'events only'}): "
        f"{', '.join(f'{r:.2f} s' for r in times)}")  # fmt: skip
    return min(times), result


def time_pages(url: str, tickets: int) -> float:
    with psycopg.connect(url) as conn:
        deep_at = max(0, int(tickets * 0.8 * 0.9))  # 80% of the tickets are in the big queue
        row = conn.execute(
            "SELECT created_at, id FROM tickets WHERE queue = %s "
            "ORDER BY created_at DESC, id DESC OFFSET %s LIMIT 1",
            (BIG_QUEUE, deep_at),
        ).fetchone()
        cursor = (row[0], row[1]) if row else None
        medians = []
        for label, before in (("first", None), ("deep", cursor)):
            times = []
            for _ in range(20):
                started = time.perf_counter()
                page = list_tickets(conn, queue=BIG_QUEUE, before=before, limit=50)
                times.append((time.perf_counter() - started) * 1000)
            keys = [(t.created_at, t.id) for t in page.tickets]
            assert len(keys) == 50, (label, len(keys))
            assert keys == sorted(keys, reverse=True) and len(set(keys)) == 50, label
            assert all(t.queue == BIG_QUEUE for t in page.tickets), label
            if before is not None:
                assert keys[0] < before, "the deep page starts after its cursor"
            medians.append(statistics.median(times))
            log(f"{label} page: median {medians[-1]:.2f} ms, max {max(times):.2f} ms")
    return max(medians)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--tickets", type=int, default=1_000_000)
    ap.add_argument("--reuse", action="store_true", help="keep a seeded database of this size")
    ap.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--db", default=DB)
    ap.add_argument("--report-runs", type=int, default=1, help="the best of this many")
    ap.add_argument("--fold-days", type=int, default=7, help="days folded per transaction")
    ap.add_argument("--check-raw", action="store_true",
                    help="also compute the year from the events alone: same figures")  # fmt: skip
    args = ap.parse_args()
    url = prepare(args.server, args.db, args.reuse, args.events, args.tickets)
    with psycopg.connect(url) as conn:
        want = expected(conn)
        total = conn.execute("SELECT count(*) FROM events").fetchone()[0]
    fold_s, days = time_fold(url, args.fold_days)
    assert days >= 355, f"only {days} days folded"  # all but the range's last few
    seconds, result = time_report(url, args.report_runs)
    if args.check_raw:
        _, raw = time_report(url, 1, stored=False)
        assert raw == result, "the stored days and the events disagree"
    t = result["totals"]
    got = {
        "opened": t["opened"],
        "resolved": t["resolved"],
        "replies": t["replies"],
        "csat": t["csat"]["responses"],
        "breach_events": t["sla"]["first_response"]["breach_events"],
    }
    assert got == want, (got, want)
    assert sum(b["opened"] for b in result["by"]["queue"].values()) == want["opened"]
    assert sum(result["volume"]["opened_by_day"].values()) == want["opened"]
    page_ms = time_pages(url, args.tickets)
    print(json.dumps({
        "events": total, "year_report_s": round(seconds, 3), "list_page_ms": round(page_ms, 2),
        "fold_s": round(fold_s, 1),
    }))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
