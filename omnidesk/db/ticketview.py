"""Reading one ticket back from PostgreSQL: a ticket that has left Redis (resolved past its
reopen window, closed) is still what an agent opens, and its history outlives the trimmed
events stream."""

from __future__ import annotations

from typing import Any

import msgspec
import psycopg
from psycopg.rows import dict_row

from omnidesk.model import Customer, Identity, IdentityKind, Message, Ticket

TICKET_COLUMNS = (
    "id, customer_id, channel, account, queue, status, priority, sla_policy, rule, assignee,"
    " subject, preview, language, segment, region, tags, created_at, updated_at, data"
)


def _convert(row: dict[str, Any], type_: type[Any]) -> Any:
    return msgspec.convert(
        {k: v for k, v in row.items() if v is not None}, type_, strict=False, from_attributes=False
    )


def load_ticket(conn: psycopg.Connection[Any], ticket_id: str) -> dict[str, Any] | None:
    """{"ticket": Ticket, "messages": [Message], "customer": Customer | None, "extra": {...}}
    as PostgreSQL holds them; None when it holds no such ticket."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            f"SELECT {TICKET_COLUMNS}, resolved_at, closed_at, first_response_at, due_at"
            " FROM tickets WHERE id = %s",
            (ticket_id,),
        ).fetchone()
        if row is None:
            return None
        data = row.pop("data") or {}
        extra = {k: row.pop(k) for k in ("resolved_at", "closed_at", "first_response_at", "due_at")}
        row["thread_keys"] = data.get("thread_keys", [])
        row["meta"] = data.get("meta", {})
        row["contacts"] = data.get("contacts", [])
        messages = cur.execute(
            "SELECT id, ticket_id, direction, channel, account, created_at, sent_at, author,"
            " subject, body AS text, external_id, attachments, delivery, raw_ref"
            " FROM messages WHERE ticket_id = %s ORDER BY created_at, id",
            (ticket_id,),
        ).fetchall()
        row["message_ids"] = [m["id"] for m in messages]
        customer = cur.execute(
            "SELECT id, name, segment, region, tags, created_at FROM customers WHERE id = %s",
            (row["customer_id"],),
        ).fetchone()
        idents = cur.execute(
            "SELECT kind, value FROM identities WHERE customer_id = %s ORDER BY kind, value",
            (row["customer_id"],),
        ).fetchall()
    found = None
    if customer is not None:
        found = _convert(customer, Customer)
        found.identities = [
            Identity(kind=IdentityKind(i["kind"]), value=i["value"])
            for i in idents
            if i["kind"] in IdentityKind._value2member_map_
        ]
    return {
        "ticket": _convert(row, Ticket),
        "messages": [_convert(m, Message) for m in messages],
        "customer": found,
        "extra": {k: v.isoformat() for k, v in extra.items() if v is not None}
        | {k: data[k] for k in ("merged_into", "last_assignee") if data.get(k)},
    }


def ticket_events(
    conn: psycopg.Connection[Any], ticket_id: str, limit: int = 200
) -> list[dict[str, str]]:
    """The ticket's events as the stream carried them (`id` is the stream id), oldest first."""
    rows = conn.execute(
        "SELECT stream_id, type, ticket_id, queue, channel, actor, data FROM events"
        " WHERE ticket_id = %s ORDER BY ts DESC, stream_id DESC LIMIT %s",
        (ticket_id, limit),
    ).fetchall()
    out = []
    for stream_id, kind, tid, queue, channel, actor, data in reversed(rows):
        fields = {str(k): str(v) for k, v in (data or {}).items()}
        fields.update(
            type=kind, ticket=tid or "", queue=queue or "", channel=channel or "", actor=actor or ""
        )
        out.append({"id": stream_id, **fields})
    return out
