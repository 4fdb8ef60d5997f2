"""`omnidesk demo`, the README's first command, end to end: every sample becomes a ticket
and PostgreSQL records them in the demo's own database."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from omnidesk.db.connect import describe
from tests.pgkit import SERVER

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_demo_records_every_ticket_in_postgresql(pg_url: str) -> None:
    demo_db = f"{conninfo_to_dict(pg_url)['dbname']}_demo"
    where = describe(pg_url).rsplit("/", 1)[0] + f"/{demo_db}"
    env = {**os.environ, "OMNIDESK_DATABASE_URL": pg_url}
    try:
        out = subprocess.run(
            [sys.executable, "-m", "omnidesk.cli", "demo"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=170,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr[-2000:]
        # the demo's database is there, with its schema, before the daemon's first lookup
        assert "does not exist" not in out.stderr, out.stderr[-2000:]
        # the customers hear back: receipts with their ticket numbers reach the outbox
        receipts = re.search(r"receipts with the ticket number: (\d+) sent", out.stdout)
        assert receipts is not None and int(receipts.group(1)) > 0, out.stdout[-800:]
        assert re.search(r"\n  .*OD-\d{4}-\d{6}", out.stdout[receipts.end() :])
        assert "no sender for" not in out.stderr
        head = re.search(r"(\d+) sample payloads -> (\d+) tickets", out.stdout)
        assert head is not None, out.stdout[:500]
        recorded = re.search(
            rf"recorded in PostgreSQL \({re.escape(where)}\): (\d+) tickets, (\d+) "
            r"messages",
            out.stdout,
        )
        assert recorded is not None, out.stdout[-500:]
        assert recorded.group(1) == head.group(2)  # every ticket the demo printed
        followups = re.search(r"follow-ups threaded: (\d+)", out.stdout)
        assert followups is not None
        # every message of every ticket: the first ones and the threaded follow-ups
        assert int(recorded.group(2)) == int(head.group(2)) + int(followups.group(1))
    finally:
        with psycopg.connect(SERVER, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{demo_db}" WITH (FORCE)')
