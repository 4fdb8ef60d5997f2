"""Report figures for any period, computed with SQL over the events in PostgreSQL.

This is where every report's counters are made (reports keep none in Redis), so a
supervisor can ask for a year, or any range, long after the events have left Redis. It
builds the same `Raw` counters as `recompute.recompute` (the plain-Python check on it),
and `summarize` turns them into the figures every renderer takes.

How one query counts each event's effect (the fold; its terms in omnidesk/reports/fold.py)
without a loop per ticket:
- the events of the period, plus the earlier history of the tickets they touch (and of the
  tickets that may still stand open at the period's end), in stream order per ticket;
- a ticket's state before each event with window functions over that order: the status,
  agent and SLA policy last set (the "last value set before this row" is the max of
  `row number || value`), how many replies, ratings, warnings and breaches came so far;
- each event's contributions (metric, amount, queue, agent), as `recompute` counts them,
  unnested and summed with GROUPING SETS into the totals, the per-dimension breakdowns and
  the per-day series the report shows;
- business time from the queue's calendar: the calendar's own index of open intervals with
  their running totals (the same floats `BusinessCalendar.seconds_between` uses), passed
  in as one row per local day and joined by hash;
- repeat contacts from the openings of the period and the 30 days before it, per customer.

Histories it cannot fully see: events of a ticket before its `ticket_opened` are ignored
(as `recompute` does), a replayed `ticket_opened` neither changes nor counts anything, and
a ticket opened before the period whose history is needed is found through the period's
own events or, for the backlog at the period's end, through the tickets table (open now,
or changed after the period).

Kept whole though over 500 lines: most of it is the one report query (BODY_SQL) and the
code that reads its rows; apart, the two halves of one contract would drift.
"""

from __future__ import annotations

import json
import math
from bisect import bisect_left
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

import psycopg

from omnidesk.errors import PermanentError
from omnidesk.model import SYSTEM_ACTORS
from omnidesk.reports.figures import (
    LIST_CAP,
    FilterValue,
    Raw,
    clean_filters,
    filter_values,
)
from omnidesk.reports.fold import (
    BUCKET_LABELS,
    BUCKETS,
    DAY_METRICS,
    DIMS,
    DONE,
    OPEN,
    REPEAT_WINDOW_MS,
    TOTAL_ONLY,
    Context,
)

MAX_SLOTS_PER_DAY = 3  # merged open intervals starting on one local day (SQL has columns)
LIST_METRICS = {"list:breached": "breached", "list:default": "default", "list:comment": "comment"}


class UnknownFilterValue(PermanentError):
    """A report filter names a queue (or other value) the records have never seen."""


@dataclass(frozen=True)
class QueueCalendars:
    """Which business calendar each queue counts in (the fold's `Context.business`)."""

    default: Any  # BusinessCalendar
    by_queue: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_config(cls, cfg: Any) -> QueueCalendars:
        from omnidesk.calendar import NATIONAL, build_calendars

        calendars = build_calendars(cfg.calendars)
        national = calendars.get(NATIONAL) or next(iter(calendars.values()))
        by_queue = {name: calendars.get(q.calendar, national) for name, q in cfg.queues.items()}
        return cls(default=national, by_queue=by_queue)


def _day_rows(cals: QueueCalendars, ctx: Context, lo: date, hi: date) -> dict[str, Any]:
    """Per calendar and local day in [lo, hi]: the open interval that began last before the
    day (s0, e0, c0) and those beginning on it (s1..s3): enough to place any moment of the
    day in the calendar's running total, as `_Index.position` does. One array per column,
    row `cal * ndays + (day - lo)` (1-based in SQL), with no NULLs so SQL indexes them in
    constant time: an absent slot starts at +infinity."""
    distinct: list[Any] = []
    for cal in (cals.default, *cals.by_queue.values()):
        if all(cal is not c for c in distinct):
            distinct.append(cal)
    lo_s = datetime.combine(lo, time(0), tzinfo=ctx.tz).timestamp()
    hi_s = datetime.combine(hi + timedelta(days=1), time(0), tzinfo=ctx.tz).timestamp()
    cols: dict[str, Any] = {k: [] for k in _SLOT_COLUMNS}
    for cal in distinct:
        idx = cal._cover(lo_s, hi_s)  # the calendar's own index: the same floats it uses
        day = lo
        while day <= hi:
            a = datetime.combine(day, time(0), tzinfo=ctx.tz).timestamp()
            b = datetime.combine(day + timedelta(days=1), time(0), tzinfo=ctx.tz).timestamp()
            first, last = bisect_left(idx.starts, a), bisect_left(idx.starts, b)
            if last - first > MAX_SLOTS_PER_DAY:
                raise PermanentError(
                    f"calendar {cal.name!r}: more than {MAX_SLOTS_PER_DAY} working slots on "
                    f"{day}: reports count business time in at most that many"
                )
            slots = [first - 1 if first > 0 else None, *range(first, last)]
            slots += [None] * (MAX_SLOTS_PER_DAY + 1 - len(slots))
            for n, i in enumerate(slots):
                cols[f"s{n}"].append(math.inf if i is None else idx.starts[i])
                cols[f"e{n}"].append(0.0 if i is None else idx.ends[i])
                cols[f"c{n}"].append(0.0 if i is None else idx.cum[i])
            day += timedelta(days=1)
    cols["queue_cal"] = json.dumps({q: distinct.index(c) for q, c in cals.by_queue.items()})
    cols["default_cal"] = distinct.index(cals.default)
    cols["ndays"] = (hi - lo).days + 1
    cols["first_day"] = lo
    return cols


_SLOT_COLUMNS = tuple(f"{k}{n}" for n in range(MAX_SLOTS_PER_DAY + 1) for k in "sec")


def _position(i: str, t: str) -> str:
    """SQL for the calendar's running total at epoch seconds `t`, from the day row at index
    `i` of the slot arrays (an absent slot starts at +infinity, so it never matches)."""

    def at(col: str) -> str:
        return f"(%({col})s::float8[])[{i}]"

    branches = " ".join(
        f"WHEN {t} >= {at(f's{n}')} THEN ({at(f'c{n}')} + least({t}, {at(f'e{n}')})) "
        f"- {at(f's{n}')}"
        for n in range(MAX_SLOTS_PER_DAY, -1, -1)
    )
    return f"coalesce(CASE {branches} ELSE 0 END, 0)"


TIMED = "(ts >= %(lo)s AND ((type = 'replied' AND n_reply = 1) OR is_res))"
CAL = "coalesce((%(queue_cal)s::jsonb ->> q_now)::int, %(default_cal)s)"


def _item(metric: str, n: str = "1", queue: str = "NULL", agent: str = "NULL",
          item: str = "NULL") -> str:  # fmt: skip
    return f"ROW({metric}, {n}, {queue}, {agent}, {item})::report_item"


OPEN_SQL = "(" + ", ".join(f"'{s}'" for s in sorted(OPEN)) + ")"
DONE_SQL = "(" + ", ".join(f"'{s}'" for s in sorted(DONE)) + ")"
W = "PARTITION BY ticket_id ORDER BY ts, length(stream_id), stream_id"
BUCKETS_SQL = "'{" + ",".join(str(b) for b in BUCKETS) + "}'::float8[]"
LABELS_SQL = "'{" + ",".join(BUCKET_LABELS) + "}'::text[]"


def _has_target(target: str) -> str:
    return (f"(policy <> '' AND (NOT (%(targets)s::jsonb ? policy) "
            f"OR (%(targets)s::jsonb -> policy) ? '{target}'))")  # fmt: skip


def _outcome(w: str, b: str) -> str:
    return f"(CASE WHEN {b} > 0 THEN 'breached' WHEN {w} > 0 THEN 'warned' ELSE 'met' END)"


def _durations(name: str, agent: str) -> str:
    return ", ".join(
        _item(m, n, agent=agent)
        for m, n in (
            (f"'{name}_n'", "1"),
            (f"'{name}_w'", "wall"),
            (f"'{name}_b'", "biz"),
            (f"'{name}_wh:' || ({LABELS_SQL})[width_bucket((wall - 1)::float8, {BUCKETS_SQL}) + 1]",
             "1"),
            (f"'{name}_bh:' || ({LABELS_SQL})[width_bucket((biz - 1)::float8, {BUCKETS_SQL}) + 1]",
             "1"),
        )
    )  # fmt: skip


# The actor as the agent credited, "" for the daemon's own parts (fold.person).
PERSON = "(CASE WHEN coalesce(actor, '') = ANY(%(system_actors)s::text[]) THEN '' ELSE actor END)"
# A `replied` sent by the daemon itself (the CSAT survey) is no reply: renamed, it counts
# nothing, as recompute skips it.
TYPE_SQL = ("CASE WHEN {t} = 'replied' AND coalesce({a}, '') <> ''"
            " AND {a} = ANY(%(system_actors)s::text[])"
            " THEN 'replied_by_system' ELSE {t} END")  # fmt: skip


def _region(queue: str) -> str:
    return f"coalesce(nullif(%(regions)s::jsonb ->> {queue}, ''), nullif(t_region, ''), '')"


FR_OUTCOME = _item(
    "'sla:first_response:' || " + _outcome("w_fr", "b_fr"), agent="coalesce(actor, '')"
)
RES_OUTCOME = _item("'sla:resolution:' || " + _outcome("w_res", "b_res"))
BREACH_ITEM = _item(
    "'list:breached'",
    item="jsonb_build_object('ticket', ticket_id, 'target', target, "
    "'late_s', coalesce(d2, ''))::text",
)
COMMENT_ITEM = _item(
    "'list:comment'",
    item="jsonb_build_object('ticket', ticket_id, 'score', score::text, "
    "'comment', left(d2, 1000))::text",
)
BACKLOG_OUT = _item("'backlog'", "-1", queue="q_prev", agent="coalesce(prev_agent, '')")

ITEMS_SQL = f"""
CASE type
  WHEN 'ticket_opened' THEN ARRAY[
    {_item("'opened'")},
    {_item("'opened_h:' || to_char(ts AT TIME ZONE %(tz)s, 'HH24')")}]
  WHEN 'routed' THEN CASE WHEN coalesce(d1, '') <> ''
    THEN ARRAY[{_item("'rule:' || replace(d1, '|', '/')")}]
    ELSE ARRAY[{_item("'default_queue'")},
               {_item("'list:default'", item="jsonb_build_object('ticket', ticket_id)::text")}]
    END
  WHEN 'assigned' THEN ARRAY[{_item("'assigned'")}]
  WHEN 'transferred' THEN ARRAY[
    CASE WHEN moved_from <> '' AND moved_from <> q_now
         THEN {_item("'transfers_out'", queue="moved_from", agent="coalesce(prev_agent, '')")} END,
    {_item("'transfers'", agent=PERSON)}]
  WHEN 'escalated' THEN ARRAY[
    CASE WHEN moved_from <> '' AND moved_from <> q_now
         THEN {_item("'transfers_out'", queue="moved_from", agent="coalesce(prev_agent, '')")} END,
    {_item("'transfers'", agent=PERSON)}, {_item("'escalated'")}]
  WHEN 'replied' THEN ARRAY[{_item("'replies'", agent="coalesce(actor, '')")}]
    || CASE WHEN n_reply = 1 THEN ARRAY[
         {_durations("frt", "coalesce(actor, '')")},
         CASE WHEN {_has_target("first_response")} THEN {FR_OUTCOME}
         END] END
  WHEN 'sla_warned' THEN ARRAY[{_item("'sla_warn_ev:' || replace(target, '|', '/')")}]
  WHEN 'sla_breached' THEN ARRAY[
    {_item("'sla_breach_ev:' || replace(target, '|', '/')")},
    {BREACH_ITEM}]
  WHEN 'csat' THEN CASE WHEN score BETWEEN 1 AND 5 AND n_rated = 1 THEN ARRAY[
    {_item("'csat_n'")}, {_item("'csat_sum'", "score")}, {_item("'csat:' || score")},
    CASE WHEN coalesce(d2, '') <> '' THEN {COMMENT_ITEM} END] END
  ELSE CASE WHEN set_status IS NOT NULL THEN ARRAY[
    CASE WHEN is_res THEN {_item("'resolved'")} END,
    CASE WHEN is_reopen THEN {_item("'reopened'")} END]
    || CASE WHEN is_res AND n_res = 1 THEN ARRAY[
         {_durations("res", "NULL")},
         CASE WHEN {_has_target("resolution")} THEN {RES_OUTCOME} END] END
  END
END
"""

BACKLOG_SQL = f"""
ARRAY[
  CASE WHEN was_open AND (NOT now_open OR moved) THEN {BACKLOG_OUT} END,
  CASE WHEN now_open AND (NOT was_open OR moved) THEN {_item("'backlog'")} END]
"""

# The event fields the fold reads, by type, as three narrow columns: the rows sorted per
# ticket carry these instead of the whole jsonb.
FIELDS = """
  CASE type WHEN 'status_changed' THEN data->>'to' WHEN 'assigned' THEN data->>'agent'
    WHEN 'routed' THEN data->>'rule' WHEN 'transferred' THEN data->>'from'
    WHEN 'escalated' THEN data->>'from' WHEN 'sla_warned' THEN data->>'target'
    WHEN 'sla_breached' THEN data->>'target' WHEN 'csat' THEN data->>'score'
    WHEN 'ticket_opened' THEN data->>'segment' END AS d1,
  CASE type WHEN 'routed' THEN data->>'sla_policy' WHEN 'sla_breached' THEN data->>'late_s'
    WHEN 'csat' THEN data->>'comment' WHEN 'ticket_opened' THEN data->>'region' END AS d2,
  CASE WHEN type = 'ticket_opened' THEN data->>'created' END AS d3"""

BODY_SQL = f"""
WITH
pre AS (  -- tickets whose history before the period the period's figures depend on
  SELECT DISTINCT ticket_id FROM events
   WHERE ts >= %(lo)s AND ts < %(hi)s AND ticket_id IS NOT NULL AND %(lo)s > %(first_ts)s
  UNION
  SELECT id FROM tickets
   WHERE %(backlog_before)s AND created_at < %(lo)s
     AND (status IN {OPEN_SQL} OR updated_at >= %(lo)s)
),
ev AS (
  SELECT ts, stream_id, {TYPE_SQL.format(t="type", a="actor")} AS type, ticket_id, queue,
         channel, actor, {FIELDS} FROM events
   WHERE ts >= %(lo)s AND ts < %(hi)s AND ticket_id IS NOT NULL AND ticket_id <> ''
  UNION ALL
  SELECT e.ts, e.stream_id, {TYPE_SQL.format(t="e.type", a="e.actor")} AS type, e.ticket_id,
         e.queue, e.channel, e.actor, {FIELDS}
    FROM pre JOIN events e ON e.ticket_id = pre.ticket_id AND e.ts < %(lo)s
),
b AS (
  SELECT ev.*,
    (extract(epoch FROM ts) * 1000)::bigint AS ts_ms,
    row_number() OVER w AS rn,
    count(*) FILTER (WHERE type = 'ticket_opened') OVER w AS n_open,
    CASE type WHEN 'ticket_opened' THEN 'new' WHEN 'status_changed' THEN nullif(d1, '')
      WHEN 'resolved' THEN 'resolved' WHEN 'closed' THEN 'closed' WHEN 'reopened' THEN 'open'
    END AS set_status,
    CASE WHEN type = 'assigned' THEN coalesce(nullif(d1, ''), {PERSON}, '')
         WHEN type IN ('transferred', 'escalated') THEN '' END AS set_agent,
    CASE WHEN type = 'routed' THEN coalesce(d2, '') END AS set_policy,
    CASE WHEN type IN ('sla_warned', 'sla_breached')
         THEN coalesce(nullif(d1, ''), 'unknown') END AS target,
    CASE WHEN type = 'csat' AND d1 ~ '^\\s*[-+]?[0-9]{{1,9}}(\\.[0-9]*)?\\s*$'
         THEN trunc(d1::numeric)::int END AS score
  FROM ev WINDOW w AS ({W} ROWS UNBOUNDED PRECEDING)
),
k AS (  -- a ticket's history from its opening on; a replayed opening is dropped
  SELECT * FROM b WHERE n_open >= 1 AND NOT (type = 'ticket_opened' AND n_open > 1)
),
c AS (
  SELECT k.*,
    first_value(d1) OVER w AS o_segment,
    first_value(d2) OVER w AS o_region,
    first_value(d3) OVER w AS o_created,
    coalesce(first_value(channel) OVER w, '') AS t_channel,
    first_value(ts_ms) OVER w AS o_ts,
    coalesce(nullif(queue, ''), lag(queue) OVER w, '') AS q_now,
    coalesce(lag(queue) OVER w, '') AS q_prev,
    substr(max(lpad(rn::text, 10, '0') || set_status) OVER wp, 11) AS prev_status,
    substr(max(lpad(rn::text, 10, '0') || set_agent) OVER wp, 11) AS prev_agent,
    coalesce(substr(max(lpad(rn::text, 10, '0') || set_policy) OVER w, 11), '') AS policy,
    count(*) FILTER (WHERE type = 'replied') OVER w AS n_reply,
    count(*) FILTER (WHERE score BETWEEN 1 AND 5) OVER w AS n_rated,
    count(*) FILTER (WHERE type = 'sla_warned' AND target = 'first_response') OVER w AS w_fr,
    count(*) FILTER (WHERE type = 'sla_breached' AND target = 'first_response') OVER w AS b_fr,
    count(*) FILTER (WHERE type = 'sla_warned' AND target = 'resolution') OVER w AS w_res,
    count(*) FILTER (WHERE type = 'sla_breached' AND target = 'resolution') OVER w AS b_res
  FROM k WINDOW w AS ({W} ROWS UNBOUNDED PRECEDING),
                wp AS ({W} ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
),
d AS (
  SELECT c.*,
    coalesce(set_status, prev_status) AS st_now,
    coalesce(set_agent, prev_agent, '') AS ag_now,
    coalesce(type <> 'ticket_opened' AND set_status IS NOT NULL
      AND prev_status IN {OPEN_SQL} AND set_status IN {DONE_SQL}, false) AS is_res,
    coalesce(type <> 'ticket_opened' AND set_status IS NOT NULL
      AND prev_status IN {DONE_SQL} AND set_status IN {OPEN_SQL}, false) AS is_reopen,
    coalesce(d1, '') AS moved_from,
    coalesce(o_region, '') AS t_region,
    coalesce(nullif(o_segment, ''), 'unknown') AS t_segment,
    coalesce(CASE WHEN o_created ~ '^[0-9]{{1,15}}(\\.[0-9]*)?$'
                  THEN nullif(trunc(o_created::numeric)::bigint, 0) END, o_ts) AS o_ms
  FROM c
),
e AS (
  SELECT d.*,
    count(*) FILTER (WHERE is_res) OVER w AS n_res,
    coalesce(prev_status IN {OPEN_SQL}, false) AS was_open,
    coalesce(set_status, prev_status) IN {OPEN_SQL} AS now_open,
    (q_prev IS DISTINCT FROM q_now OR coalesce(prev_agent, '') IS DISTINCT FROM ag_now) AS moved,
    CASE WHEN {TIMED} THEN {CAL} * %(ndays)s
      + ((to_timestamp(o_ms / 1000.0) AT TIME ZONE %(tz)s)::date - %(first_day)s::date) + 1
    END AS ia,
    CASE WHEN {TIMED} THEN {CAL} * %(ndays)s
      + ((ts AT TIME ZONE %(tz)s)::date - %(first_day)s::date) + 1
    END AS ib
  FROM d WINDOW w AS ({W} ROWS UNBOUNDED PRECEDING)
),
f AS (
  SELECT e.*,
    greatest(0, (ts_ms - o_ms) / 1000) AS wall,
    CASE WHEN NOT %(business)s THEN greatest(0, (ts_ms - o_ms) / 1000)
         WHEN ia IS NOT NULL
         THEN greatest(0, trunc({_position("ib", "(ts_ms::float8 / 1000)")}
                                - {_position("ia", "(o_ms::float8 / 1000)")}))::bigint
         ELSE 0
    END AS biz
  FROM e
),
items AS (
  SELECT CASE WHEN ts >= %(lo)s THEN (ts AT TIME ZONE %(tz)s)::date END AS day,
         it.metric, it.n,
         replace(coalesce(it.queue, q_now), '|', '/') AS dq,
         replace(t_channel, '|', '/') AS dch,
         replace(t_segment, '|', '/') AS dseg,
         replace({_region("coalesce(it.queue, q_now)")}, '|', '/') AS dreg,
         replace(coalesce(it.agent, ag_now), '|', '/') AS dag,
         it.item, ts_ms AS ord_ts, stream_id AS ord_id
    FROM f CROSS JOIN LATERAL unnest(
      CASE WHEN ts >= %(lo)s THEN {ITEMS_SQL} END || {BACKLOG_SQL}) AS it
   WHERE it.metric IS NOT NULL AND (ts >= %(lo)s OR it.metric = 'backlog')
  UNION ALL
  SELECT (ts AT TIME ZONE %(tz)s)::date, 'repeat_30d', 1,
         replace(coalesce(queue, ''), '|', '/'), replace(coalesce(channel, ''), '|', '/'),
         replace(coalesce(nullif(data->>'segment', ''), 'unknown'), '|', '/'),
         replace(coalesce(nullif(%(regions)s::jsonb ->> queue, ''),
                          nullif(data->>'region', ''), ''), '|', '/'),
         '', NULL, NULL, NULL
    FROM (
      SELECT ts, queue, channel, data,
             ts - lag(ts) OVER (PARTITION BY data->>'customer'
                                ORDER BY ts, length(stream_id), stream_id) AS gap
        FROM events
       WHERE type = 'ticket_opened' AND ts >= %(lo)s - %(window)s AND ts < %(hi)s
         AND coalesce(data->>'customer', '') <> ''
         AND data->>'customer' IN (  -- only customers opening in the period: a short
           SELECT data->>'customer' FROM events  -- period sorts few of the 30 days before
            WHERE type = 'ticket_opened' AND ts >= %(lo)s AND ts < %(hi)s)
    ) o
   WHERE ts >= %(lo)s AND gap <= %(window)s
),
kept AS (  -- a listed item carries its stream position, day and dims in its text
  SELECT CASE WHEN day IS NULL THEN 'backlog_before' ELSE metric END AS metric,
         day, n, dq, dch, dseg, dreg, dag,
         CASE WHEN item IS NOT NULL THEN lpad(ord_ts::text, 15, '0')
           || lpad(split_part(ord_id, '-', 2), 20, '0') || E'\\t' || day::text || E'\\t'
           || json_build_array(dq, dch, dseg, dreg, dag)::text || E'\\t' || item END AS item
    FROM items
   WHERE (%(f_queue)s::text[] IS NULL OR dq = ANY(%(f_queue)s::text[]))
     AND (%(f_channel)s::text IS NULL OR dch = %(f_channel)s)
     AND (%(f_segment)s::text IS NULL OR dseg = %(f_segment)s)
     AND (%(f_region)s::text IS NULL OR dreg = %(f_region)s)
     AND (%(f_agent)s::text IS NULL OR dag = %(f_agent)s)
)
"""

REPORT_SQL = (
    BODY_SQL
    + f""",
sums AS (
  SELECT grouping(day, dq, dch, dseg, dreg, dag, item) AS g, metric, day, dq, dch, dseg,
         dreg, dag, item, sum(n)::bigint AS n
    FROM kept
   GROUP BY GROUPING SETS ((metric, day), (metric, dq), (metric, dch), (metric, dseg),
                           (metric, dreg), (metric, dag), (metric, item))
)
SELECT metric, day, dq, dch, dseg, dreg, dag, n, item, g FROM (
  SELECT sums.*, row_number() OVER (PARTITION BY metric, g ORDER BY item) AS r FROM sums
) x WHERE item IS NULL OR r <= {LIST_CAP}
"""
)

# grouping() bits for (day, dq, dch, dseg, dreg, dag, item): which set a `sums` row is of
_SET_OF_MASK = {
    0b0111111: "day",
    0b1011111: "queue",
    0b1101111: "channel",
    0b1110111: "segment",
    0b1111011: "region",
    0b1111101: "agent",
    0b1111110: "item",
}


def local_bounds(ctx: Context, start: date, end: date) -> tuple[datetime, datetime]:
    """[start 00:00, end + 1 day 00:00) in the report's time zone."""
    lo = datetime.combine(start, time(0), tzinfo=ctx.tz)
    hi = datetime.combine(end + timedelta(days=1), time(0), tzinfo=ctx.tz)
    return lo, hi


def read_raw(
    conn: psycopg.Connection[Any],
    ctx: Context,
    start: date,
    end: date,
    filters: Mapping[str, str | Collection[str] | None],
    calendars: QueueCalendars | None = None,
    *,
    backlog_before: bool = True,
) -> Raw:
    """The report's counters for [start, end] (local dates, inclusive) under `filters`
    (the queue filter may be a set of queues).
    Without `backlog_before` the backlog at the end is left incomplete (the period's own
    moves are still in `all["backlog"]`): for callers that know the backlog before."""
    wanted = clean_filters(filters)
    params = query_params(conn, ctx, start, end, wanted, calendars, backlog_before=backlog_before)
    conn.execute("SET LOCAL work_mem = '256MB'")
    raw = Raw()
    backlog_total = 0
    listed: list[tuple[str, str, dict[str, Any]]] = []
    for metric, day, dq, dch, dseg, dreg, dag, n, item, g in conn.execute(REPORT_SQL, params):
        n = int(n)
        dim = _SET_OF_MASK[g]
        if metric in LIST_METRICS:
            if item is not None:
                listed.append(list_entry(metric, item))
            continue
        if dim == "item":
            continue
        if metric in ("backlog", "backlog_before") and dim == "day":
            backlog_total += n
        if metric == "backlog_before":
            continue
        if dim == "day":
            raw.all[metric] += n
            if metric in DAY_METRICS:
                raw.by["day"][metric, day.isoformat()] += n
        elif not metric.startswith(TOTAL_ONLY):
            value = {"queue": dq, "channel": dch, "segment": dseg, "region": dreg, "agent": dag}
            raw.by[dim][metric, value[dim]] += n
    for _, kind, entry in sorted(listed, key=lambda x: x[0]):  # stream order
        raw.lists[kind].append(entry)
    raw.backlog_end = backlog_total
    return raw


def list_entry(metric: str, item: str) -> tuple[str, str, dict[str, Any]]:
    """(stream order key, list kind, entry) of one listed item as the query makes it."""
    order, on, dims, body = item.split("\t", 3)
    entry = {"dims": json.loads(dims), **json.loads(body), "day": on}
    return order, LIST_METRICS[metric], entry


def query_params(
    conn: psycopg.Connection[Any],
    ctx: Context,
    start: date,
    end: date,
    wanted: Mapping[str, FilterValue],
    calendars: QueueCalendars | None,
    *,
    backlog_before: bool = True,
) -> dict[str, Any]:
    """The parameters of BODY_SQL for [start, end]. Without `backlog_before` the tickets
    that only stand open across the period are not read (their `backlog_before` rows are
    then incomplete): what folding single days needs, as each day keeps its own moves."""
    lo, hi = local_bounds(ctx, start, end)
    row = conn.execute("SELECT min(ts) FROM events").fetchone()
    first_ts = row[0] if row and row[0] is not None else hi
    params: dict[str, Any] = {
        "backlog_before": backlog_before,
        "lo": lo,
        "hi": hi,
        "first_ts": first_ts,
        "tz": str(ctx.tz),
        "window": timedelta(milliseconds=REPEAT_WINDOW_MS),
        "regions": json.dumps(dict(ctx.queue_regions)),
        "targets": json.dumps({p: sorted(t) for p, t in ctx.policy_targets.items()}),
        "business": calendars is not None,
        "system_actors": sorted(SYSTEM_ACTORS),
        **{f"f_{k}": wanted.get(k) for k in DIMS},
        "f_queue": filter_values(wanted["queue"]) if "queue" in wanted else None,
    }
    if calendars is not None:
        first_day = min(first_ts.astimezone(ctx.tz).date(), start) - timedelta(days=40)
        params.update(_day_rows(calendars, ctx, first_day, end + timedelta(days=1)))
    else:
        params.update({k: [] for k in _SLOT_COLUMNS})
        params.update(queue_cal="{}", default_cal=0, ndays=0, first_day=start)
    return params


def known_values(conn: psycopg.Connection[Any], dim: str, value: str) -> bool:
    """Has any ticket ever been in this queue (or channel), or any event named this region
    or agent? The queue is cheap (the tickets' indexes); a region or agent reads the events
    until a hit, which only a filter outside the config's values asks for."""
    if dim in ("queue", "channel"):
        sql = f"SELECT EXISTS (SELECT 1 FROM tickets WHERE {dim} = %s)"
        args: tuple[str, ...] = (value,)
    elif dim == "region":
        sql = ("SELECT EXISTS (SELECT 1 FROM events WHERE type = 'ticket_opened'"
               " AND data->>'region' = %s)")  # fmt: skip
        args = (value,)
    else:
        sql = ("SELECT EXISTS (SELECT 1 FROM events WHERE (type = 'assigned' AND"
               " data->>'agent' = %s) OR (type IN ('replied', 'transferred', 'escalated',"
               " 'assigned') AND actor = %s))")  # fmt: skip
        args = (value, value)
    row = conn.execute(sql, args).fetchone()
    return bool(row and row[0])
