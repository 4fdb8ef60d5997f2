"""`Store.list_tickets(queue, status)`: the newest tickets of a queue in a status, read a page
of ids at a time with one ZMSCORE per page, not one round trip per ticket."""

from __future__ import annotations

from omnidesk.runtime import Runtime
from tests.storekit import web


def test_queue_and_status_lists_the_newest_matches_across_pages(runtime: Runtime) -> None:
    store = runtime.store
    opened = runtime.process(
        [web(f"commercial registration {i}", email=f"l{i}@example.sa") for i in range(30)]
    ).results
    ids = [r.ticket_id for r in opened]
    resolved = ids[::7]  # spread over the pages below
    for tid in resolved:
        store.set_status(tid, "resolved")
    queue = store.get_ticket(ids[0]).queue  # type: ignore[union-attr]
    got = [t.id for t in store.list_tickets(queue, "resolved", limit=3)]
    assert got == sorted(resolved, reverse=True)[:3]
    assert store._in_both(
        store.key("queue", queue, "all"), store.key("status", "resolved"), 10, page=4
    ) == sorted(resolved, reverse=True)
    assert [t.id for t in store.list_tickets(queue, "closed")] == []
