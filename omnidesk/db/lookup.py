"""What intake asks the system of record: which customer an identity belongs to, and which
messages are already recorded. Each question is one indexed query for a whole batch, so
the pre-intake step (omnidesk.known) and the customer eviction (omnidesk.db.customer_evict)
cost the same whatever the batch holds.

Identity keys are ``<kind>:<value>`` as intake writes them to Redis (`Identity.key`); the
kind never holds a ``:``, so the first one splits them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg

# A merge chain longer than this is a loop or a bug; the lookup stops following it.
MAX_MERGE_HOPS = 8

# Identity -> the customer it names today: merges followed to their end, erased customers
# left out (their person starts afresh). Each row also carries every identity of that
# customer, so loading it back into Redis links them all.
_RESOLVE = """
WITH RECURSIVE wanted (kind, value) AS (
    SELECT * FROM unnest(%(kinds)s::text[], %(values)s::text[])
), hop AS (
    SELECT w.kind, w.value, c.id, c.merged_into, 0 AS depth
    FROM wanted w
    JOIN identities i ON i.kind = w.kind AND i.value = w.value
    JOIN customers c ON c.id = i.customer_id
    UNION ALL
    SELECT h.kind, h.value, c.id, c.merged_into, h.depth + 1
    FROM hop h JOIN customers c ON c.id = h.merged_into
    WHERE h.depth < %(hops)s
)
SELECT h.kind || ':' || h.value, c.id, c.name, c.segment, c.region, c.tags, c.created_at,
       ARRAY(SELECT i.kind || ':' || i.value FROM identities i WHERE i.customer_id = c.id)
FROM hop h JOIN customers c ON c.id = h.id
WHERE h.merged_into IS NULL AND c.erased_at IS NULL
"""

# (channel, account, external_id) -> the message recorded under it (the UNIQUE index).
_RECORDED = """
SELECT m.channel, m.account, m.external_id, m.id, m.ticket_id
FROM unnest(%(channels)s::text[], %(accounts)s::text[], %(externals)s::text[])
     AS k (channel, account, external_id)
JOIN messages m
  ON m.channel = k.channel AND m.account = k.account AND m.external_id = k.external_id
"""

# customer id -> the customer it is today (itself, or where merges lead), if recorded
_FINAL = """
WITH RECURSIVE hop AS (
    SELECT c.id AS start, c.id, c.merged_into, 0 AS depth
    FROM customers c WHERE c.id = ANY(%(ids)s::text[])
    UNION ALL
    SELECT h.start, c.id, c.merged_into, h.depth + 1
    FROM hop h JOIN customers c ON c.id = h.merged_into
    WHERE h.depth < %(hops)s
)
SELECT start, id FROM hop WHERE merged_into IS NULL
"""


@dataclass(frozen=True)
class CustomerRecord:
    """A customer as PostgreSQL holds it, enough to put it back in Redis and route by it."""

    id: str
    name: str = ""
    segment: str = "unknown"
    region: str | None = None
    tags: tuple[str, ...] = ()
    created_at: datetime | None = None
    identities: tuple[str, ...] = field(default=())


def split_identity(key: str) -> tuple[str, str]:
    kind, _, value = key.partition(":")
    return kind, value


def resolve_identities(
    conn: psycopg.Connection[Any], keys: Iterable[str]
) -> dict[str, CustomerRecord]:
    """Identity key -> the customer it belongs to, for the keys PostgreSQL knows."""
    return batch_lookup(conn, keys, ())[0]


def recorded_messages(
    conn: psycopg.Connection[Any], keys: Iterable[tuple[str, str, str]]
) -> dict[str, tuple[str, str]]:
    """Dedupe key ``channel:account:external_id`` -> (message id, ticket id) for the
    (channel, account, external_id) triples already recorded."""
    return batch_lookup(conn, (), keys)[1]


def batch_lookup(
    conn: psycopg.Connection[Any],
    identity_keys: Iterable[str],
    dedupe: Iterable[tuple[str, str, str]],
) -> tuple[dict[str, CustomerRecord], dict[str, tuple[str, str]]]:
    """Both questions of a batch in one round trip (pipeline mode: both queries go out
    before either answer is read)."""
    pairs = [split_identity(k) for k in dict.fromkeys(identity_keys)]
    triples = list(dict.fromkeys(dedupe))
    if not pairs and not triples:
        return {}, {}
    with conn.pipeline():
        who = conn.execute(
            _RESOLVE,
            {"kinds": [k for k, _ in pairs], "values": [v for _, v in pairs],
             "hops": MAX_MERGE_HOPS},
        ) if pairs else None  # fmt: skip
        seen = conn.execute(
            _RECORDED,
            {"channels": [t[0] for t in triples], "accounts": [t[1] for t in triples],
             "externals": [t[2] for t in triples]},
        ) if triples else None  # fmt: skip
        customers = {row[0]: _record(row[1:]) for row in who.fetchall()} if who else {}
        recorded = (
            {f"{ch}:{acc}:{ext}": (mid, tid) for ch, acc, ext, mid, tid in seen.fetchall()}
            if seen
            else {}
        )
    return customers, recorded


def final_customers(conn: psycopg.Connection[Any], ids: Iterable[str]) -> dict[str, str]:
    """Customer id -> the id it is known by today (merges followed); recorded ones only."""
    wanted = list(dict.fromkeys(ids))
    if not wanted:
        return {}
    rows = conn.execute(_FINAL, {"ids": wanted, "hops": MAX_MERGE_HOPS}).fetchall()
    return {start: final for start, final in rows}


def _record(row: Any) -> CustomerRecord:
    cid, name, segment, region, tags, created_at, identities = row
    return CustomerRecord(
        id=cid,
        name=name or "",
        segment=segment or "unknown",
        region=region,
        tags=tuple(tags or ()),
        created_at=created_at,
        identities=tuple(sorted(identities or ())),
    )
