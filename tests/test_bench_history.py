"""bench/history.py at a toy size, so it does not rot: it seeds its own database, its
report totals match the seeded counts, its pages hold 50 ordered tickets, and it ends with
its one JSON line."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg

from tests.pgkit import SERVER

BENCH = Path(__file__).resolve().parent.parent / "bench" / "history.py"


def test_bench_history_quick_run() -> None:
    name = f"od_bench_history_t_{uuid.uuid4().hex[:8]}"
    try:
        proc = subprocess.run(
            [sys.executable, str(BENCH), "--events", "6000", "--tickets", "1500",
             "--db", name, "--server", SERVER],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-2000:]
        last = proc.stdout.strip().splitlines()[-1]
        figures = json.loads(last)
        assert set(figures) == {"events", "year_report_s", "list_page_ms"}
        assert 5000 < figures["events"] < 7000
        assert figures["year_report_s"] > 0 and figures["list_page_ms"] > 0
    finally:
        with psycopg.connect(SERVER, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
