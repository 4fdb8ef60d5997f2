"""The schema comes from `omnidesk db upgrade`, once, and holds the invariants Redis's
scripts hold on hot tickets."""

from __future__ import annotations

import subprocess
import sys
import uuid
from datetime import UTC, datetime

import psycopg
import pytest

from omnidesk.db.connect import RecordsUnavailable, connect
from omnidesk.db.migrate import migrations, pending, upgrade
from tests.clikit import Ran, omnidesk
from tests.pgkit import SERVER, database_url


def _cli(*args: str, url: str) -> Ran:
    """`omnidesk ARGS` on the database at `url`, in-process (tests/clikit.py)."""
    return omnidesk(*args, "--config", "queue_config.yaml", env={"OMNIDESK_DATABASE_URL": url})


def _cli_process(*args: str, url: str) -> subprocess.CompletedProcess[str]:
    """The same as a real process: its exit code and stderr at the process boundary."""
    env = {"OMNIDESK_DATABASE_URL": url, "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        [sys.executable, "-m", "omnidesk.cli", *args, "--config", "queue_config.yaml"],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip


def test_upgrade_applies_every_file_once(pg_empty_url: str) -> None:
    assert pending(pg_empty_url) == [name for _, name, _ in migrations()]
    first = _cli("db", "upgrade", url=pg_empty_url)
    assert first.returncode == 0, first.stderr
    assert "applied 0001_base.sql" in first.stdout
    again = _cli("db", "upgrade", url=pg_empty_url)
    assert again.returncode == 0 and "up to date" in again.stdout
    assert _cli("db", "status", url=pg_empty_url).returncode == 0
    assert upgrade(pg_empty_url) == []


def test_the_written_tables_keep_room_for_hot_updates_and_no_prefix_indexes(pg_url: str) -> None:
    """Schema 0008: the rows the records writer rewrites leave room on their pages, and no
    tickets index is a prefix of another (each ticket written updates every one)."""
    with psycopg.connect(pg_url) as conn:
        options = conn.execute(
            "SELECT relname, reloptions FROM pg_class"
            " WHERE relname IN ('messages', 'tickets', 'customers') ORDER BY relname"
        ).fetchall()
        columns = conn.execute(
            "SELECT array_agg(a.attname ORDER BY k.n) FROM pg_index i"
            " JOIN pg_class t ON t.oid = i.indrelid AND t.relname = 'tickets'"
            " CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, n)"
            " LEFT JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum"
            " WHERE i.indpred IS NULL AND i.indexprs IS NULL GROUP BY i.indexrelid"
        ).fetchall()
    assert options == [(name, ["fillfactor=85"]) for name in ("customers", "messages", "tickets")]
    keys = [tuple(c) for (c,) in columns]
    prefixes = [(a, b) for a in keys for b in keys if a != b and b[: len(a)] == a]
    assert prefixes == []
    assert ("queue", "status", "created_at", "id") in keys


def test_one_message_per_channel_account_external_id(pg_url: str) -> None:
    now = datetime.now(UTC)
    with psycopg.connect(pg_url) as conn:
        conn.execute(
            "INSERT INTO tickets (id, customer_id, channel, queue, status, created_at,"
            " updated_at) VALUES ('OD-2026-000001', 'C-00000001', 'email', 'q', 'new', %s, %s)",
            (now, now),
        )
        insert = (
            "INSERT INTO messages (id, ticket_id, direction, channel, account, external_id,"
            " created_at) VALUES (%s, 'OD-2026-000001', 'in', 'email', 'inbox', '<a@b>', %s)"
        )
        conn.execute(insert, ("m1", now))
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute(insert, ("m2", now))


def test_upgrade_creates_a_missing_database() -> None:
    name = f"od_m_{uuid.uuid4().hex[:12]}"
    missing = database_url(name)
    try:
        assert upgrade(missing) == [name for _, name, _ in migrations()]
        assert pending(missing) == []
    finally:
        with psycopg.connect(SERVER, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_status_says_pending_with_exit_1(pg_empty_url: str) -> None:
    out = _cli("db", "status", url=pg_empty_url)
    assert out.returncode == 1 and "pending 0001_base.sql" in out.stdout


def test_a_database_that_is_down_is_one_clear_line() -> None:
    url = "postgresql://postgres@127.0.0.1:1/omnidesk"  # nothing listens on port 1
    with pytest.raises(RecordsUnavailable, match=r"postgresql unavailable at 127\.0\.0\.1:1"):
        connect(url)
    out = _cli_process("db", "upgrade", url=url)
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and "postgresql unavailable" in out.stderr
    assert "Traceback" not in out.stderr
