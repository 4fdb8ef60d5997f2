"""Merging two customers who turn out to be one person, and undoing it exactly.

A merge moves the source's identities and tickets to the target and sets the source's
`merged_into`; the `customer_merges` row records exactly what moved (identities, tickets, the
tags the target gained), so `unmerge` moves back that and nothing else: what the target
gained since (a new identity, a new ticket) stays with it.

Redis follows in the same call when the customers are hot: the identity hash
(``P:identity``: ``kind:value`` -> customer id), the ``:ids`` sets, the ``:tickets`` zsets and
each hot ticket's ``customer_id``, so the next message from a moved identity lands on the
target. What Redis holds and PostgreSQL has not yet received (the writer's lag) moves too and
is recorded with the rest. A customer that identities now point to is loaded into Redis from
PostgreSQL if it was not there, so intake finds a whole customer hash.
"""

from __future__ import annotations

import json
from typing import Any

import psycopg

from omnidesk.db.customers import (
    RecordRefused,
    UnknownCustomer,
    audit,
    find_customer_id,
    hot_tags,
    resolve,
)
from omnidesk.store import Store, guarded


def _lock(conn: psycopg.Connection[Any], *ids: str) -> dict[str, tuple[Any, ...]]:
    """Lock the customers' rows in id order (two merges cannot deadlock); their state."""
    rows = conn.execute(
        "SELECT id, merged_into, erased_at, tags FROM customers WHERE id = ANY(%s)"
        " ORDER BY id FOR UPDATE",
        (list(ids),),
    ).fetchall()
    return {str(r[0]): r for r in rows}


def merge(
    conn: psycopg.Connection[Any],
    source: str,
    target: str,
    actor: str,
    store: Store | None = None,
) -> dict[str, Any]:
    """Merge `source` into `target` (an id or an identity each; a merged target means the
    customer it was merged into). Returns the merge: its id and what moved. Audited."""
    src = find_customer_id(conn, source)
    tgt, _ = resolve(conn, target)
    if src == tgt:
        raise RecordRefused(f"{src} and {target} are already one customer")
    state = _lock(conn, src, tgt)
    if state[src][1] is not None:
        raise RecordRefused(f"{src} is already merged into {state[src][1]}")
    for cid in (src, tgt):
        if state[cid][2] is not None:
            raise RecordRefused(f"{cid} was erased: it cannot be merged")
    identities = [
        f"{k}:{v}"
        for k, v in conn.execute(
            "SELECT kind, value FROM identities WHERE customer_id = %s ORDER BY kind, value",
            (src,),
        ).fetchall()
    ]
    tickets = [
        str(r[0])
        for r in conn.execute(
            "SELECT id FROM tickets WHERE customer_id = %s ORDER BY created_at, id", (src,)
        ).fetchall()
    ]
    if store is not None:  # hot ones PostgreSQL has not received yet move and are recorded too
        hot_ids, hot_tickets = _hot_holdings(store, src)
        identities += [k for k in hot_ids if k not in identities]
        tickets += [t for t in hot_tickets if t not in tickets]
    tags_added = [t for t in state[src][3] if t not in state[tgt][3]]
    conn.execute("UPDATE identities SET customer_id = %s WHERE customer_id = %s", (tgt, src))
    conn.execute("UPDATE tickets SET customer_id = %s WHERE customer_id = %s", (tgt, src))
    conn.execute(
        "UPDATE customers SET tags = tags || %s::text[], updated_at = now() WHERE id = %s",
        (tags_added, tgt),
    )
    conn.execute(
        "UPDATE customers SET merged_into = %s, updated_at = now() WHERE id = %s", (tgt, src)
    )
    moved = {"identities": identities, "tickets": tickets, "tags_added": tags_added}
    row = conn.execute(
        "INSERT INTO customer_merges (source_id, target_id, actor, moved)"
        " VALUES (%s, %s, %s, %s) RETURNING id, at",
        (src, tgt, actor, json.dumps(moved, ensure_ascii=False)),
    ).fetchone()
    assert row is not None
    merge_id = int(row[0])
    if store is not None:
        _hot_move(conn, store, src, tgt, identities, tickets)
        hot_tags(store, tgt, [*state[tgt][3], *tags_added])
    audit(
        conn,
        actor,
        "merge",
        src,
        {
            "merge": merge_id,
            "source": src,
            "target": tgt,
            "identities": len(identities),
            "tickets": tickets,
            "tags_added": tags_added,
        },
    )
    return {
        "merge": merge_id,
        "source": src,
        "target": tgt,
        "at": row[1].isoformat(),
        "identities": len(identities),
        "tickets": tickets,
        "tags_added": tags_added,
    }


def unmerge(
    conn: psycopg.Connection[Any], merge_id: int | str, actor: str, store: Store | None = None
) -> dict[str, Any]:
    """Undo merge `merge_id`: what it moved goes back to the source (what is still on the
    target), the tags it gave the target are taken back, the source stands alone again.
    Audited."""
    try:
        mid = int(str(merge_id).lstrip("#"))
    except ValueError:
        raise UnknownCustomer(f"no merge {merge_id!r}") from None
    row = conn.execute(
        "SELECT source_id, target_id, moved, undone_at FROM customer_merges WHERE id = %s"
        " FOR UPDATE",
        (mid,),
    ).fetchone()
    if row is None:
        raise UnknownCustomer(f"no merge {mid}")
    src, tgt, moved, undone = str(row[0]), str(row[1]), row[2], row[3]
    if undone is not None:
        raise RecordRefused(f"merge {mid} was already undone at {undone.isoformat()}")
    state = _lock(conn, src, tgt)
    if state[src][1] != tgt:
        raise RecordRefused(f"{src} is no longer merged into {tgt}")
    for cid in (src, tgt):
        if state[cid][2] is not None:
            raise RecordRefused(f"{cid} was erased: the merge cannot be undone")
    identities: list[str] = list(moved.get("identities", []))
    tickets: list[str] = list(moved.get("tickets", []))
    tags_added: list[str] = list(moved.get("tags_added", []))
    back_ids = conn.execute(
        "UPDATE identities SET customer_id = %s"
        " WHERE customer_id = %s AND (kind || ':' || value) = ANY(%s) RETURNING kind",
        (src, tgt, identities),
    ).fetchall()
    back_tickets = conn.execute(
        "UPDATE tickets SET customer_id = %s WHERE customer_id = %s AND id = ANY(%s) RETURNING id",
        (src, tgt, tickets),
    ).fetchall()
    kept = [t for t in state[tgt][3] if t not in tags_added]
    conn.execute("UPDATE customers SET tags = %s, updated_at = now() WHERE id = %s", (kept, tgt))
    conn.execute(
        "UPDATE customers SET merged_into = NULL, updated_at = now() WHERE id = %s", (src,)
    )
    conn.execute("UPDATE customer_merges SET undone_at = now() WHERE id = %s", (mid,))
    if store is not None:
        _hot_move(conn, store, tgt, src, identities, tickets)
        hot_tags(store, tgt, kept)
    detail = {
        "merge": mid,
        "source": src,
        "target": tgt,
        "identities": len(back_ids),
        "tickets": sorted(str(r[0]) for r in back_tickets),
        "tags_removed": tags_added,
    }
    audit(conn, actor, "unmerge", src, detail)
    return detail


# ---------------------------------------------------------------- Redis


@guarded
def _hot_holdings(store: Store, customer_id: str) -> tuple[list[str], list[str]]:
    pipe = store.r.pipeline(transaction=False)
    pipe.smembers(store.key("customer", customer_id, "ids"))
    pipe.zrange(store.key("customer", customer_id, "tickets"), 0, -1)
    ids, tickets = pipe.execute()
    return sorted(ids), list(tickets)


@guarded
def _hot_move(
    conn: psycopg.Connection[Any],
    store: Store,
    frm: str,
    to: str,
    identities: list[str],
    tickets: list[str],
) -> int:
    """Move the identities and tickets that are in Redis from `frm` to `to`; returns how many
    keys changed. `to` is loaded from PostgreSQL first if Redis does not hold it."""
    r, key = store.r, store.key
    read = r.pipeline(transaction=False)
    read.hmget(key("identity"), identities or ["-"])  # HMGET needs one field at least
    for tid in tickets:
        read.zscore(key("customer", frm, "tickets"), tid)
        read.hexists(key("ticket", tid), "customer_id")
    replies = read.execute()
    owners = replies[0] if identities else []  # the "-" placeholder's reply is dropped
    ident_moves = [k for k, owner in zip(identities, owners, strict=True) if owner == frm]
    ticket_moves = []
    for i, tid in enumerate(tickets):
        score, exists = replies[1 + 2 * i], replies[2 + 2 * i]
        if score is not None or exists:
            ticket_moves.append((tid, score, exists))
    if not ident_moves and not ticket_moves:
        return 0
    write = r.pipeline(transaction=True)
    if not r.exists(key("customer", to)):
        _load_customer(conn, store, to, write)
    for k in ident_moves:
        write.hset(key("identity"), k, to)
        write.srem(key("customer", frm, "ids"), k)
        write.sadd(key("customer", to, "ids"), k)
    for tid, score, exists in ticket_moves:
        if score is not None:
            write.zrem(key("customer", frm, "tickets"), tid)
            write.zadd(key("customer", to, "tickets"), {tid: score})
        if exists:
            write.hset(key("ticket", tid), "customer_id", to)
    write.execute()
    return len(ident_moves) + len(ticket_moves)


def _load_customer(conn: psycopg.Connection[Any], store: Store, cid: str, pipe: Any) -> None:
    """Queue the writes that put a PostgreSQL customer into Redis as intake would have."""
    row = conn.execute(
        "SELECT name, segment, region, tags, created_at FROM customers WHERE id = %s", (cid,)
    ).fetchone()
    if row is None:
        return
    name, segment, region, tags, created = row
    fields = {
        "id": cid,
        "name": name,
        "segment": segment,
        "tags": json.dumps(list(tags), ensure_ascii=False),
        "created_at": created.isoformat(),
    }
    if region:
        fields["region"] = region
    pipe.hset(store.key("customer", cid), mapping=fields)
    pipe.zadd(store.key("customers"), {cid: int(created.timestamp() * 1000)})
