"""bench/scale_out.py stays runnable and its checks hold (issue 16): two daemons and two
workers on one Redis and one PostgreSQL, fed 1,000 payloads (files in two drop folders and
posts to both daemons), make 1,000 tickets in each store with no duplicate, and both
daemons' own /healthz and /metrics show work. The bench runs in a process group of its own
so that, should it hang past the timeout, its daemons and workers go with it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAYLOADS = 1_000
TIMEOUT_S = 300


def run_bench(*args: str) -> tuple[int, str, str]:
    """The bench's exit code, stdout and stderr; on a hang, SIGTERM to its group (it
    cleans up), then SIGKILL."""
    bench = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "scale_out.py"), *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = bench.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(bench.pid, signal.SIGTERM)
        try:
            out, err = bench.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(bench.pid, signal.SIGKILL)
            out, err = bench.communicate()
        hung = f"the bench hung past {TIMEOUT_S} s:\n{out[-2000:]}\n{err[-3000:]}"
        raise AssertionError(hung) from None
    return bench.returncode, out, err


@pytest.mark.slow
@pytest.mark.timeout(TIMEOUT_S + 120)
def test_two_daemons_and_two_workers_make_every_ticket_once() -> None:
    code, out, err = run_bench("--n", str(PAYLOADS))
    assert code == 0, f"{out[-3000:]}\n{err[-5000:]}"
    figures = json.loads(out.strip().splitlines()[-1])
    assert figures["ok"] and figures["failed"] == []
    assert figures["payloads"] == PAYLOADS
    assert figures["tickets"] == figures["pg_tickets"] == figures["pg_messages"] == PAYLOADS
    for where in ("", "pg_"):
        assert figures[f"{where}duplicates"] == figures[f"{where}missing"] == 0
        assert figures[f"{where}strays"] == 0
    assert figures["quarantined"] == figures["files_left"] == figures["rejected_files"] == 0

    daemons = [figures["daemon_a_work"], figures["daemon_b_work"]]
    for work in daemons:  # each took in web forms itself, by its own /metrics
        assert work["healthz_status"] == 200 and work["web_batches_taken_in"] > 0
        answers = work["web_answers"]
        assert answers["failed"] == {}
        assert answers["created"] + answers["existing"] + answers["queued"] == PAYLOADS // 4
    # the drop folders' files were all handed over, each by the daemon holding its lease
    # (at least once: a file whose lease moved mid-batch may be handed over again)
    assert sum(work["drop_files_handed_over"] for work in daemons) >= PAYLOADS // 2
    running = sorted(name for work in daemons for name in work["connectors_running"])
    assert running == ["drop-a", "drop-b"]  # each lease held by one daemon, never both
    assert figures["seconds"] > 0 and figures["pg_seconds"] >= figures["seconds"]
