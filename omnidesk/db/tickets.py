"""Ticket lists from PostgreSQL: by queue, status, customer, channel, tag and date, newest
first, a page at a time.

Pages are keyset pages: the cursor is the (created_at, id) of the last ticket shown, and the
next page asks for the tickets strictly before it in (created_at DESC, id DESC) order, so
page 1,000 costs what page 1 costs (no OFFSET) and a ticket opened meanwhile never shifts
the pages. Several queues (an agent's scope) are one index walk per queue, merged: `queue =
ANY(...)` would read and sort every ticket of every queue instead. One query per page,
whatever its length: no round trip per ticket.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec
import psycopg
from psycopg import sql

from omnidesk.errors import PermanentError
from omnidesk.model import Ticket

MAX_LIMIT = 500
COLUMNS = ("id", "channel", "account", "customer_id", "created_at", "updated_at", "subject",
           "preview", "status", "queue", "priority", "sla_policy", "tags", "language",
           "segment", "region", "rule", "assignee")  # fmt: skip

Cursor = tuple[datetime, str]  # (created_at, id) of the last ticket of a page


class BadCursor(PermanentError, ValueError):
    """A `before` cursor that this module did not hand out (a 400 at the API)."""


@dataclass(frozen=True)
class Page:
    tickets: list[Ticket]
    next: Cursor | None  # pass as `before` for the next page; None: this was the last


def encode_cursor(cursor: Cursor) -> str:
    """Opaque and URL-safe: microseconds since the epoch and the ticket id."""
    micros = int(cursor[0].timestamp() * 1_000_000)
    text = f"{micros}:{cursor[1]}".encode()
    return base64.urlsafe_b64encode(text).decode().rstrip("=")


def decode_cursor(text: str) -> Cursor:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
        micros, _, tid = raw.partition(":")
        if not tid:
            raise ValueError(raw)
        return datetime.fromtimestamp(int(micros) / 1_000_000, UTC), tid
    except (ValueError, UnicodeDecodeError):
        raise BadCursor(f"before {text!r}: not a cursor from a previous page") from None


def list_tickets(
    conn: psycopg.Connection[Any],
    *,
    queue: str | Sequence[str] | None = None,
    status: str | None = None,
    customer: str | None = None,
    channel: str | None = None,
    tag: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    before: Cursor | None = None,
    limit: int = 50,
) -> Page:
    """One page of tickets, newest first. `queue` is one queue, or the list of queues an
    agent may see (an empty list: nothing); `since`/`until` bound created_at [since, until)."""
    limit = max(1, min(MAX_LIMIT, limit))
    where: list[sql.Composable] = []
    params: list[Any] = []
    for column, value in (("status", status), ("customer_id", customer), ("channel", channel)):
        if value is not None:
            where.append(sql.SQL("{} = %s").format(sql.Identifier(column)))
            params.append(value)
    if tag is not None:
        where.append(sql.SQL("tags @> ARRAY[%s]::text[]"))
        params.append(tag)
    if since is not None:
        where.append(sql.SQL("created_at >= %s"))
        params.append(since)
    if until is not None:
        where.append(sql.SQL("created_at < %s"))
        params.append(until)
    if before is not None:
        where.append(sql.SQL("(created_at, id) < (%s, %s)"))
        params += [before[0], before[1]]
    cols = sql.SQL(", ").join(sql.Identifier(c) for c in COLUMNS)
    order = sql.SQL("ORDER BY created_at DESC, id DESC LIMIT %s")

    def one(extra: list[sql.Composable]) -> sql.Composed:
        conds = extra + where
        cond = sql.SQL(" WHERE ") + sql.SQL(" AND ").join(conds) if conds else sql.SQL("")
        return sql.SQL("SELECT {} FROM tickets{} ").format(cols, cond) + order

    queues = [queue] if isinstance(queue, str) else None if queue is None else list(queue)
    if queues is None:
        query, args = one([]), [*params, limit + 1]
    elif not queues:
        return Page([], None)
    elif len(queues) == 1:
        query, args = one([sql.SQL("queue = %s")]), [queues[0], *params, limit + 1]
    else:  # one index walk per queue, each at most a page long, then merged
        parts = [sql.SQL("(") + one([sql.SQL("queue = %s")]) + sql.SQL(")") for _ in queues]
        query = (
            sql.SQL("SELECT * FROM (")
            + sql.SQL(" UNION ALL ").join(parts)
            + sql.SQL(") t ")
            + order
        )
        args = [a for q in queues for a in (q, *params, limit + 1)] + [limit + 1]
    rows = conn.execute(query, args).fetchall()
    tickets = [_ticket(row) for row in rows[:limit]]
    more = len(rows) > limit
    return Page(tickets, (tickets[-1].created_at, tickets[-1].id) if more else None)


def _ticket(row: tuple[Any, ...]) -> Ticket:
    data = {k: v for k, v in zip(COLUMNS, row, strict=True) if v is not None}
    data["tags"] = list(data.get("tags") or [])
    return msgspec.convert(data, Ticket, from_attributes=False, strict=False)


def records_have_tickets(conn: psycopg.Connection[Any]) -> bool:
    """Has the writer stored any ticket yet? Until it has, lists come from Redis."""
    row = conn.execute("SELECT EXISTS (SELECT 1 FROM tickets)").fetchone()
    return bool(row and row[0])
