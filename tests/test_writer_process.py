"""An `omnidesk worker`'s records writer runs in a child process of its own: it writes the
events stream into PostgreSQL, stops with its worker, never outlives it, even when the
worker is killed with SIGKILL, and is started again when it dies on its own."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import psycopg

from omnidesk.runtime import Runtime
from tests.prockit import alive
from tests.storekit import REDIS_URL, web
from tests.workerkit import ROOT, stop, wait, write_config, writers_of


def start_worker(config: Path, log: Path, pg_url: str, prefix: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "OMNIDESK_DATABASE_URL": pg_url, "OMNIDESK_KEY_PREFIX": prefix}
    args = [sys.executable, "-m", "omnidesk", "worker", "--config", str(config)]
    with log.open("ab") as out:
        return subprocess.Popen(args, cwd=ROOT, stdout=out, stderr=out, env=env)


def tickets_in(pg_url: str) -> int:
    try:
        with psycopg.connect(pg_url) as conn:
            row = conn.execute("SELECT count(*) FROM tickets").fetchone()
    except psycopg.Error:
        return -1
    return int(row[0]) if row else 0


def test_the_workers_writer_records_the_stream_and_stops_with_it(
    runtime: Runtime, prefix: str, pg_url: str, tmp_path: Path
) -> None:
    runtime.process([web(f"طلب {i}", email=f"wp{i}@example.sa") for i in range(5)])
    config = write_config(REDIS_URL, prefix, tmp_path)
    worker = start_worker(config, tmp_path / "worker.log", pg_url, prefix)
    try:
        assert wait(lambda: len(writers_of(worker.pid)) == 1, timeout=30)
        (writer,) = writers_of(worker.pid)
        assert wait(lambda: tickets_in(pg_url) == 5, timeout=30), tmp_path.joinpath(
            "worker.log"
        ).read_text()
    finally:
        stop(worker)
    assert worker.returncode == 0
    assert not alive(writer)  # stopped with its worker, not left behind


def test_the_workers_writer_does_not_outlive_a_killed_worker(
    runtime: Runtime, prefix: str, pg_url: str, tmp_path: Path
) -> None:
    config = write_config(REDIS_URL, prefix, tmp_path)
    worker = start_worker(config, tmp_path / "worker.log", pg_url, prefix)
    try:
        assert wait(lambda: len(writers_of(worker.pid)) == 1, timeout=30)
        (writer,) = writers_of(worker.pid)
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait()
    assert wait(lambda: not alive(writer), timeout=30)  # it stops by itself
    assert f"worker {worker.pid} is gone; stopping" in (tmp_path / "worker.log").read_text()
    # and what it wrote before is still there for the next worker's writer
    runtime.process([web("بعد التوقف", email="after@example.sa")])
    second = start_worker(config, tmp_path / "second.log", pg_url, prefix)
    try:
        assert wait(lambda: tickets_in(pg_url) == 1, timeout=30)
    finally:
        stop(second)


def test_a_writer_that_dies_on_its_own_is_started_again(
    runtime: Runtime, prefix: str, pg_url: str, tmp_path: Path
) -> None:
    config = write_config(REDIS_URL, prefix, tmp_path)
    log = tmp_path / "worker.log"
    worker = start_worker(config, log, pg_url, prefix)
    try:
        assert wait(lambda: len(writers_of(worker.pid)) == 1, timeout=30)
        (first,) = writers_of(worker.pid)
        os.kill(first, signal.SIGKILL)
        assert wait(lambda: writers_of(worker.pid) not in ([], [first]), timeout=30)
        assert f"records writer {first} exited (-9)" in log.read_text()
        runtime.process([web("بعد إعادة التشغيل", email="restart@example.sa")])
        assert wait(lambda: tickets_in(pg_url) == 1, timeout=30)  # the new one writes
    finally:
        stop(worker)
    assert worker.returncode == 0
