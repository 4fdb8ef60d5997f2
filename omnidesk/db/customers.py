"""The customer record (CRM) in PostgreSQL: one person's identities, tickets, CSAT and merges
(`show`), everything held about them (`export`), their tags (`set_tags`), and, through
omnidesk.db.merging and omnidesk.db.erasure, `merge`/`unmerge` and `erase`.

PostgreSQL is the truth for a customer's tags, merges and erasure; Redis holds a copy only
while the customer or their tickets are hot (omnidesk.store's key layout), and every action
here that changes a customer updates that copy in the same call, so live intake and routing
follow at once. Every action but `show` writes an `audit` row (actor, action, subject,
detail); audit details carry ids and counts, never an identity's value, so the audit trail
keeps nothing an erasure would have to remove.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from omnidesk.errors import PermanentError
from omnidesk.model import IdentityKind
from omnidesk.store import Store, guarded

CUSTOMER_ID = re.compile(r"C-\d{1,12}")
TAG = re.compile(r"[^\s,]{1,64}")
MAX_TAGS = 100
DONE = ("resolved", "closed")
_PHONE_LIKE = re.compile(r"\+?[\d\s().-]{6,20}")


class UnknownCustomer(PermanentError):
    """No customer has that id or identity (the API answers 404, the CLI exits 2)."""


class RecordRefused(PermanentError):
    """The action cannot be done as asked (a merge into itself, an erased customer, ...);
    the message says why (the API answers 400)."""


# ---------------------------------------------------------------- finding a customer


def identity_candidates(text: str) -> list[tuple[str | None, str]]:
    """The (kind, value) pairs an operator's text may mean, normalized as intake stores them:
    ``kind:value``, an e-mail, ``@handle``, a phone in any usual spelling (E.164 for Saudi
    numbers), else the value under any kind (a Telegram or X user id)."""
    text = text.strip()
    kind, sep, value = text.partition(":")
    if sep and kind in {k.value for k in IdentityKind}:
        return [(kind, value.lower() if kind in ("email", "twitter_handle") else value)]
    if "@" in text and not text.startswith("@"):
        return [("email", text.lower())]
    if text.startswith("@"):
        return [("twitter_handle", text[1:].lower())]
    out: list[tuple[str | None, str]] = [(None, text)]
    if _PHONE_LIKE.fullmatch(text):
        from connectors.base_normalize import e164

        phone = e164(text, "SA")
        if phone:
            out += [("phone", phone), ("whatsapp", phone), ("whatsapp", phone.lstrip("+"))]
    return out


def find_customer_id(conn: psycopg.Connection[Any], id_or_identity: str) -> str:
    """The customer id that `id_or_identity` names, merges not followed; UnknownCustomer when
    none, RecordRefused when an identity matches several customers."""
    text = id_or_identity.strip()
    if CUSTOMER_ID.fullmatch(text):
        row = conn.execute("SELECT id FROM customers WHERE id = %s", (text,)).fetchone()
        if row is None:
            raise UnknownCustomer(f"no customer {text}")
        return str(row[0])
    found: set[str] = set()
    for kind, value in identity_candidates(text):
        if kind is None:
            rows = conn.execute(
                "SELECT customer_id FROM identities WHERE value = %s", (value,)
            ).fetchall()
        else:
            rows = conn.execute(
                "SELECT customer_id FROM identities WHERE kind = %s AND value = %s", (kind, value)
            ).fetchall()
        found |= {str(r[0]) for r in rows}
    if not found:
        raise UnknownCustomer(f"no customer with the identity {text!r}")
    if len(found) > 1:
        raise RecordRefused(
            f"{text!r} is an identity of {', '.join(sorted(found))}: say which kind (kind:value)"
        )
    return found.pop()


def resolve(conn: psycopg.Connection[Any], id_or_identity: str) -> tuple[str, str | None]:
    """(the customer id, the merged customer it was reached through or None): a merged
    customer resolves to the one it was merged into, following a chain of merges."""
    first = current = find_customer_id(conn, id_or_identity)
    seen = {current}
    while True:
        row = conn.execute("SELECT merged_into FROM customers WHERE id = %s", (current,)).fetchone()
        if row is None or row[0] is None:
            return current, (first if current != first else None)
        current = str(row[0])
        if current in seen:  # a cycle cannot be made by merge(); stop rather than spin
            raise RecordRefused(f"customer {first} is in a cycle of merges")
        seen.add(current)


def merged_group(conn: psycopg.Connection[Any], customer_id: str) -> list[str]:
    """The customer and every customer merged into it, directly or through others."""
    rows = conn.execute(
        """
        WITH RECURSIVE g(id) AS (
            SELECT %s::text
            UNION SELECT c.id FROM customers c JOIN g ON c.merged_into = g.id
        ) SELECT id FROM g
        """,
        (customer_id,),
    ).fetchall()
    return [str(r[0]) for r in rows]


# ---------------------------------------------------------------- show


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    return {k: _iso(v) for k, v in row.items()}


def outcome(status: str) -> str:
    """What became of a ticket, in one word: resolved, closed, or still open."""
    return status if status in DONE else "open"


def show(
    conn: psycopg.Connection[Any], id_or_identity: str, queues: Sequence[str] | None = None
) -> dict[str, Any]:
    """The customer record: the customer, every identity across channels, every ticket
    (open and archived) with its channel, queue and outcome, the CSAT history and the merges.
    With `queues` (an agent's), only tickets of those queues are listed, and a customer with
    none of them is unknown (UnknownCustomer: the API's 404 says nothing of its existence)."""
    cid, via = resolve(conn, id_or_identity)
    cur = conn.cursor(row_factory=dict_row)
    customer = cur.execute(
        "SELECT id, name, segment, region, tags, created_at, updated_at, merged_into, erased_at"
        " FROM customers WHERE id = %s",
        (cid,),
    ).fetchone()
    assert customer is not None  # resolve() found it
    group = merged_group(conn, cid)
    identities = cur.execute(
        "SELECT kind, value, customer_id FROM identities WHERE customer_id = ANY(%s)"
        " ORDER BY kind, value",
        (group,),
    ).fetchall()
    tickets = cur.execute(
        """
        SELECT id, channel, account, queue, status, priority, subject, language, tags,
               assignee, created_at, updated_at, first_response_at, resolved_at, closed_at,
               hot AS in_redis, erased_at
        FROM tickets WHERE customer_id = ANY(%s) ORDER BY created_at DESC, id
        """,
        (group,),
    ).fetchall()
    if queues is not None:
        allowed = set(queues)
        tickets = [t for t in tickets if t["queue"] in allowed]
        if not tickets:
            raise UnknownCustomer(f"no customer {id_or_identity} in your queues")
    ids = [t["id"] for t in tickets]
    csat = cur.execute(
        """
        SELECT ticket_id AS ticket, ts AS at, queue, data->>'score' AS score,
               coalesce(data->>'comment', '') AS comment, coalesce(data->>'via', '') AS via
        FROM events WHERE type = 'csat' AND ticket_id = ANY(%s) ORDER BY ts
        """,
        (ids,),
    ).fetchall()
    merges = cur.execute(
        "SELECT id, source_id AS source, target_id AS target, at, actor, undone_at"
        " FROM customer_merges WHERE source_id = ANY(%s) OR target_id = ANY(%s) ORDER BY id",
        (group, group),
    ).fetchall()
    doc: dict[str, Any] = {
        "customer": _plain(customer),
        "identities": [_plain(i) for i in identities],
        "tickets": [{**_plain(t), "outcome": outcome(t["status"])} for t in tickets],
        "csat": [
            {**_plain(c), "score": int(c["score"]) if (c["score"] or "").isdigit() else None}
            for c in csat
        ],
        "merges": [_plain(m) for m in merges],
    }
    if via is not None:
        doc["resolved_from"] = via
        doc["note"] = f"{via} was merged into {cid}: this is {cid}'s record"
    return doc


# ---------------------------------------------------------------- export


def export(conn: psycopg.Connection[Any], customer_id: str, actor: str) -> dict[str, Any]:
    """Everything held about one person, as one JSON-ready document (the PDPL's right of
    access): the customer and every customer merged into it, identities, tickets, every
    message with its body, the events about their tickets, the audit rows about them and the
    merges. Audited."""
    cid, via = resolve(conn, customer_id)
    group = merged_group(conn, cid)
    cur = conn.cursor(row_factory=dict_row)

    def rows(sql: str, *params: Any) -> list[dict[str, Any]]:
        return [_plain(r) for r in cur.execute(sql, params).fetchall()]

    tickets = rows(
        "SELECT * FROM tickets WHERE customer_id = ANY(%s) ORDER BY created_at, id", group
    )
    tids = [t["id"] for t in tickets]
    now = conn.execute("SELECT now()").fetchone()
    assert now is not None  # SELECT now() always returns its one row
    doc = {
        "exported_at": _iso(now[0]),
        "customer_id": cid,
        "resolved_from": via,
        "customers": rows("SELECT * FROM customers WHERE id = ANY(%s) ORDER BY id", group),
        "identities": rows(
            "SELECT * FROM identities WHERE customer_id = ANY(%s) ORDER BY kind, value", group
        ),
        "tickets": tickets,
        "messages": rows(
            "SELECT id, ticket_id, direction, channel, account, external_id, created_at,"
            " sent_at, author, subject, body, delivery, raw_ref, attachments"
            " FROM messages WHERE ticket_id = ANY(%s) ORDER BY ticket_id, created_at, id",
            tids,
        ),
        "events": rows(
            "SELECT * FROM events WHERE ticket_id = ANY(%s) ORDER BY ts, stream_id", tids
        ),
        "audit": rows("SELECT * FROM audit WHERE subject = ANY(%s) ORDER BY id", [*group, *tids]),
        "merges": rows(
            "SELECT * FROM customer_merges WHERE source_id = ANY(%s) OR target_id = ANY(%s)"
            " ORDER BY id",
            group,
            group,
        ),
    }
    audit(
        conn,
        actor,
        "export",
        cid,
        {"tickets": len(tickets), "messages": len(doc["messages"]), "events": len(doc["events"])},
    )
    return doc


def export_json(doc: dict[str, Any]) -> str:
    return json.dumps(doc, ensure_ascii=False, indent=1, default=str)


# ---------------------------------------------------------------- tags


def clean_tags(tags: Iterable[Any]) -> list[str]:
    out = []
    for tag in tags:
        if not isinstance(tag, str) or not TAG.fullmatch(tag):
            raise RecordRefused(f"not a tag: {str(tag)[:70]!r} (1-64 characters, no spaces)")
        out.append(tag)
    return out


def set_tags(
    conn: psycopg.Connection[Any],
    customer_id: str,
    add: Iterable[Any],
    remove: Iterable[Any],
    actor: str,
    store: Store | None = None,
) -> list[str]:
    """Add and remove customer tags; returns the tags now. PostgreSQL's customers.tags is the
    truth; when the customer is hot, its Redis hash's `tags` field (a JSON list, as
    omnidesk.store encodes lists) is rewritten too, so the rules' customer_tag condition sees
    the change on the next message. Audited."""
    add, remove = clean_tags(add), clean_tags(remove)
    cid, _ = resolve(conn, customer_id)
    row = conn.execute(
        "SELECT tags, erased_at FROM customers WHERE id = %s FOR UPDATE", (cid,)
    ).fetchone()
    assert row is not None
    before = list(row[0])
    after = [t for t in before if t not in set(remove)]
    after += [t for t in dict.fromkeys(add) if t not in after and t not in set(remove)]
    if len(after) > MAX_TAGS:
        raise RecordRefused(f"a customer has at most {MAX_TAGS} tags")
    conn.execute("UPDATE customers SET tags = %s, updated_at = now() WHERE id = %s", (after, cid))
    if store is not None:
        hot_tags(store, cid, after)
    added = [t for t in after if t not in before]
    removed = [t for t in before if t not in after]
    audit(conn, actor, "tag", cid, {"added": added, "removed": removed})
    return after


@guarded
def hot_tags(store: Store, customer_id: str, tags: list[str]) -> bool:
    """Write the tags into the customer's Redis hash if it is there; True if it was."""
    key = store.keys.customer(customer_id)
    if not store.r.exists(key):
        return False
    store.r.hset(key, "tags", json.dumps(tags, ensure_ascii=False))
    return True


# ---------------------------------------------------------------- audit


def audit(
    conn: psycopg.Connection[Any], actor: str, action: str, subject: str, detail: dict[str, Any]
) -> None:
    """One row of the audit trail, in the caller's transaction: it exists if and only if the
    action it records was committed."""
    conn.execute(
        "INSERT INTO audit (actor, action, subject, detail) VALUES (%s, %s, %s, %s)",
        (actor, action, subject, json.dumps(detail, ensure_ascii=False, default=str)),
    )
