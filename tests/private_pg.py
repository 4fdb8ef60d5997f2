"""A PostgreSQL cluster of a test's own, on a free loopback port under a temp dir, that the
test may stop, SIGKILL and restart. The shared server on 5432 is never touched: other tests
and people use it.

    with PrivatePostgres() as pg:
        url = pg.url          # postgresql://postgres@127.0.0.1:PORT/postgres (trust)
        pg.restart()          # stop -m fast, start on the same port and files
        pg.kill()             # SIGKILL the postmaster and its backends: a crash
        pg.start()            # crash recovery from the WAL, the same port

initdb refuses to run as root, so as root every server command runs as the `postgres` OS
user (`runuser`), and the cluster lives in a temp dir of its own that that user owns (a
test's tmp_path is root's, mode 0700: the server could not reach a directory in it).

It is built for speed, not durability against a machine crash (fsync off, small buffers):
a SIGKILL of the server still loses nothing it said was committed, since the WAL is written
(not fsynced) at each commit. Never `synchronous_commit = off`: a server crash would then
lose commits the client was told had been made, and a test of exactly-once delivery would
fail for the harness's sake (it did: 28 messages acknowledged and gone).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

import psycopg
from psycopg.conninfo import make_conninfo

from tests.prockit import alive, children
from tests.services import free_port

SERVER_USER = "postgres"
SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "fsync": "off",
    "full_page_writes": "off",
    "shared_buffers": "16MB",
    "max_connections": "40",
    "max_wal_size": "256MB",
    "log_min_messages": "warning",
}


def pg_bin(tool: str) -> str:
    """A server tool (initdb, pg_ctl): Debian keeps them out of PATH, per major version."""
    found = shutil.which(tool)
    if found:
        return found
    versions = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{tool}"), key=_version_key)
    if not versions:
        raise RuntimeError(f"no {tool}: install PostgreSQL's server package")
    return versions[-1]


def server_missing() -> str | None:
    """Why no private cluster can be made here (a reason to skip), or None."""
    try:
        pg_bin("initdb")
        pg_bin("pg_ctl")
    except RuntimeError as exc:
        return str(exc)
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "running as root without runuser: initdb cannot run as the postgres user"
    return None


def _version_key(path: str) -> int:
    part = path.split("/")[4]
    return int(part) if part.isdigit() else 0


class PrivatePostgres:
    def __init__(self, port: int | None = None) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="od-pg-"))
        self.data = self.root / "data"
        self.port = port or free_port()
        self.logfile = self.root / "postgres.log"
        self._as_server = os.geteuid() == 0  # root: run the server as `postgres`

    # ------------------------------------------------------------ addresses

    @property
    def url(self) -> str:
        return self.database_url("postgres")

    def database_url(self, name: str) -> str:
        return make_conninfo(
            host="127.0.0.1", port=self.port, user="postgres", dbname=name, connect_timeout=5
        )

    def create_database(self, name: str) -> str:
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.database_url(name)

    # ------------------------------------------------------------ lifecycle

    def init(self) -> None:
        """initdb into `root/data`, once; trust auth for local and loopback connections."""
        if (self.data / "PG_VERSION").exists():
            return
        if self._as_server:
            ids = pwd.getpwnam(SERVER_USER)
            os.chown(self.root, ids.pw_uid, ids.pw_gid)
        self._run(
            pg_bin("initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust",
            "--no-sync", "-E", "UTF8", "--locale", "C.UTF-8",
        )  # fmt: skip

    def start(self, timeout: float = 30.0) -> None:
        """Start (or restart) on the same port and data; returns once it takes connections
        (after crash recovery, when it was killed)."""
        self.init()
        options = " ".join(f"-c {k}={v}" for k, v in self._settings().items())
        self._run(
            pg_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.logfile), "-o", options,
            "-w", "-t", str(int(timeout)), "start",
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.answers():
                return
            time.sleep(0.05)
        raise RuntimeError(f"postgres did not answer on {self.port}:\n{self.log_tail()}")

    def stop(self, mode: str = "fast") -> None:
        """pg_ctl stop: `fast` (clients disconnected, a clean shutdown) or `immediate`
        (every process quits at once: crash recovery on the next start)."""
        if self.pid() is None:
            return
        self._run(pg_bin("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", "30", "stop")

    def restart(self, mode: str = "fast") -> None:
        self.stop(mode)
        self.start()

    def kill(self) -> None:
        """SIGKILL the postmaster and every backend, as the OOM killer or a power cut
        would; the next `start` recovers from the WAL."""
        pid = self.pid()
        if pid is None:
            return
        victims = [pid, *children(pid)]
        for victim in victims:
            with contextlib.suppress(ProcessLookupError):
                os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(alive(v) for v in victims):
            time.sleep(0.02)
        # The postmaster was pg_ctl's child, now init's; an init that does not reap leaves it
        # a zombie, which postgres would take for a live server holding the lock files.
        for lock in (self.data / "postmaster.pid", self.root / f".s.PGSQL.{self.port}.lock"):
            with contextlib.suppress(FileNotFoundError):
                lock.unlink()

    def pid(self) -> int | None:
        """The running postmaster's pid, or None."""
        try:
            pid = int((self.data / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None
        return pid if alive(pid) else None

    def answers(self) -> bool:
        try:
            with psycopg.connect(self.url, connect_timeout=1) as conn:
                conn.execute("SELECT 1")
            return True
        except psycopg.Error:
            return False

    def log_tail(self, chars: int = 2000) -> str:
        try:
            return self.logfile.read_text("utf-8", "replace")[-chars:]
        except OSError:
            return ""

    def close(self) -> None:
        """Stop (immediately: nothing is kept) and remove every file."""
        with contextlib.suppress(Exception):
            self.stop("immediate")
        self.kill()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PrivatePostgres:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ------------------------------------------------------------ internals

    def _settings(self) -> dict[str, str]:
        return {**SETTINGS, "port": str(self.port), "unix_socket_directories": str(self.root)}

    def _run(self, *argv: str) -> None:
        command = ["runuser", "-u", SERVER_USER, "--", *argv] if self._as_server else list(argv)
        done = subprocess.run(
            command, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=90
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"{' '.join(argv[:1] + argv[-1:])} failed ({done.returncode}): "
                f"{done.stderr.strip() or done.stdout.strip()}\n{self.log_tail()}"
            )
