"""Customers leave Redis once they have no work there and PostgreSQL holds them.

Redis keeps hot state only (issue 13): a customer costs about 740 B there, and without
eviction every customer ever seen stays. A customer goes when none of its tickets is in
Redis any more (open, or resolved and waiting out its reopen window: an agent's view of
such a ticket still shows its customer) and PostgreSQL records it with every identity
Redis links to it. Its next message loads it back (omnidesk.known), with the same id.

Per call: one Redis round trip to read the candidates' identities, two PostgreSQL queries,
and one pipelined round trip of one small script per candidate (lua/customer_evict.lua),
which re-checks at the moment of removal what may have changed since PostgreSQL was read:
a ticket opened meanwhile, a message that found the customer moments ago
(`grace`), an identity linked meanwhile. Any of these keeps the customer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from omnidesk.db.lookup import final_customers, resolve_identities
from omnidesk.store import Store, guarded, lua

log = logging.getLogger("omnidesk.customers")

# A customer found or loaded back by a message within this long stays: that message may
# still be on its way to intake.lua (the pre-intake step and intake are one batch apart).
EVICT_GRACE = timedelta(minutes=10)


@guarded
def evict_customers(
    store: Store,
    records: Any,
    customer_ids: Iterable[str],
    *,
    grace: timedelta = EVICT_GRACE,
) -> list[str]:
    """Remove from Redis those of `customer_ids` with no ticket in Redis that PostgreSQL
    records with every identity; returns the ids removed. PostgreSQL away raises
    RecordsUnavailable and removes nothing (the pass tries again later)."""
    ids = list(dict.fromkeys(customer_ids))
    if not ids:
        return []
    read = store.r.pipeline(transaction=False)
    for cid in ids:
        read.exists(store.keys.customer(cid))
        read.smembers(store.keys.customer_ids(cid))
    replies = read.execute()
    held = {
        cid: sorted(identities)
        for cid, exists, identities in zip(ids, replies[::2], replies[1::2], strict=True)
        if exists
    }
    if not held:
        return []
    with records.connection() as conn:
        final = final_customers(conn, held)
        owners = resolve_identities(conn, (ik for keys in held.values() for ik in keys))
    verified = [
        (cid, keys)
        for cid, keys in held.items()
        if cid in final and all(ik in owners and owners[ik].id == final[cid] for ik in keys)
    ]
    if not verified:
        return []
    script = store.r.register_script(lua("customer_evict"))
    now_ms = int(time.time() * 1000)
    grace_ms = int(grace.total_seconds() * 1000)
    pipe = store.r.pipeline(transaction=False)
    for cid, keys in verified:
        script(keys=[store.prefix], args=[cid, now_ms, grace_ms, *keys], client=pipe)
    evicted = [cid for (cid, _), done in zip(verified, pipe.execute(), strict=True) if done]
    if evicted:
        store.incr("customers_evicted", len(evicted))
    return evicted
