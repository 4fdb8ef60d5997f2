"""The processes a chaos run starts and kills: a Redis of its own (AOF, fsync always), the
`omnidesk run` daemon and `omnidesk worker` processes, each a `Managed` subprocess that is
SIGKILLed by its pid and replaced. Shared by tests/chaoskit.py and bench/chaos.py."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Managed:
    """One subprocess with a log file of its own; `kill` is SIGKILL and a reap."""

    name: str
    argv: list[str]
    log: Path
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    def start(self) -> None:
        with self.log.open("ab") as out:
            out.write(f"\n=== start {self.starts + 1} at {time.strftime('%T')}\n".encode())
            out.flush()
            self.proc = subprocess.Popen(
                self.argv,
                cwd=ROOT,
                env={**os.environ, **self.env},
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C of the test run is ours to pass on, not theirs
            )
        self.starts += 1

    @property
    def pid(self) -> int:
        assert self.proc is not None, f"{self.name} was never started"
        return self.proc.pid

    def exit_code(self) -> int | None:
        """None while running (or never started); the exit code once it has ended."""
        return None if self.proc is None else self.proc.poll()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(timeout=30)

    def tail(self, chars: int = 2500) -> str:
        if not self.log.exists():
            return ""
        return self.log.read_text("utf-8", "replace")[-chars:]


def redis_server(port: int, directory: Path) -> Managed:
    """A persistent Redis: every write is in the AOF before it is answered, so a SIGKILL
    loses nothing that a client was told had been written."""
    directory.mkdir(parents=True, exist_ok=True)
    argv = [
        "redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory),
        "--appendonly", "yes", "--appendfsync", "always", "--save", "",
        "--daemonize", "no", "--logfile", "",
    ]  # fmt: skip
    return Managed("redis", argv, directory.parent / "redis.log")


def redis_ready(url: str) -> bool:
    """Answers PING (a server still loading its AOF answers LOADING: not yet)."""
    client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=1)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def daemon(config: Path, log: Path, env: dict[str, str], workers: int) -> Managed:
    argv = [
        sys.executable, "-m", "omnidesk", "--log-level", "INFO", "run", "--config", str(config),
        "--workers", str(workers), "--drain-timeout", "5",
    ]  # fmt: skip
    return Managed("daemon", argv, log, env)


def worker(name: str, config: Path, log: Path, env: dict[str, str], threads: int) -> Managed:
    argv = [
        sys.executable, "-m", "omnidesk", "--log-level", "INFO", "worker", "--config",
        str(config), "--threads", str(threads),
    ]  # fmt: skip
    return Managed(name, argv, log, env)


def http_answers(url: str) -> bool:
    """Any HTTP answer (200, or 503 while Redis is away) means the server is listening."""
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False
