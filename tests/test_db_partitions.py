"""ensure_event_partitions (schema 0004): one partition per UTC month of a range, created
once, and rows that fell into events_default meanwhile moved into their month."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg


def test_partitions_are_made_once_and_take_the_defaults_rows(pg_url: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO events (ts, stream_id, type, ticket_id) VALUES "
            "('2026-02-10 12:00+00', '1770724800000-0', 'ticket_opened', 'OD-1'), "
            "('2026-04-01 00:00+00', '1775001600000-0', 'ticket_opened', 'OD-2')"
        )
        made = conn.execute(
            "SELECT ensure_event_partitions(%s, %s)",
            (datetime(2026, 1, 31, 23, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC)),
        ).fetchone()[0]
        assert made == 3  # January, February, March
        again = conn.execute(
            "SELECT ensure_event_partitions('2026-02-01+00', '2026-03-31+00')"
        ).fetchone()[0]
        assert again == 0
        where = dict(
            conn.execute("SELECT ticket_id, tableoid::regclass::text FROM events").fetchall()
        )
        assert where == {"OD-1": "events_y2026m02", "OD-2": "events_default"}
        names = {r[0] for r in conn.execute(
            "SELECT inhrelid::regclass::text FROM pg_inherits "
            "WHERE inhparent = 'events'::regclass").fetchall()}  # fmt: skip
        assert {"events_y2026m01", "events_y2026m02", "events_y2026m03"} <= names
