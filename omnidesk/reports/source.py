"""Where a report's figures come from: PostgreSQL's events (any period, SQL) when the
records hold them, else the Redis rollups. Both give the same figures structure, so every
renderer and the scheduled e-mails take either.

`auto` (the default) takes the rollups when they cover the period (they have folded events
and began on or before its first day: `ru:since`), because they answer in a fraction of a
second where SQL over the raw events takes seconds to minutes for long periods (see
bench/history.py); otherwise PostgreSQL, which holds every event kept (imported archives,
history from before the rollups began). It falls back to the rollups when PostgreSQL is
away, has no events yet, or lacks the report schema (0004): a report never fails because
the system of record is down. The rollups stay for the live dashboard either way."""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import date
from typing import Any

from omnidesk.errors import PermanentError
from omnidesk.reports.fold import Context

log = logging.getLogger("omnidesk.reports")
SOURCES = ("auto", "records", "rollups")


class UnknownQueue(PermanentError):
    """`--queue` names a queue neither the config nor the figures have ever seen."""


def records_ready(conn: Any) -> bool:
    """The report schema is there and the writer has stored at least one event."""
    row = conn.execute("SELECT to_regtype('report_item') IS NOT NULL").fetchone()
    if not (row and row[0]):
        return False
    row = conn.execute("SELECT EXISTS (SELECT 1 FROM events)").fetchone()
    return bool(row and row[0])


def rollups_cover(store: Any, ctx: Context, start: date) -> bool:
    """Have the rollups folded events since on or before `start`? (Redis away: no.) Rollups
    begun before `ru:since` existed are trusted from any day, as before."""
    from omnidesk.errors import StoreUnavailable

    try:
        last, since = store.r.mget(store.key("ru", "last"), store.key("ru", "since"))
    except StoreUnavailable:
        return False
    except Exception as exc:  # redis-py's own errors when the store is not guarded here
        log.info("rollups unreadable: %s", exc)
        return False
    if not last:
        return False
    return since is None or ctx.day(int(since)) <= start.isoformat()


def figures_for(
    store: Any,
    records: Callable[[], AbstractContextManager[Any]] | None,
    config: Any,
    ctx: Context,
    start: date,
    end: date,
    filters: dict[str, str | None],
    source: str = "auto",
) -> tuple[dict[str, Any], str]:
    """(figures, "records" | "rollups"). `records` opens a connection to PostgreSQL
    (`Records.connection` in the daemon, a direct connection in the CLI), None when there
    is no database."""
    from omnidesk.db.connect import RecordsUnavailable

    if source not in SOURCES:
        raise PermanentError(f"--source {source!r}: use {', '.join(SOURCES)}")
    if source == "auto" and rollups_cover(store, ctx, start):
        return _from_rollups(store, config, ctx, start, end, filters), "rollups"
    if source != "rollups" and records is not None:
        try:
            with records() as conn:
                if records_ready(conn):
                    return _from_records(conn, config, ctx, start, end, filters), "records"
                if source == "records":
                    raise PermanentError("the records hold no events yet (or lack schema 0004:"
                                         " run omnidesk db upgrade)")  # fmt: skip
        except RecordsUnavailable as exc:
            if source == "records":
                raise
            log.info("report from the rollups: %s", exc)
    elif source == "records":
        raise PermanentError("no database configured for the records")
    return _from_rollups(store, config, ctx, start, end, filters), "rollups"


def _from_records(
    conn: Any, config: Any, ctx: Context, start: date, end: date, filters: dict[str, Any]
) -> dict[str, Any]:
    from omnidesk.db.reports import QueueCalendars, UnknownFilterValue, figures

    try:
        return figures(conn, ctx, start, end, filters, QueueCalendars.from_config(config),
                       known_queues=set(config.queues))  # fmt: skip
    except UnknownFilterValue as exc:
        raise UnknownQueue(str(exc)) from None


def _from_rollups(
    store: Any, config: Any, ctx: Context, start: date, end: date, filters: dict[str, Any]
) -> dict[str, Any]:
    from omnidesk.reports.api import figures

    queue = filters.get("queue")
    if queue and queue not in config.queues and not store.r.hexists(store.key("ru", "qs"), queue):
        raise UnknownQueue(f"--queue {queue!r}: no such queue in the config or the rollups")
    return figures(store, ctx, start, end, filters)
