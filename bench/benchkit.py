"""What the benchmarks that drive the real daemon share: the reference config with a
`service:` block of their own, free ports, a private database, starting `omnidesk run` and
`omnidesk worker` processes, their CPU time, and percentiles."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from types import FrameType

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
REDIS_URL = os.environ.get("OMNIDESK_BENCH_REDIS", "redis://127.0.0.1:6379/0")
# The server a private database is made on (CREATE DATABASE, dropped at the end).
PG_ADMIN_URL = os.environ.get("OMNIDESK_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
OMNIDESK = [sys.executable, "-m", "omnidesk"]
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

sys.path.insert(0, str(ROOT))
# the tests' free_port: it never hands out one port twice (two daemons, or a daemon and a sink)
from tests.services import free_port  # noqa: E402


def reference_body(source: Path) -> str:
    """The config's queues, rules and the rest, without its `service:`, its rule `tests:`
    (their file paths are relative to the original's folder), scheduled `reports:` and
    `connectors:`: a bench writes its own."""
    lines, skipping = [], False
    for line in source.read_text("utf-8").splitlines():
        if line.startswith(("service:", "tests:", "reports:", "connectors:")):
            skipping = True
            continue
        if skipping and (line.startswith((" ", "\t", "#")) or not line.strip()):
            continue
        skipping = False
        lines.append(line)
    return "\n".join(lines) + "\n"


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


class PrivateDatabase:
    """A database of the bench's own on the loopback server, dropped by `drop()`."""

    def __init__(self, admin_url: str = PG_ADMIN_URL) -> None:
        import psycopg

        self.admin_url = admin_url
        self.name = f"od_bench_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.name}"')
        self.url = admin_url.rsplit("/", 1)[0] + "/" + self.name

    def count(self, table: str) -> int:
        import psycopg

        with psycopg.connect(self.url) as conn:
            row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
            return int(row[0]) if row else 0

    def drop(self) -> None:
        import psycopg

        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


def spawn(args: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """An omnidesk command as its own process (and process group), its stderr to `log`;
    `env` on top of this process's environment."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.Popen(
        [*OMNIDESK, *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log.open("ab"),
        start_new_session=True,
    )


ENDING_SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)


def _exit_on_signal(signum: int, frame: FrameType | None) -> None:
    # the clean-up is not cut short by the next signal (a runner's cancel sends several)
    for sig in ENDING_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    print(f"stopped by signal {signum}: cleaning up", file=sys.stderr, flush=True)
    raise SystemExit(128 + signum)


def clean_up_on_signals() -> None:
    """SIGTERM, SIGHUP and SIGINT (a CI timeout, a closed terminal, a kill, Ctrl-C) end a run
    through its `finally` blocks, as Ctrl-C does: the daemons and workers it started (each
    in a session of its own, so the signal never reaches them) are stopped, and its keys,
    database and folders go."""
    for sig in ENDING_SIGNALS:  # Ctrl-C too: a runner's cancel sends SIGINT, then SIGTERM
        signal.signal(sig, _exit_on_signal)


def stop(procs: list[subprocess.Popen[bytes]], timeout: float = 30) -> None:
    """SIGTERM each, then wait; what does not stop in time is killed with its group."""
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for proc in procs:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _stat(pid: int | str) -> list[str] | None:
    """/proc/<pid>/stat's fields after the command name (state first, then the parent)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None


def cpu_seconds(pids: list[int]) -> float:
    """User and system CPU time of these processes so far (from /proc/<pid>/stat)."""
    total = 0
    for pid in pids:
        if (fields := _stat(pid)) is not None:
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / CLOCK_TICKS


def with_children(pids: list[int]) -> list[int]:
    """These processes and their children (a worker's records writer runs in a child of
    its own: its CPU is the worker's)."""
    found = list(pids)
    for entry in os.scandir("/proc"):
        fields = _stat(entry.name) if entry.name.isdigit() else None
        if fields is not None and int(fields[1]) in pids:
            found.append(int(entry.name))
    return found


def service_pids(command: str) -> list[int]:
    """This machine's processes named `command` (``redis-server``, ``postgres`` with its
    backends): what the daemon and its workers cost Redis and PostgreSQL is counted apart
    from their own CPU time."""
    pids = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            name = Path(entry.path, "comm").read_text().strip()
        except OSError:  # gone meanwhile
            continue
        if name == command:
            pids.append(int(entry.name))
    return pids


def machine_jiffies() -> tuple[int, int]:
    """Busy and all CPU time of every core so far, in clock ticks (/proc/stat's first line:
    user, nice, system, idle, iowait, irq, softirq, steal)."""
    ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return sum(ticks) - ticks[3] - ticks[4], sum(ticks)


async def wait_until_up(base: str, procs: list[subprocess.Popen[bytes]], timeout: float) -> None:
    """Until `base`/healthz answers 200; fails at once if a process exited."""
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            for proc in procs:
                assert proc.poll() is None, f"{proc.args} exited with {proc.returncode}"
            try:
                async with session.get(f"{base}/healthz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError(f"{base} did not come up in {timeout:.0f} s")


def private_redis(workdir: str | Path) -> tuple[subprocess.Popen[bytes], int]:
    """A redis-server of the bench's own on a free loopback port (nothing persisted), up and
    answering; stop it with `stop([proc])`."""
    import redis

    port = free_port()
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no",
         "--dir", str(workdir), "--bind", "127.0.0.1"],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    client = redis.Redis(port=port)
    try:
        for _ in range(100):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
    finally:
        client.close()
    return proc, port
