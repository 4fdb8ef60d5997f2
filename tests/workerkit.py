"""Worker processes for fault tests: a config file on a given Redis and prefix, and
`omnidesk worker` started with its output in a log file."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from omnidesk.errors import OmnideskError
from omnidesk.store import Store
from tests.prockit import children
from tests.storekit import CONFIG

ROOT = Path(__file__).resolve().parent.parent
WRITER_MODULE = "omnidesk.writer_process"  # each worker's records writer, a child process


def write_config(url: str, prefix: str, root: Path, extra: str = "") -> Path:
    """The store tests' config with this Redis, prefix and state dir (`extra`: more
    `service:` lines, indented)."""
    service = f"service:\n  redis_url: {url}\n  key_prefix: {prefix}\n  state_dir: {root}/state\n"
    path = root / "config.yaml"
    path.write_text(service + extra + CONFIG.read_text("utf-8"), "utf-8")
    return path


def start_worker(config: Path, log: Path, threads: int = 2) -> subprocess.Popen[bytes]:
    """`omnidesk worker`, as an operator runs it."""
    args = [sys.executable, "-m", "omnidesk", "worker", "--config", str(config)]
    with log.open("ab") as out:
        return subprocess.Popen(
            [*args, "--threads", str(threads)], cwd=ROOT, stdout=out, stderr=out
        )


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def ticket_count(store: Store) -> Callable[[], int]:
    """Tickets so far; -1 while Redis is down or loading."""

    def count() -> int:
        try:
            return store.ticket_count()
        except OmnideskError:
            return -1

    return count


def wait(check: Callable[[], bool], timeout: float, every: float = 0.01) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(every)
    return False


def writers_of(parent: int) -> list[int]:
    """The records-writer processes whose parent is `parent`."""
    found = []
    for pid in children(parent):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if WRITER_MODULE.encode() in cmdline:
            found.append(pid)
    return found
