"""bench/report.py at a toy size, so it does not rot: it seeds its own database through
bench/history.py's generator, folds the finished days, times our report path and plain SQL
over the events in interleaved rounds, finds their figures equal, and ends with its one
JSON line."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg

from tests.pgkit import SERVER

BENCH = Path(__file__).resolve().parent.parent / "bench" / "report.py"


def test_bench_report_quick_run() -> None:
    name = f"od_bench_report_t_{uuid.uuid4().hex[:8]}"
    try:
        proc = subprocess.run(
            [sys.executable, str(BENCH), "--events", "6000", "--rounds", "2", "--db", name,
             "--server", SERVER],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-2000:]
        figures = json.loads(proc.stdout.strip().splitlines()[-1])
        assert set(figures) == {"report_s", "sql_baseline_s", "ratio", "events",
                                "period_events", "rounds", "fold_s"}  # fmt: skip
        assert 5000 < figures["events"] < 7000 and 0 < figures["period_events"] < 6000
        assert figures["report_s"] > 0 and figures["sql_baseline_s"] > 0
        assert figures["rounds"] == 2
        assert "round 2:" in proc.stderr  # both rounds ran and agreed
    finally:
        with psycopg.connect(SERVER, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
