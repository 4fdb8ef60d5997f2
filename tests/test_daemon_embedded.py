"""`omnidesk run --embedded-redis`: with nothing listening at the configured Redis, the daemon
runs a private redis-server (unix socket and AOF in the state dir), works on it, and stops it
on SIGTERM. Without a redis-server binary it says so in one line and exits 2."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from omnidesk.store import Store
from tests.services import free_port, wait_for
from tests.test_daemon import ROOT, DaemonProc, write_daemon_config


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "zombie" in status.read_text()


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="no redis-server binary")
def test_embedded_redis_serves_the_daemon_and_stops_with_it(prefix: str, tmp_path: Path) -> None:
    nowhere = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    drop, state = tmp_path / "drop", tmp_path / "state"
    (drop / "new").mkdir(parents=True)
    config = tmp_path / "queue_config.yaml"
    port = free_port()
    write_daemon_config(config, prefix=prefix, state=state, drop=drop, port=port, redis_url=nowhere)
    socket_path = state.resolve() / "redis" / "redis.sock"
    daemon = DaemonProc(
        config=config,
        drop=drop,
        port=port,
        prefix=prefix,
        log=tmp_path / "daemon.log",
        redis_url=f"unix://{socket_path}",
        args=["--embedded-redis"],
    )
    try:
        daemon.start()
        assert socket_path.exists(), daemon.logs()
        daemon.drop_web("c1", "استفسار عن السجل التجاري")
        store = Store.from_url(daemon.redis_url, prefix)  # read it through the socket
        assert wait_for(lambda: store.ticket_count() == 1), daemon.logs()
        assert store.list_tickets()[0].queue == "cr"
        pid = int(redis.Redis(unix_socket_path=str(socket_path)).info("server")["process_id"])
        assert any(p.name.startswith("appendonly") for p in socket_path.parent.iterdir())
        assert daemon.stop() == 0
        assert wait_for(lambda: _gone(pid), timeout=10), f"redis-server {pid} still runs"
    finally:
        if daemon.proc is not None:
            daemon.proc.kill()
            daemon.proc.wait()


def test_embedded_redis_without_a_binary_says_so_in_one_line(tmp_path: Path) -> None:
    config = tmp_path / "queue_config.yaml"
    write_daemon_config(
        config,
        prefix="unused",
        state=tmp_path / "state",
        drop=tmp_path / "drop",
        port=free_port(),
        redis_url=f"redis://127.0.0.1:{free_port()}/0",
    )
    empty = tmp_path / "bin"  # a PATH without redis-server
    empty.mkdir()
    done = subprocess.run(
        [sys.executable, "-m", "omnidesk", "run", "--config", str(config), "--embedded-redis"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "PATH": str(empty)},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "omnidesk run: --embedded-redis: no redis-server binary on PATH "
        "(install the redis-server package)"
    ]
