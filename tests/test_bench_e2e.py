"""bench/e2e.py stays runnable: its --quick form drives the real daemon (1,000 payloads with
1 and 2 worker processes, a short paced run) and checks every ticket it times (counts in
Redis and PostgreSQL, SLA clocks, nothing quarantined, a routed sample), exiting non-zero
on a miss; it must end with the issue's JSON keys."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
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


def processes_under(folder: Path) -> dict[int, list[str]]:
    """The running processes whose command line names a path under `folder`."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            args = (entry / "cmdline").read_bytes().decode("utf-8", "replace").split("\0")
        except OSError:
            continue  # gone meanwhile
        if any(str(folder) in arg for arg in args):
            found[int(entry.name)] = args
    return found


def answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def test_a_terminated_run_leaves_nothing_behind(tmp_path: Path) -> None:
    """SIGTERM mid-burst (a CI timeout, an operator's kill) stops the daemon and workers the
    run started in sessions of their own, drops its database and removes its folders."""
    run_tmp = tmp_path / "tmp"  # the bench's temporary folders go here
    run_tmp.mkdir()
    env = {**os.environ, "TMPDIR": str(run_tmp)}
    database = None
    with (tmp_path / "stderr").open("w+") as stderr:
        bench = subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / "e2e.py"), "--quick"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=stderr,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 120
            while len(started := processes_under(run_tmp)) < 2:  # the daemon and a worker
                assert bench.poll() is None and time.monotonic() < deadline, started
                time.sleep(0.2)
            args = next(iter(started.values()))
            config = Path(args[args.index("--config") + 1]).read_text("utf-8")
            database = re.search(r"database_url: (\S+)/(\w+)", config)
            port = re.search(r"http_port: (\d+)", config)
            assert database is not None and port is not None, config
            # once the daemon answers, the bench holds every process it started
            while not answers(int(port[1])):
                assert bench.poll() is None and time.monotonic() < deadline
                time.sleep(0.2)
            bench.send_signal(signal.SIGTERM)
            bench.wait(timeout=90)
            left_running = processes_under(run_tmp)
            with psycopg.connect(f"{database[1]}/postgres") as conn:  # the server it was on
                query = "SELECT datname FROM pg_database WHERE datname = %s"
                left_database = conn.execute(query, (database[2],)).fetchall()
        finally:
            clean_up_after(bench, run_tmp, database)
        stderr.seek(0)
        said = stderr.read()
    assert bench.returncode == 128 + signal.SIGTERM, said[-2000:]
    assert "stopped by signal 15: cleaning up" in said
    assert left_running == {}
    assert list(run_tmp.iterdir()) == []
    assert left_database == []


def clean_up_after(bench: subprocess.Popen[bytes], run_tmp: Path, database: Any) -> None:
    """What a failed run left (this test's own, not another's): the bench, its daemon and
    workers, its database."""
    if bench.poll() is None:
        bench.send_signal(signal.SIGTERM)
        try:
            bench.wait(timeout=60)
        except subprocess.TimeoutExpired:
            bench.kill()
            bench.wait()
    for pid in processes_under(run_tmp):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    if database is not None:
        with psycopg.connect(f"{database[1]}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database[2]}" WITH (FORCE)')
