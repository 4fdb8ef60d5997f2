"""bench/sla.py asserts what it measures: its --quick form (its own redis-server, a few
thousand clocks) fires every due step exactly once with its ladder actions on both the
sweeper and the sorted-set poller and says so in its JSON; a target it misses makes it exit
non-zero. Timing is not asserted here (--quick prints the timing targets, not enforces)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parents[1] / "bench" / "sla.py"
KEYS = {
    "steps_per_s",
    "zset_poller_steps_per_s",
    "ratio_vs_poller",
    "lateness_p50_s",
    "lateness_p99_s",
    "bytes_per_clock",
    "fired_exactly_once",
    "checks_passed",
}


def run(*args: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, str(BENCH), "--quick", *args], capture_output=True, text=True, timeout=300
    )
    return done, json.loads(done.stdout.strip().splitlines()[-1])


def test_quick_run_fires_every_step_once_on_both_sides() -> None:
    done, figures = run()
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert figures.keys() >= KEYS
    assert figures["fired_exactly_once"] is True and figures["checks_passed"] is True
    assert figures["steps_per_s"] > 0 and figures["zset_poller_steps_per_s"] > 0
    assert figures["ratio_vs_poller"] > 0
    assert 0 < figures["bytes_per_clock"] < 200
    assert "check: every due step fired exactly once" in done.stdout


def test_a_missed_target_exits_non_zero() -> None:
    done, figures = run("--max-bytes", "1")  # no clock fits in one byte
    assert done.returncode == 1
    assert figures["checks_passed"] is False and figures["fired_exactly_once"] is True
    assert "bytes per clock < 1: MISSED" in done.stdout
