"""bench/web_load.py stays runnable: its --quick form drives the real daemon for two seconds
and must end with its JSON figures, every accepted form a ticket and no 5xx but 503s."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KEYS = {"accepted_per_s", "processed_per_s", "p99_ms", "max_backlog", "errors_5xx"}


def test_web_load_quick_runs_and_loses_nothing() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "web_load.py"), "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures.keys() >= KEYS
    assert figures["accepted"] > 0 and figures["tickets"] == figures["accepted"]
    assert figures["lost"] == 0 and figures["errors_5xx"] == 0
    assert figures["refused_503_without_retry_after"] == 0
