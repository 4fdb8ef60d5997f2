"""A minimal `evict_customers`: customers with no ticket left in Redis leave it.

Placeholder for the `known` branch's customer cache (which also loads a customer back from
PostgreSQL on their next message); the integrator keeps one. Until that load-back is in,
a returning evicted customer is given a new customer id by intake.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from omnidesk.db.writer import GROUP
from omnidesk.store import Store, guarded, lua

MAX_TAIL = 20_000


@guarded
def evict_customers(store: Store, records: Any, customer_ids: Iterable[str]) -> list[str]:
    """Remove from Redis those of `customer_ids` with no ticket in Redis and nothing
    unwritten naming them (one Lua script, atomic); returns the ids removed. `records`
    (PostgreSQL) is not read here: the writer's low water mark says what it holds."""
    ids = sorted(set(customer_ids))
    if not ids:
        return []
    script = getattr(store, "_evict_customers_script", None)
    if script is None:
        script = store.r.register_script(lua("evict_customers"))
        store._evict_customers_script = script  # type: ignore[attr-defined]
    return list(script(keys=[], args=[store.prefix, GROUP, MAX_TAIL, *ids]))
