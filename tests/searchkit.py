"""Rows for the search tests, written with plain SQL as the outbox writer would write them:
a ticket, its customer and identities, and its messages with `search` filled the way
production fills it, `to_tsvector('simple', search_document(subject, body))`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from omnidesk.db.searchtext import search_document

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def add_ticket(
    conn: psycopg.Connection[Any],
    ticket_id: str,
    body: str,
    *,
    queue: str = "general",
    status: str = "open",
    subject: str = "",
    customer: str = "C-00000001",
    identities: tuple[tuple[str, str], ...] = (),
    cr_number: str | None = None,
    minutes: int = 0,
    more: tuple[str, ...] = (),
) -> None:
    at = T0 + timedelta(minutes=minutes)
    conn.execute(
        "INSERT INTO customers (id, created_at) VALUES (%s, %s) ON CONFLICT DO NOTHING",
        (customer, at),
    )
    for kind, value in identities:
        conn.execute(
            "INSERT INTO identities (kind, value, customer_id) VALUES (%s, %s, %s)"
            " ON CONFLICT DO NOTHING",
            (kind, value, customer),
        )
    conn.execute(
        """INSERT INTO tickets (id, customer_id, channel, queue, status, subject, preview,
               cr_number, created_at, updated_at, hot)
           VALUES (%s, %s, 'email', %s, %s, %s, %s, %s, %s, %s, %s)""",
        (ticket_id, customer, queue, status, subject, body[:120], cr_number, at, at,
         status != "closed"),
    )  # fmt: skip
    for n, text in enumerate((body, *more)):
        conn.execute(
            """INSERT INTO messages (id, ticket_id, direction, channel, external_id,
                   created_at, subject, body, search)
               VALUES (%s, %s, 'in', 'email', %s, %s, %s, %s, to_tsvector('simple', %s))""",
            (f"{ticket_id}-m{n}", ticket_id, f"{ticket_id}-m{n}", at, subject if n == 0 else "",
             text, search_document(subject if n == 0 else "", text)),
        )  # fmt: skip
