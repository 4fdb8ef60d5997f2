"""The retention policy (`service.retention.personal_data_years`): resolved and closed tickets
past it lose their personal data the way an erasure removes it (omnidesk.db.erasure), oldest
first and a bounded number per run, and so do their customers once nothing of theirs is
within the period. Run by the daemon's archive pass (omnidesk.archive_job) each slot and by
`omnidesk customer retention`. The statistics stay."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from omnidesk.db.customers import audit
from omnidesk.db.erasure import erase_people, erase_tickets
from omnidesk.store import Store

log = logging.getLogger("omnidesk.retention")
RETENTION_BATCH = 5000  # tickets per run: the archive pass comes back each slot


def retention_cutoff(years: int, now: datetime | None = None) -> datetime:
    """The moment before which a closed ticket's personal data is past keeping (a year is
    365.25 days: leap days do not shift the cutoff)."""
    return (now or datetime.now(UTC)) - timedelta(days=365.25 * years)


def apply_retention(
    conn: psycopg.Connection[Any],
    years: int,
    *,
    store: Store | None = None,
    state_dir: str | Path | None = None,
    now: datetime | None = None,
    dry_run: bool = False,
    actor: str = "retention",
    limit: int | None = RETENTION_BATCH,
) -> dict[str, Any]:
    """Erase the personal data of resolved and closed tickets whose last change (closed,
    else resolved, else updated) is older than `years`, oldest first and at most `limit` of
    them (one archive pass stays short; `more` says whether some are left), then of their
    customers left with no ticket that is not erased. The statistics stay. With `dry_run`,
    only counts, all of them. Audited when anything was erased."""
    cutoff = retention_cutoff(years, now)
    bound = None if dry_run else limit
    tickets = [
        str(r[0])
        for r in conn.execute(
            "SELECT id FROM tickets WHERE erased_at IS NULL AND status IN ('resolved', 'closed')"
            " AND coalesce(closed_at, resolved_at, updated_at) < %s"
            " ORDER BY coalesce(closed_at, resolved_at, updated_at) LIMIT %s",
            (cutoff, None if bound is None else bound + 1),
        ).fetchall()
    ]
    more = bound is not None and len(tickets) > bound
    tickets = tickets[:bound] if bound is not None else tickets
    people = people_left(conn, tickets, cutoff)
    summary: dict[str, Any] = {
        "cutoff": cutoff.isoformat(),
        "tickets": len(tickets),
        "customers": len(people),
        "more": more,
        "dry_run": dry_run,
    }
    if dry_run or not (tickets or people):
        return summary
    done: dict[str, Any] = erase_tickets(conn, tickets, store, state_dir)
    if people:
        part = erase_people(conn, people, store)
        done["identities"] = part["identities"]
        done["redis_keys"] += part["redis_keys"]
    summary.update({k: v for k, v in done.items() if k != "tickets"})
    audit(conn, actor, "retention", "retention", summary)
    log.info("retention: erased %d tickets and %d customers", len(tickets), len(people))
    return summary


def people_left(conn: psycopg.Connection[Any], tickets: list[str], cutoff: datetime) -> list[str]:
    """The owners of `tickets` (with every customer merged into them) that have no other
    ticket not yet erased and no record newer than the cutoff: once these tickets are erased,
    nothing of theirs is within the retention period."""
    rows = conn.execute(
        """
        WITH RECURSIVE grp(root, id, created) AS (
            SELECT c.id, c.id, c.created_at FROM customers c
            WHERE c.id IN (SELECT customer_id FROM tickets WHERE id = ANY(%(t)s))
              AND c.merged_into IS NULL AND c.erased_at IS NULL
            UNION
            SELECT g.root, c.id, c.created_at FROM customers c JOIN grp g ON c.merged_into = g.id
        )
        SELECT root, array_agg(id ORDER BY id) FROM grp GROUP BY root
        HAVING max(created) < %(cutoff)s
           AND NOT EXISTS (SELECT 1 FROM tickets t WHERE t.customer_id = ANY(array_agg(grp.id))
                           AND t.erased_at IS NULL AND NOT t.id = ANY(%(t)s))
        ORDER BY root
        """,
        {"t": tickets, "cutoff": cutoff},
    ).fetchall()
    return [str(c) for _, ids in rows for c in ids]
