"""bench/memory.py in its quick mode: it runs end to end on its own redis-server and
database, every ticket reaches PostgreSQL, only the open ones stay in Redis, and it ends
with its one JSON line."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench" / "memory.py"


def test_quick_run_keeps_only_open_tickets_in_redis() -> None:
    args = ["--tickets", "400", "--open", "40", "--window", "0.3"]
    done = subprocess.run(
        [sys.executable, str(BENCH), *args], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    last = done.stdout.strip().splitlines()[-1]
    figures = json.loads(last)
    assert set(figures) == {
        "redis_bytes_per_open",
        "redis_bytes_per_closed",
        "redis_growth_ratio",
        "pg_bytes_per_ticket",
    }
    assert figures["redis_bytes_per_open"] > 0 and figures["pg_bytes_per_ticket"] > 0
    counts = re.search(
        r"(\d+) tickets \((\d+) in PostgreSQL, (\d+) hot\), (\d+) open, (\d+) in Redis",
        done.stderr,
    )
    assert counts is not None, done.stderr[-2000:]
    tickets, in_pg, hot, open_, in_redis = map(int, counts.groups())
    assert tickets == in_pg == 400
    assert hot == open_ == in_redis == 40  # the done ones all left Redis, marked cold
