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
from omnidesk.store import Store, guarded, lua


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
    if store is not None:  # what Redis holds beyond PostgreSQL moves and is recorded too
        hot_ids, hot_tickets = _hot_move(
            conn, store, src, tgt, identities, tickets, everything=True
        )
        identities += [k for k in hot_ids if k not in identities]
        tickets += [t for t in hot_tickets if t not in tickets]
        hot_tags(store, tgt, [*state[tgt][3], *tags_added])
    moved = {"identities": identities, "tickets": tickets, "tags_added": tags_added}
    row = conn.execute(
        "INSERT INTO customer_merges (source_id, target_id, actor, moved)"
        " VALUES (%s, %s, %s, %s) RETURNING id, at",
        (src, tgt, actor, json.dumps(moved, ensure_ascii=False)),
    ).fetchone()
    assert row is not None
    merge_id = int(row[0])
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
        _hot_move(conn, store, tgt, src, identities, tickets, everything=False)
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
def _hot_move(
    conn: psycopg.Connection[Any],
    store: Store,
    frm: str,
    to: str,
    identities: list[str],
    tickets: list[str],
    *,
    everything: bool,
) -> tuple[list[str], list[str]]:
    """Move the identities and tickets Redis holds from `frm` to `to` in one script
    (lua/customer_move.lua): those listed that `frm` still owns, and with `everything`
    whatever else Redis holds of `frm` (what PostgreSQL has not received yet). Returns the
    identity keys and ticket ids moved. When something moved, what Redis lacks of `to` is
    filled in from PostgreSQL, so intake finds a whole customer hash."""
    script = store.r.register_script(lua("customer_move"))
    args = [frm, to, "1" if everything else "0", len(identities)]
    moved_ids, moved_tickets = script(keys=[store.prefix], args=[*args, *identities, *tickets])
    if moved_ids or moved_tickets:
        _load_customer(conn, store, to)
    return list(moved_ids), list(moved_tickets)


def _load_customer(conn: psycopg.Connection[Any], store: Store, cid: str) -> None:
    """Fill in the customer's Redis hash from PostgreSQL, field by field where missing (a
    message may have just made a bare one), as intake would have written it."""
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
    pipe = store.r.pipeline(transaction=True)
    for field, value in fields.items():
        pipe.hsetnx(store.keys.customer(cid), field, value)
    pipe.zadd(store.keys.customers(), {cid: int(created.timestamp() * 1000)}, nx=True)
    pipe.execute()
