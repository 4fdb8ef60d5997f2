"""Where a report's figures come from: PostgreSQL, the system of record, for any period
(omnidesk.reports.sql: the finished days `report_days` holds, SQL over the events for the
rest). Every reader takes them from here: `omnidesk report`, scheduled reports, GET
/v1/reports and the dashboard's today block. Redis keeps no report counters: whatever
grows with history belongs in PostgreSQL.

PostgreSQL away is `ReportsUnavailable` (transient: exit 2 at the CLI, 503 over HTTP, a
later round for the scheduler), never a report of zeros."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from contextlib import AbstractContextManager
from datetime import date
from typing import Any

from omnidesk.db.connect import RecordsUnavailable
from omnidesk.errors import PermanentError, TransientError
from omnidesk.reports.callsection import calls_for
from omnidesk.reports.days import figures
from omnidesk.reports.fold import Context
from omnidesk.reports.sql import QueueCalendars, UnknownFilterValue

CHECKED_DIMS = ("queue", "region", "agent")  # channel and segment are closed lists (the CLI's)

Connect = Callable[[], AbstractContextManager[Any]]


class UnknownQueue(PermanentError):
    """A filter (`--queue`, `--region`, `--agent`) names a value neither the config nor the
    records have ever seen: an error naming it, never a report of zeros."""


class ReportsUnavailable(TransientError):
    """PostgreSQL cannot be reached: no figures now (they are never made up from Redis)."""


def config_values(config: Any, dim: str) -> set[str]:
    """The queues, regions or agents the config names (agents by id and e-mail)."""
    if dim == "queue":
        return set(config.queues)
    if dim == "region":
        return {q.region for q in config.queues.values() if q.region}
    if dim == "agent":
        return {a.id for a in config.agents} | {a.email for a in config.agents if a.email}
    return set()


def schema_ready(conn: Any) -> bool:
    """The report schema (migration 0004) is there."""
    row = conn.execute("SELECT to_regtype('report_item') IS NOT NULL").fetchone()
    return bool(row and row[0])


def figures_for(
    records: Connect | None,
    config: Any,
    ctx: Context,
    start: date,
    end: date,
    filters: Mapping[str, str | Collection[str] | None],
    calendars: Any = None,
) -> dict[str, Any]:
    """The figures for [start, end] under `filters`. `records` opens a connection to
    PostgreSQL (`Records.connection` in the daemon, a direct connection in the CLI), None
    when there is no database. The queue filter may be a set of queues (a supervisor's):
    their figures together. `calendars` (QueueCalendars) saves rebuilding them per call.
    `calls` holds the call book's figures under the same filters (reports.callsection),
    None when the config has no phone (`cti`)."""
    if records is None:
        raise PermanentError("reports are computed in PostgreSQL: no database is configured"
                             " (service.database_url)")  # fmt: skip
    known = {dim: config_values(config, dim) for dim in CHECKED_DIMS}
    try:
        with records() as conn:
            if not schema_ready(conn):
                raise PermanentError("the records lack the report schema (0004):"
                                     " run omnidesk db upgrade")  # fmt: skip
            result = figures(conn, ctx, start, end, filters,
                             calendars or QueueCalendars.from_config(config),
                             known_queues=known["queue"], known=known)  # fmt: skip
            result["calls"] = calls_for(conn, config, ctx.tz, start, end, filters)
            return result
    except UnknownFilterValue as exc:
        raise UnknownQueue(str(exc)) from None
    except RecordsUnavailable as exc:
        raise ReportsUnavailable(f"no report: {exc}") from None
