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
from collections.abc import Callable, Collection, Mapping
from contextlib import AbstractContextManager
from datetime import date
from typing import Any

from omnidesk.errors import PermanentError
from omnidesk.reports.fold import Context
from omnidesk.store import guarded

log = logging.getLogger("omnidesk.reports")
SOURCES = ("auto", "records", "rollups")


CHECKED_DIMS = ("queue", "region", "agent")  # channel and segment are closed lists (the CLI's)


class UnknownQueue(PermanentError):
    """A filter (`--queue`, `--region`, `--agent`) names a value neither the config nor the
    figures have ever seen: an error naming it, never a report of zeros."""


def config_values(config: Any, dim: str) -> set[str]:
    """The queues, regions or agents the config names (agents by id and e-mail)."""
    if dim == "queue":
        return set(config.queues)
    if dim == "region":
        return {q.region for q in config.queues.values() if q.region}
    if dim == "agent":
        return {a.id for a in config.agents} | {a.email for a in config.agents if a.email}
    return set()


def _rollups_know(store: Any, dim: str, value: str) -> bool:
    """Have the rollups ever counted anything for this value? The queue list, else the
    value's month hashes (every contribution lands in one) since the rollups began."""
    from datetime import UTC, datetime, timedelta

    if dim == "queue":
        return bool(store.r.hexists(store.key("ru", "qs"), value))
    since = store.r.get(store.key("ru", "since"))
    now = datetime.now(UTC)
    # ru:since is when folding began; the events may be older (a replayed stream): at least
    # the three years before now are looked at too
    first = now - timedelta(days=3 * 366)
    if since:
        first = min(first, datetime.fromtimestamp(int(since) / 1000, UTC))
    months, at = [], first.replace(day=1)
    while at <= now + timedelta(days=31):
        months.append(f"{at:%Y-%m}")
        at = (at + timedelta(days=32)).replace(day=1)
    keys = [store.key("ru", "m", m, "by", dim, value) for m in months]
    return bool(store.r.exists(*keys))


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
    filters: Mapping[str, str | Collection[str] | None],
    source: str = "auto",
) -> tuple[dict[str, Any], str]:
    """(figures, "records" | "rollups"). `records` opens a connection to PostgreSQL
    (`Records.connection` in the daemon, a direct connection in the CLI), None when there
    is no database. The queue filter may be a set of queues (a supervisor's): their
    figures together."""
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
    conn: Any, config: Any, ctx: Context, start: date, end: date, filters: Mapping[str, Any]
) -> dict[str, Any]:
    from omnidesk.db.reports import QueueCalendars, UnknownFilterValue, figures

    known = {dim: config_values(config, dim) for dim in CHECKED_DIMS}
    try:
        return figures(conn, ctx, start, end, filters, QueueCalendars.from_config(config),
                       known_queues=known["queue"], known=known)  # fmt: skip
    except UnknownFilterValue as exc:
        raise UnknownQueue(str(exc)) from None


@guarded
def _from_rollups(
    store: Any, config: Any, ctx: Context, start: date, end: date, filters: Mapping[str, Any]
) -> dict[str, Any]:
    from omnidesk.reports.api import figures
    from omnidesk.reports.figures import clean_filters, filter_values
    from omnidesk.reports.rollup import Rollups

    wanted = clean_filters(filters)
    Rollups(store, ctx).catch_up()  # values first seen in events not folded yet are known
    for dim in CHECKED_DIMS:
        for value in filter_values(wanted[dim]) if dim in wanted else []:
            known = value in config_values(config, dim)
            if value and not known and not _rollups_know(store, dim, value):
                raise UnknownQueue(f"--{dim} {value!r}: no such {dim} in the config or the rollups")
    return figures(store, ctx, start, end, wanted, catch_up=False)
