"""bench/e2e.py stays runnable: its --quick form drives the real daemon (1,000 payloads with
1 and 2 worker processes, a short paced run) and checks every ticket it times (counts in
Redis and PostgreSQL, SLA clocks, nothing quarantined, a routed sample), exiting non-zero
on a miss; it must end with the issue's JSON keys."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
KEYS = {"tickets_per_s", "floor_per_s", "ratio_to_floor", "scale_2_over_1", "p50_ms_at_200",
        "p99_ms_at_200", "p99_ms_at_500", "cpu_ms_per_ticket"}  # fmt: skip

pytestmark = pytest.mark.slow


def test_e2e_quick_runs_and_checks_what_it_times() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "e2e.py"), "--quick"],
        cwd=ROOT, capture_output=True, text=True, timeout=400,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures.keys() >= KEYS
    assert figures["payloads"] == 1000
    assert set(figures["by_workers"]) == {"1", "2"}
    assert all(rate > 0 for rate in figures["by_workers"].values())
    assert figures["floor_per_s"] > 0 and figures["cpu_ms_per_ticket"] > 0
    assert figures["redis_cpu_ms_per_ticket"] > 0 and figures["postgres_cpu_ms_per_ticket"] > 0
    assert 0 < figures["machine_busy"] <= 1
    assert 0 < figures["p50_ms_at_200"] <= figures["p99_ms_at_200"]
