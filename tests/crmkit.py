"""Seeding PostgreSQL for the customer-record tests with plain INSERTs that match the schema:
customers, identities, tickets, messages, events. `mirror` copies what real intake put in
Redis (a ticket, its messages, its customer) into the same rows, standing in for the
integrator's RecordWriter until it is on main, so a test has one person hot in Redis and on
record in PostgreSQL at once."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from omnidesk.store import Store

T0 = datetime(2026, 1, 10, 9, 0, tzinfo=UTC)
_seq = iter(range(1, 10**9))


def customer(
    conn: psycopg.Connection[Any],
    cid: str,
    name: str = "",
    *,
    created: datetime = T0,
    segment: str = "consumer",
    region: str | None = "riyadh",
    tags: list[str] = (),
    identities: list[tuple[str, str]] = (),
) -> str:
    conn.execute(
        "INSERT INTO customers (id, name, segment, region, tags, created_at)"
        " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO NOTHING",
        (cid, name, segment, region, list(tags), created),
    )
    for kind, value in identities:
        conn.execute(
            "INSERT INTO identities (kind, value, customer_id) VALUES (%s, %s, %s)",
            (kind, value, cid),
        )
    return cid


def ticket(
    conn: psycopg.Connection[Any],
    tid: str,
    cid: str,
    queue: str = "general",
    status: str = "open",
    *,
    channel: str = "web",
    created: datetime = T0,
    subject: str = "",
    preview: str = "",
    first_response: datetime | None = None,
    resolved: datetime | None = None,
    closed: datetime | None = None,
    hot: bool = False,
    cr_number: str | None = None,
) -> str:
    updated = closed or resolved or created
    conn.execute(
        """
        INSERT INTO tickets (id, customer_id, channel, account, queue, status, subject,
            preview, created_at, updated_at, first_response_at, resolved_at, closed_at, hot,
            cr_number, data)
        VALUES (%s, %s, %s, 'site', %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
        ON CONFLICT (id) DO NOTHING
        """,
        (
            tid,
            cid,
            channel,
            queue,
            status,
            subject,
            preview,
            created,
            updated,
            first_response,
            resolved,
            closed,
            hot,
            cr_number,
            json.dumps({"thread_keys": [f"email:{tid}@mail.example"]}),
        ),
    )
    return tid


def message(
    conn: psycopg.Connection[Any],
    tid: str,
    body: str,
    *,
    mid: str | None = None,
    direction: str = "in",
    author: str = "",
    subject: str = "",
    created: datetime = T0,
    raw_ref: str | None = None,
    attachments: list[dict[str, Any]] = (),
    channel: str = "web",
) -> str:
    mid = mid or f"m{next(_seq)}"
    conn.execute(
        """
        INSERT INTO messages (id, ticket_id, direction, channel, account, external_id,
            created_at, author, subject, body, raw_ref, attachments, search)
        VALUES (%s, %s, %s, %s, 'site', %s, %s, %s, %s, %s, %s, %s,
                to_tsvector('simple', %s))
        ON CONFLICT (id) DO NOTHING
        """,
        (
            mid,
            tid,
            direction,
            channel,
            mid if direction == "in" else None,
            created,
            author,
            subject,
            body,
            raw_ref,
            json.dumps(list(attachments)),
            f"{subject} {body}",
        ),
    )
    return mid


def event(
    conn: psycopg.Connection[Any],
    type_: str,
    tid: str,
    queue: str = "general",
    *,
    at: datetime = T0,
    actor: str = "system",
    **data: Any,
) -> None:
    n = next(_seq)
    conn.execute(
        "INSERT INTO events (ts, stream_id, type, ticket_id, queue, channel, actor, data)"
        " VALUES (%s, %s, %s, %s, %s, 'web', %s, %s)",
        (
            at + timedelta(microseconds=n),
            f"{int(at.timestamp() * 1000)}-{n}",
            type_,
            tid,
            queue,
            actor,
            json.dumps(data, ensure_ascii=False),
        ),
    )


def mirror(conn: psycopg.Connection[Any], store: Store, ticket_id: str) -> None:
    """The rows the writer would make of a hot ticket, its messages and its customer."""
    t = store.get_ticket(ticket_id)
    assert t is not None
    c = store.get_customer(t.customer_id)
    assert c is not None
    customer(
        conn,
        c.id,
        c.name,
        created=c.created_at,
        segment=c.segment.value,
        region=c.region,
        tags=c.tags,
    )
    for ident in c.identities:
        conn.execute(
            "INSERT INTO identities (kind, value, customer_id) VALUES (%s, %s, %s)"
            " ON CONFLICT DO NOTHING",
            (ident.kind.value, ident.value, c.id),
        )
    ticket(
        conn,
        t.id,
        c.id,
        t.queue,
        t.status.value,
        channel=t.channel.value,
        created=t.created_at,
        subject=t.subject,
        preview=t.preview,
        hot=True,
    )
    for m in store.ticket_messages(t.id):
        message(
            conn,
            t.id,
            m.text,
            mid=m.id,
            direction=m.direction.value,
            author=m.author,
            subject=m.subject,
            created=m.created_at,
            raw_ref=m.raw_ref,
            attachments=[
                {"filename": a.filename, "sha256": a.sha256, "size": a.size} for a in m.attachments
            ],
            channel=m.channel.value,
        )
