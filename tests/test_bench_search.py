"""bench/search.py stays runnable: a small seed in its own database, every search finding
what it must on both sides (the bench asserts that), and its JSON figures at the end."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KEYS = {"tickets", "search_p50_ms", "search_p99_ms", "ilike_p50_ms", "ratio"}


def test_search_bench_small_runs_and_finds_what_it_must() -> None:
    db = f"od_bench_search_t_{uuid.uuid4().hex[:8]}"
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "search.py"), "--tickets", "1000",
         "--searches", "30", "--db", db, "--drop", "--quiet"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures.keys() >= KEYS
    assert figures["tickets"] == 1000 and figures["searches"] == 30
    assert figures["messages"] >= 1000
    assert 0 < figures["search_p50_ms"] <= figures["search_p99_ms"]
