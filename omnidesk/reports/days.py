"""Daily report counters in PostgreSQL: a cube of counters, folded by SQL, one day at a time.

Refolding a year of events for every report takes minutes at ten million events (the
per-ticket window functions of omnidesk/reports/sql.py run on one core). So each finished
local day is folded once, by that same query restricted to the day, and its counters are
kept in `report_days` (schema 0005): the full cube (metric x queue x channel x segment x
region x agent), what filtered reports sum, plus the totals and one-dimension breakdowns
derived from it, what unfiltered reports sum; its listed items go to `report_day_lists`.
A month whose days are all folded also gets the sum of its days, so a year is twelve
months of rows. A report over a range then sums the stored counters of the folded days
and runs the event query only over the days not folded (today, and any not yet folded).

Every counter the report shows is a sum of per-event contributions, so days add up:
- per-ticket facts (first reply, first resolution, first rating, SLA outcomes) are decided
  by the ticket's whole history, which the day's query reads from before the day;
- repeat contacts count an opening on its day against the customer's openings of the 30
  days before it, which the day's query reads too;
- the backlog is a stock, not a flow: the days keep its moves (+1/-1 when a ticket opens,
  closes or moves), and the backlog at a range's end is the sum of every move up to it.
  When a day up to the range's end is not folded, the event query over the last such day
  gives the backlog at its end (from the tickets table, as before) and the stored moves of
  the days after it are added;
- listed items are kept whole per day, in stream order; the first LIST_CAP are taken.

A day is folded once the records hold events past its end plus a margin (the writer writes
the stream in order, so nothing older is still on its way). An event written later than
that (a delayed or replayed stream entry) makes the trigger of schema 0005 drop the done
marks of its day and every later one, which are then folded again; a fold that ran while
such an insert was still uncommitted is caught by recounting the day's events once, a
minute later. The stored counters also depend on the config (time zone, queue regions, SLA
targets, calendars): its fingerprint is kept with each day, and days folded under another
are neither read nor kept (they are folded again).

Kept whole though over 500 lines: the fold of days, its stored counters and `figures`
(which reads them) share the fingerprint and the day bookkeeping; the event query is sql.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
from collections.abc import Callable, Collection, Iterable, Mapping
from contextlib import AbstractContextManager
from datetime import date, datetime, timedelta
from typing import Any

import psycopg

from omnidesk.reports import sql as reports
from omnidesk.reports.figures import (
    LIST_CAP,
    FilterValue,
    Raw,
    clean_filters,
    filter_values,
    summarize,
)
from omnidesk.reports.fold import DAY_METRICS, DIMS, FOLD_VERSION, TOTAL_ONLY, Context
from omnidesk.reports.sql import (
    BODY_SQL,
    LIST_METRICS,
    QueueCalendars,
    UnknownFilterValue,
    list_entry,
    local_bounds,
)

log = logging.getLogger("omnidesk.reports")

LOCK_KEY = 0x0D_DB_0005  # one fold at a time across daemons
# unfolded days before a report's range whose backlog moves are read from the events; more
# (only while the first backfill runs), and the backlog comes from the tickets table
MAX_EARLY_RUN_DAYS = 31
DIM_COLUMNS = {"queue": "dq", "channel": "dch", "segment": "dseg", "region": "dreg",
               "agent": "dag"}  # fmt: skip
LIST_SQL = "(" + ", ".join(f"'{m}'" for m in sorted(LIST_METRICS)) + ")"
TOTAL_ONLY_SQL = " OR ".join(f"metric LIKE '{p}%%'" for p in TOTAL_ONLY)
DAY_METRICS_SQL = "(" + ", ".join(f"'{m}'" for m in sorted(DAY_METRICS)) + ")"

FOLD_SQL = (
    BODY_SQL
    + f""",
listed AS (
  INSERT INTO report_day_lists (day, metric, dq, dch, dseg, dreg, dag, item)
  SELECT day, metric, dq, dch, dseg, dreg, dag, item FROM kept
   WHERE item IS NOT NULL AND day IS NOT NULL
)
INSERT INTO report_days (span, day, g, metric, dq, dch, dseg, dreg, dag, n)
SELECT 'd', day, 'cube', metric, coalesce(dq, ''), coalesce(dch, ''), coalesce(dseg, ''),
       coalesce(dreg, ''), coalesce(dag, ''), sum(n)
  FROM kept
 WHERE day IS NOT NULL AND item IS NULL AND metric NOT IN {LIST_SQL}
 GROUP BY day, metric, dq, dch, dseg, dreg, dag
HAVING sum(n) <> 0
"""
)

# grouping(dq, dch, dseg, dreg, dag) of each derived set
DERIVE_SQL = f"""
INSERT INTO report_days (span, day, g, metric, dq, dch, dseg, dreg, dag, n)
SELECT 'd', day,
       CASE grouping(dq, dch, dseg, dreg, dag) WHEN 31 THEN 'total' WHEN 15 THEN 'queue'
         WHEN 23 THEN 'channel' WHEN 27 THEN 'segment' WHEN 29 THEN 'region' ELSE 'agent' END,
       metric, coalesce(dq, ''), coalesce(dch, ''), coalesce(dseg, ''), coalesce(dreg, ''),
       coalesce(dag, ''), sum(n)
  FROM report_days
 WHERE span = 'd' AND g = 'cube' AND day BETWEEN %(a)s AND %(b)s
 GROUP BY GROUPING SETS ((day, metric), (day, metric, dq), (day, metric, dch),
                         (day, metric, dseg), (day, metric, dreg), (day, metric, dag))
HAVING sum(n) <> 0
   AND (grouping(dq, dch, dseg, dreg, dag) = 31 OR NOT ({TOTAL_ONLY_SQL}))
"""

MONTH_SQL = """
INSERT INTO report_days (span, day, g, metric, dq, dch, dseg, dreg, dag, n)
SELECT 'm', %(month)s, g, metric, dq, dch, dseg, dreg, dag, sum(n)
  FROM report_days
 WHERE span = 'd' AND day BETWEEN %(month)s AND %(last)s
 GROUP BY g, metric, dq, dch, dseg, dreg, dag
HAVING sum(n) <> 0
"""


def fingerprint(ctx: Context, calendars: QueueCalendars | None) -> str:
    """What the stored counters depend on besides the events: the config they were folded
    under. A change (a queue's region, a policy's targets, a calendar's hours) refolds."""
    cals: Any = None
    if calendars is not None:
        cals = [repr(getattr(calendars.default, "settings", calendars.default)),
                sorted((q, repr(getattr(c, "settings", c)))
                       for q, c in calendars.by_queue.items())]  # fmt: skip
    text = json.dumps({
        "tz": str(ctx.tz), "regions": sorted(ctx.queue_regions.items()),
        "targets": sorted((p, sorted(t)) for p, t in ctx.policy_targets.items()),
        "calendars": cals, "fold": FOLD_VERSION,
    }, sort_keys=True, default=str)  # fmt: skip
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _days(a: date, b: date) -> list[date]:
    return [a + timedelta(days=i) for i in range((b - a).days + 1)]


def _month_end(month: date) -> date:
    return (month.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)


def _runs(days: Iterable[date]) -> list[tuple[date, date]]:
    """Consecutive days as [first, last] runs, in order."""
    out: list[tuple[date, date]] = []
    for d in sorted(days):
        if out and out[-1][1] + timedelta(days=1) == d:
            out[-1] = (out[-1][0], d)
        else:
            out.append((d, d))
    return out


def _event_span(conn: psycopg.Connection[Any]) -> tuple[datetime, datetime] | None:
    row = conn.execute("SELECT min(ts), max(ts) FROM events").fetchone()
    if not row or row[0] is None:
        return None
    return row[0], row[1]


# ---------------------------------------------------------------- folding


def fold_step(
    conn: psycopg.Connection[Any],
    ctx: Context,
    calendars: QueueCalendars | None,
    *,
    now: datetime | None = None,
    margin: timedelta = timedelta(minutes=10),
    max_days: int = 7,
) -> int:
    """Fold the oldest run of up to `max_days` finished, unfolded days (and the months they
    complete), in one transaction; returns how many days were folded (0: nothing to do, or
    another process holds the fold). Re-running a day replaces it."""
    with conn.transaction():
        got = conn.execute("SELECT pg_try_advisory_xact_lock(%s)", (LOCK_KEY,)).fetchone()
        if not got or not got[0]:
            return 0
        span = _event_span(conn)
        if span is None:
            return 0
        fp = fingerprint(ctx, calendars)
        _recount_recent(conn, ctx)
        conn.execute("DELETE FROM report_days_done WHERE config <> %s", (fp,))
        conn.execute("DELETE FROM report_months_done WHERE config <> %s", (fp,))
        first_day = span[0].astimezone(ctx.tz).date()
        horizon = span[1] - margin
        if now is not None:
            horizon = min(horizon, now - margin)
        last_day = horizon.astimezone(ctx.tz).date() - timedelta(days=1)
        if last_day < first_day:
            return 0
        done = {r[0] for r in conn.execute(
            "SELECT day FROM report_days_done WHERE day BETWEEN %s AND %s",
            (first_day, last_day))}  # fmt: skip
        todo = [d for d in _days(first_day, last_day) if d not in done]
        folded = 0
        if todo:
            a, b = _runs(todo)[0]
            b = min(b, a + timedelta(days=max_days - 1))
            _fold_days(conn, ctx, calendars, a, b, fp, span[1])
            done.update(_days(a, b))
            folded = (b - a).days + 1
        _fold_months(conn, first_day, last_day, done, fp)
        return folded


def _fold_days(
    conn: psycopg.Connection[Any],
    ctx: Context,
    calendars: QueueCalendars | None,
    a: date,
    b: date,
    fp: str,
    upto: datetime,
) -> None:
    lo, hi = local_bounds(ctx, a, b)
    conn.execute("DELETE FROM report_days WHERE span = 'd' AND day BETWEEN %s AND %s", (a, b))
    conn.execute("DELETE FROM report_day_lists WHERE day BETWEEN %s AND %s", (a, b))
    conn.execute("DELETE FROM report_days_done WHERE day BETWEEN %s AND %s", (a, b))
    months = sorted({d.replace(day=1) for d in (a, b)})
    conn.execute("DELETE FROM report_days WHERE span = 'm' AND day = ANY(%s)", (months,))
    conn.execute("DELETE FROM report_months_done WHERE month = ANY(%s)", (months,))
    params = reports.query_params(conn, ctx, a, b, {}, calendars, backlog_before=False)
    conn.execute("SET LOCAL work_mem = '256MB'")
    conn.execute(FOLD_SQL, params)
    conn.execute(DERIVE_SQL, {"a": a, "b": b})
    counts = dict(conn.execute(
        "SELECT (ts AT TIME ZONE %s)::date, count(*) FROM events "
        "WHERE ts >= %s AND ts < %s GROUP BY 1", (str(ctx.tz), lo, hi)).fetchall())  # fmt: skip
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO report_days_done (day, day_end, config, events_upto, events_n) "
            "VALUES (%s, %s, %s, %s, %s)",
            [(d, local_bounds(ctx, d, d)[1], fp, upto, counts.get(d, 0)) for d in _days(a, b)],
        )


def _fold_months(
    conn: psycopg.Connection[Any], first_day: date, last_day: date, done: set[date], fp: str
) -> None:
    """Sum the days of every finished month whose days are all folded and which has no
    month rows yet (a month before the first event's day has nothing to sum)."""
    have = {r[0] for r in conn.execute("SELECT month FROM report_months_done")}
    month = first_day.replace(day=1)
    while _month_end(month) <= last_day:
        end = _month_end(month)
        if month not in have and all(d in done for d in _days(max(month, first_day), end)):
            conn.execute("DELETE FROM report_days WHERE span = 'm' AND day = %s", (month,))
            conn.execute(MONTH_SQL, {"month": month, "last": end})
            conn.execute(
                "INSERT INTO report_months_done (month, month_end, config) VALUES (%s, %s, %s)",
                (month, _month_end_ts(conn, end), fp),
            )
        month = end + timedelta(days=1)


def _month_end_ts(conn: psycopg.Connection[Any], last: date) -> datetime:
    row = conn.execute("SELECT day_end FROM report_days_done WHERE day = %s", (last,)).fetchone()
    assert row is not None  # every day of the month is done
    return row[0]


def _recount_recent(conn: psycopg.Connection[Any], ctx: Context) -> None:
    """A day folded while a late insert was still uncommitted missed it, and the insert's
    trigger did not yet see the day as done. So each folded day's events are counted once
    more, a minute after its fold (longer than any writer's transaction): a changed count
    drops it (with every later day) to be folded again."""
    rows = conn.execute(
        "SELECT day, events_n FROM report_days_done WHERE NOT recounted "
        "AND computed_at < now() - interval '1 minute' ORDER BY day"
    ).fetchall()
    for day, n in rows:
        lo, hi = local_bounds(ctx, day, day)
        row = conn.execute(
            "SELECT count(*) FROM events WHERE ts >= %s AND ts < %s", (lo, hi)
        ).fetchone()
        if row and row[0] != n:
            conn.execute("DELETE FROM report_days_done WHERE day_end > %s", (lo,))
            conn.execute("DELETE FROM report_months_done WHERE month_end > %s", (lo,))
            return
        conn.execute("UPDATE report_days_done SET recounted = true WHERE day = %s", (day,))


# ---------------------------------------------------------------- reading


def _filter_sql(wanted: Mapping[str, FilterValue]) -> str:
    """The filters' clause: the queue one takes a set of queues (a supervisor's)."""
    return "".join(f" AND {DIM_COLUMNS[k]} = ANY(%({k})s::text[])" if k == "queue"
                   else f" AND {DIM_COLUMNS[k]} = %({k})s" for k in sorted(wanted))  # fmt: skip


class _Stored:
    """Sums over the stored rows of some days and whole months, under a report's filters:
    the one-dimension sets without filters, the cube with them."""

    def __init__(self, conn: psycopg.Connection[Any], wanted: Mapping[str, FilterValue]) -> None:
        self.conn = conn
        self.wanted: dict[str, Any] = {
            k: filter_values(v) if k == "queue" else v for k, v in wanted.items()
        }
        sets = " AND g IN ('total', " + ", ".join(f"'{d}'" for d in DIMS) + ")"
        self.where = (sets if not wanted else " AND g = 'cube'") + _filter_sql(wanted)

    def _spans(self, days: list[date], months: list[date]) -> dict[str, Any]:
        return {"days": days, "months": months, **self.wanted}

    def counters(self, raw: Raw, days: list[date], months: list[date]) -> None:
        if not days and not months:
            return
        spans = "((span = 'm' AND day = ANY(%(months)s)) OR (span = 'd' AND day = ANY(%(days)s)))"
        if not self.wanted:
            sql = (f"SELECT g, metric, dq, dch, dseg, dreg, dag, sum(n) FROM report_days "
                   f"WHERE {spans}{self.where} "
                   f"GROUP BY g, metric, dq, dch, dseg, dreg, dag")  # fmt: skip
            for g, metric, *dims, n in self.conn.execute(sql, self._spans(days, months)):
                if g == "total":
                    raw.all[metric] += int(n)
                else:
                    raw.by[g][metric, dims[DIMS.index(g)]] += int(n)
        else:
            sql = (f"SELECT metric, dq, dch, dseg, dreg, dag, sum(n) FROM report_days "
                   f"WHERE {spans}{self.where} "
                   f"GROUP BY metric, dq, dch, dseg, dreg, dag")  # fmt: skip
            for metric, *dims, n in self.conn.execute(sql, self._spans(days, months)):
                raw.add(None, metric, tuple(dims), int(n))

    def day_series(self, raw: Raw, days: list[date]) -> None:
        if not days:
            return
        if not self.wanted:
            where = " AND g = 'total'"
        elif len(self.wanted) == 1:  # that dimension's set: far fewer rows than the cube
            where = f" AND g = '{next(iter(self.wanted))}'" + _filter_sql(self.wanted)
        else:
            where = self.where
        sql = (f"SELECT day, metric, sum(n) FROM report_days WHERE span = 'd' "
               f"AND day = ANY(%(days)s) AND metric IN {DAY_METRICS_SQL}{where} "
               f"GROUP BY day, metric")  # fmt: skip
        for day, metric, n in self.conn.execute(sql, self._spans(days, [])):
            raw.by["day"][metric, day.isoformat()] += int(n)

    def backlog(self, days: list[date], months: list[date]) -> int:
        if not days and not months:
            return 0
        where = " AND g = 'total'" if not self.wanted else self.where
        sql = ("SELECT coalesce(sum(n), 0) FROM report_days WHERE metric = 'backlog' AND "
               "((span = 'm' AND day = ANY(%(months)s)) OR (span = 'd' AND day = ANY(%(days)s)))"
               f"{where}")  # fmt: skip
        row = self.conn.execute(sql, self._spans(days, months)).fetchone()
        return int(row[0]) if row else 0

    def lists(self, days: list[date]) -> list[tuple[date, str, str]]:
        """(day, metric, item) of the first LIST_CAP items of each kind, in stream order."""
        if not days:
            return []
        out = []
        for metric in sorted(LIST_METRICS):
            sql = ("SELECT day, metric, item FROM report_day_lists WHERE metric = %(metric)s "
                   f"AND day = ANY(%(days)s){_filter_sql(self.wanted)} ORDER BY day, item "
                   f"LIMIT {LIST_CAP}")  # fmt: skip
            out += self.conn.execute(sql, {**self._spans(days, []), "metric": metric}).fetchall()
        return out


def _cover(a: date, b: date, done: set[date], months: set[date]) -> tuple[list[date], list[date]]:
    """The fewest stored spans for the done days of [a, b]: whole done months, then days."""
    use_months = [m for m in sorted(months) if m >= a and _month_end(m) <= b]
    inside = {d for m in use_months for d in _days(m, _month_end(m))}
    return [d for d in _days(a, b) if d in done and d not in inside], use_months


def read_raw(
    conn: psycopg.Connection[Any],
    ctx: Context,
    start: date,
    end: date,
    filters: Mapping[str, str | Collection[str] | None],
    calendars: QueueCalendars | None = None,
) -> Raw:
    """The report's counters for [start, end] under `filters` (the queue filter may be a
    set of queues): the folded days' stored counters plus the event query over the days
    not folded. Equal to `reports.read_raw` over the whole range (tests/test_db_report_days.py)."""
    wanted = clean_filters(filters)
    span = _event_span(conn)
    if span is None or not _has_schema(conn):
        return reports.read_raw(conn, ctx, start, end, wanted, calendars)
    fp = fingerprint(ctx, calendars)
    first_day = span[0].astimezone(ctx.tz).date()
    done = {r[0] for r in conn.execute(
        "SELECT day FROM report_days_done WHERE config = %s AND day <= %s", (fp, end))}  # fmt: skip
    months = {r[0] for r in conn.execute(
        "SELECT month FROM report_months_done WHERE config = %s", (fp,))}  # fmt: skip
    undone = [d for d in _days(first_day, end) if d not in done] if first_day <= end else []
    # the backlog at the end is the sum of every move up to it: stored for the folded days,
    # from the event query for the others; unless too many days before the range are not
    # folded yet (the first backfill), then from the event query's own backlog at the end
    # of the last unfolded day (it reads the tickets open then from the tickets table)
    early = [d for d in undone if d < start]
    moves = len(early) <= MAX_EARLY_RUN_DAYS
    stored = _Stored(conn, wanted)
    raw = Raw()
    listed: list[tuple[date, int, str, dict[str, Any]]] = []
    run_moves, base = 0, 0  # the unfolded days' backlog moves; backlog at the last one's end
    for a, b in _runs(d for d in undone if d >= start):
        part = reports.read_raw(conn, ctx, a, b, wanted, calendars, backlog_before=not moves)
        raw.all.update(part.all)
        for dim, counter in part.by.items():
            raw.by[dim].update(counter)
        for kind, entries in part.lists.items():
            listed += [(date.fromisoformat(e["day"]), i, kind, e) for i, e in enumerate(entries)]
        run_moves += part.all["backlog"]
        base = part.backlog_end
    days, use_months = _cover(start, end, done, months)
    stored.counters(raw, days, use_months)
    stored.day_series(raw, [d for d in _days(start, end) if d in done])
    in_range = [d for d in _days(start, end) if d in done]
    for i, (day, metric, item) in enumerate(stored.lists(in_range)):
        _, kind, entry = list_entry(metric, item)
        listed.append((day, i, kind, entry))
    for _, _, kind, entry in sorted(listed, key=lambda x: (x[0], x[1])):
        if len(raw.lists[kind]) < LIST_CAP:
            raw.lists[kind].append(entry)
    if moves:
        for a, b in _runs(early):
            part = reports.read_raw(conn, ctx, a, b, wanted, calendars, backlog_before=False)
            run_moves += part.all["backlog"]
        stored_moves = stored.backlog(*_cover(first_day, end, done, months))
        raw.backlog_end = run_moves + stored_moves
        return raw
    last = max(undone)
    if last < start:
        base = reports.read_raw(conn, ctx, last, last, wanted, calendars).backlog_end
    after = last + timedelta(days=1)
    raw.backlog_end = base + (
        stored.backlog(*_cover(after, end, done, months)) if after <= end else 0
    )
    return raw


def _has_schema(conn: psycopg.Connection[Any]) -> bool:
    row = conn.execute("SELECT to_regclass('report_days_done') IS NOT NULL").fetchone()
    return bool(row and row[0])


# ---------------------------------------------------------------- the daemon's job


class ReportDays:
    """Background job: folds finished days as they come, and every past day at first
    (a bounded run of days per transaction, back to back while there is work)."""

    def __init__(
        self,
        records: Callable[[], AbstractContextManager[psycopg.Connection[Any]]],
        ctx: Context,
        calendars: QueueCalendars | None,
        *,
        interval: float = 180.0,
        max_days: int = 7,
    ) -> None:
        self.records = records
        self.ctx = ctx
        self.calendars = calendars
        self.interval = interval
        self.max_days = max_days

    def step(self) -> int:
        with self.records() as conn:
            return fold_step(conn, self.ctx, self.calendars, now=datetime.now().astimezone(),
                             max_days=self.max_days)  # fmt: skip

    def catch_up(self) -> int:
        """Fold every finished day there is now (benches, tests); returns days folded."""
        total = 0
        while n := self.step():
            total += n
        return total

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                n = await asyncio.to_thread(self.step)
            except Exception as exc:  # the records may be away: the next round retries
                log.warning("report days: %s", exc)
                n = 0
            if n:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.interval)


def figures(
    conn: psycopg.Connection[Any],
    ctx: Context,
    start: date,
    end: date,
    filters: Mapping[str, str | Collection[str] | None] | None = None,
    calendars: QueueCalendars | None = None,
    *,
    known_queues: set[str] | None = None,
    known: Mapping[str, set[str]] | None = None,
    stored: bool = True,
) -> dict[str, Any]:
    """The report's figures (`summarize` of the period's `Raw`). With `stored` the days
    omnidesk.reports.days has folded are read from `report_days` (the same figures, much
    faster over long ranges); without, all from the events.
    A `queue` filter naming a queue neither configured (`known_queues`) nor ever seen in
    the records is refused instead of answered with zeros; so is a `region` or `agent` filter
    naming a value outside `known` (the config's) that no ticket ever had."""
    wanted = clean_filters(filters or {})
    if end < start:
        raise ValueError(f"--to {end} is before --from {start}")
    for queue in filter_values(wanted["queue"]) if "queue" in wanted else []:
        if (
            queue
            and queue not in (known_queues or set())
            and not reports.known_values(conn, "queue", queue)
        ):
            raise UnknownFilterValue(f"--queue {queue!r}: no such queue in the config or records")
    for dim in ("region", "agent"):
        value = wanted.get(dim)
        ok = set((known or {}).get(dim, set()))
        if dim == "region":
            ok |= set(ctx.queue_regions.values())
        if (
            isinstance(value, str)
            and value
            and value not in ok
            and not reports.known_values(conn, dim, value)
        ):
            raise UnknownFilterValue(f"--{dim} {value!r}: no such {dim} in the config or records")
    if stored:  # the folded days' counters, the event query over the rest
        raw = read_raw(conn, ctx, start, end, wanted, calendars)
    else:
        raw = reports.read_raw(conn, ctx, start, end, wanted, calendars)
    return summarize(raw, start, end, wanted)
