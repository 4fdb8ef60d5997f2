"""`omnidesk db import-archive`: the monthly gzip archive files (omnidesk.archiving) loaded
into PostgreSQL, so nothing kept before the records existed is lost.

Each archived ticket becomes a `tickets` row (hot = false: it left Redis long ago), its
messages `messages` rows (with their search vector), its customer a `customers` row with
its identities. Idempotent: run it twice, or after the writer has stored some of the same
records, and nothing is duplicated. A ticket the writer already stored (synced_pos > 0) is
left as the writer wrote it; a ticket only an earlier import wrote takes the archive's last
copy (a re-run archive pass appends a later copy of a ticket: the last one wins, as
`TicketArchive.search` reads it). Customers, identities and messages already present are
kept as they are (the unique constraints decide)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, fields
from typing import Any

import psycopg

from omnidesk.archiving import TicketArchive
from omnidesk.db.searchtext import message_document
from omnidesk.outbound import SYSTEM_AUTHOR

BATCH = 500

TICKET_SQL = """
INSERT INTO tickets (id, customer_id, channel, account, queue, status, priority, sla_policy,
    rule, assignee, subject, preview, language, segment, region, tags, created_at,
    updated_at, first_response_at, resolved_at, hot, synced_pos, data)
VALUES (%(id)s, %(customer_id)s, %(channel)s, %(account)s, %(queue)s, %(status)s,
    %(priority)s, %(sla_policy)s, %(rule)s, %(assignee)s, %(subject)s, %(preview)s,
    %(language)s, %(segment)s, %(region)s, %(tags)s, %(created_at)s, %(updated_at)s,
    %(first_response_at)s, %(resolved_at)s, false, 0, %(data)s)
ON CONFLICT (id) DO UPDATE SET
    customer_id = excluded.customer_id, channel = excluded.channel, queue = excluded.queue,
    status = excluded.status, priority = excluded.priority, assignee = excluded.assignee,
    subject = excluded.subject, preview = excluded.preview, tags = excluded.tags,
    updated_at = excluded.updated_at, first_response_at = excluded.first_response_at,
    resolved_at = excluded.resolved_at, data = excluded.data
  WHERE tickets.synced_pos = 0 AND NOT tickets.hot
    AND tickets.updated_at < excluded.updated_at
"""

MESSAGE_SQL = """
INSERT INTO messages (id, ticket_id, direction, channel, account, external_id, created_at,
    sent_at, author, subject, body, delivery, raw_ref, attachments, search)
VALUES (%(id)s, %(ticket_id)s, %(direction)s, %(channel)s, %(account)s, %(external_id)s,
    %(created_at)s, %(sent_at)s, %(author)s, %(subject)s, %(body)s, %(delivery)s,
    %(raw_ref)s, %(attachments)s, to_tsvector('simple', %(search)s))
ON CONFLICT DO NOTHING
"""

CUSTOMER_SQL = """
INSERT INTO customers (id, name, segment, region, tags, created_at)
VALUES (%(id)s, %(name)s, %(segment)s, %(region)s, %(tags)s, %(created_at)s)
ON CONFLICT (id) DO NOTHING
"""

IDENTITY_SQL = """
INSERT INTO identities (kind, value, customer_id) VALUES (%(kind)s, %(value)s, %(customer_id)s)
ON CONFLICT (kind, value) DO NOTHING
"""


@dataclass
class Counts:
    files: int = 0
    records: int = 0  # lines read (a ticket archived twice counts twice)
    tickets: int = 0  # rows inserted or refreshed
    messages: int = 0  # rows inserted
    customers: int = 0
    identities: int = 0

    def line(self) -> str:
        return ", ".join(f"{f.name} {getattr(self, f.name)}" for f in fields(self))


def latest(records: Iterable[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    """Batches of records, each ticket once with its last copy."""
    pending: dict[str, dict[str, Any]] = {}
    for rec in records:
        tid = rec["ticket"]["id"]
        pending.pop(tid, None)
        pending[tid] = rec
        if len(pending) > 4 * BATCH:
            # the oldest half cannot be superseded by much: copies of one ticket sit close
            keys = list(pending)[: 2 * BATCH]
            yield [pending.pop(k) for k in keys]
    if pending:
        yield list(pending.values())


def _ticket_row(rec: dict[str, Any]) -> dict[str, Any]:
    t = rec["ticket"]
    messages = rec.get("messages") or []
    # an automatic message (a receipt) is no response: only a person's reply is
    replies = sorted(
        m["created_at"]
        for m in messages
        if m.get("direction") == "out" and m.get("author") != SYSTEM_AUTHOR
    )
    done = t.get("status") in ("resolved", "closed")
    extra = {k: t[k] for k in ("thread_keys", "message_ids", "meta", "contacts") if t.get(k)}
    if rec.get("sla"):
        extra["sla"] = rec["sla"]
    extra["archived_at"] = rec.get("archived_at")
    return {
        "id": t["id"], "customer_id": t.get("customer_id", ""), "channel": t["channel"],
        "account": t.get("account", ""), "queue": t.get("queue", ""),
        "status": t.get("status", "closed"), "priority": t.get("priority", "normal"),
        "sla_policy": t.get("sla_policy", ""), "rule": t.get("rule"),
        "assignee": t.get("assignee"), "subject": t.get("subject", ""),
        "preview": t.get("preview", ""), "language": t.get("language", "unknown"),
        "segment": t.get("segment", "unknown"), "region": t.get("region"),
        "tags": list(t.get("tags") or []), "created_at": t["created_at"],
        "updated_at": t.get("updated_at") or t["created_at"],
        "first_response_at": replies[0] if replies else None,
        "resolved_at": (t.get("updated_at") or t["created_at"]) if done else None,
        "data": json.dumps(extra, ensure_ascii=False),
    }  # fmt: skip


def _message_rows(rec: dict[str, Any]) -> list[dict[str, Any]]:
    t = rec["ticket"]
    out = []
    for m in rec.get("messages") or []:
        body, subject = m.get("text", ""), m.get("subject", "")
        out.append({
            "id": m["id"], "ticket_id": t["id"], "direction": m["direction"],
            "channel": m.get("channel") or t["channel"], "account": t.get("account", ""),
            "external_id": m.get("external_id"), "created_at": m["created_at"],
            "sent_at": m.get("sent_at"), "author": m.get("author", ""), "subject": subject,
            "body": body, "delivery": m.get("delivery"), "raw_ref": m.get("raw_ref"),
            "attachments": json.dumps(m.get("attachments") or [], ensure_ascii=False),
            "search": message_document(m["direction"], m.get("author", ""), subject, body),
        })  # fmt: skip
    return out


def _customer_rows(rec: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    c = rec.get("customer")
    if not c:
        return [], []
    customer = {
        "id": c["id"], "name": c.get("name", ""), "segment": c.get("segment", "unknown"),
        "region": c.get("region"), "tags": list(c.get("tags") or []),
        "created_at": c.get("created_at") or rec["ticket"]["created_at"],
    }  # fmt: skip
    identities = [
        {"kind": i["kind"], "value": i["value"], "customer_id": c["id"]}
        for i in c.get("identities") or []
    ]
    return [customer], identities


def import_archive(conn: psycopg.Connection[Any], archive: TicketArchive) -> Counts:
    """Load every archive file; one transaction per batch, so a failure keeps what was
    committed and a re-run finishes the rest."""
    counts = Counts(files=len(archive.months()))

    def read() -> Iterator[dict[str, Any]]:
        for rec in archive.records():
            counts.records += 1
            yield rec

    for batch in latest(read()):
        customers: dict[str, dict[str, Any]] = {}
        identities: dict[tuple[str, str], dict[str, Any]] = {}
        for rec in batch:
            cs, ids = _customer_rows(rec)
            customers.update({c["id"]: c for c in cs})
            identities.update({(i["kind"], i["value"]): i for i in ids})
        with conn.transaction(), conn.cursor() as cur:
            if customers:
                cur.executemany(CUSTOMER_SQL, list(customers.values()))
                counts.customers += max(0, cur.rowcount)
            if identities:
                cur.executemany(IDENTITY_SQL, list(identities.values()))
                counts.identities += max(0, cur.rowcount)
            cur.executemany(TICKET_SQL, [_ticket_row(r) for r in batch])
            counts.tickets += max(0, cur.rowcount)
            messages = [m for r in batch for m in _message_rows(r)]
            if messages:
                cur.executemany(MESSAGE_SQL, messages)
                counts.messages += max(0, cur.rowcount)
    return counts
