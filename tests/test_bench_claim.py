"""bench/claim.py stays runnable and honest: its --quick form starts the real daemon, agents
claim through POST /v1/claims and resolve through the API with their bearer tokens, on both
sides (closed loop and with think time), and it ends with its JSON: no double claims and
every ticket resolved exactly once. Speed is not asserted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import redis

from tests.storekit import REDIS_URL

ROOT = Path(__file__).resolve().parent.parent
KEYS = {"claims_per_s", "p50_ms", "p99_ms", "double_claims", "capacity_claims_per_s"}


def test_quick_run_claims_through_the_api_and_leaves_no_keys() -> None:
    before = set(redis.Redis.from_url(REDIS_URL).scan_iter(match="bench-claim-*"))
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "claim.py"), "--quick"],
        cwd=ROOT,
        env={**os.environ, "OMNIDESK_BENCH_REDIS": REDIS_URL},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures.keys() >= KEYS
    assert figures["double_claims"] == 0 and figures["checks_passed"] is True
    assert figures["claims_per_s"] > 0 and figures["capacity_claims_per_s"] > 0
    assert "capacity (closed loop, no think time)" in done.stdout
    assert "check: 0 double claims, every ticket claimed and resolved exactly once: ok" in (
        done.stdout
    )
    after = set(redis.Redis.from_url(REDIS_URL).scan_iter(match="bench-claim-*"))
    assert after <= before  # its own prefix, deleted afterwards
