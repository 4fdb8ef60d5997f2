"""The records rig: the real daemon (`omnidesk run`, which runs the outbox writer) and
`omnidesk worker` processes on a Redis prefix of their own, writing into a PostgreSQL of
their own (tests/private_pg.py) that a test may stop, kill and restart; fed through a drop
folder. Shared by tests/test_chaos_records.py and tests/test_records_outage.py.

    with RecordsRig(workdir, workers=2) as rig:
        rig.drop_mail(markers)            # maildir-style: written in tmp/, renamed into new/
        rig.daemon.kill(); rig.start_daemon()
        rig.pg.kill(); rig.pg.start()
        rig.wait_written(5_000)           # the writer's backlog is 0 and PG holds them
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from types import TracebackType
from typing import Any

import psycopg

from omnidesk.db.migrate import upgrade
from omnidesk.db.writer import GROUP
from omnidesk.store import Store
from tests.chaosfeed import mail_bytes
from tests.chaosprocs import ROOT, Managed, daemon, http_answers, worker
from tests.private_pg import PrivatePostgres
from tests.services import REDIS_URL, free_port, wait_for

STORE_CONFIG = ROOT / "tests" / "fixtures" / "config" / "store.yaml"
START_TIMEOUT_S = 60.0


class RecordsRig:
    """PostgreSQL, the daemon and its workers, with their config, a drop folder and a key
    prefix on the shared Redis; `close` kills every process and removes the data."""

    def __init__(
        self,
        workdir: Path,
        *,
        workers: int = 2,
        worker_threads: int = 2,
        daemon_workers: int = 0,
        drop_batch: int = 50,
        service_extra: str = "",
    ) -> None:
        self.workdir = workdir
        self.run_id = uuid.uuid4().hex[:6]
        self.prefix = f"odrec{self.run_id}"
        self.redis_url = REDIS_URL
        self.store = Store.from_url(REDIS_URL, self.prefix)
        self.http_port = free_port()
        self.drop = workdir / "drop"
        for sub in ("tmp", "new", "cur"):
            (self.drop / sub).mkdir(parents=True, exist_ok=True)
        self.pg = PrivatePostgres()
        self.database_url = self.pg.database_url("omnidesk")
        self.config = workdir / "queue_config.yaml"
        self.config.write_text(self._config_text(drop_batch, service_extra), "utf-8")
        env = {"PYTHONPATH": str(ROOT), "OMNIDESK_DATABASE_URL": self.database_url}
        self.daemon = daemon(self.config, workdir / "daemon.log", env, daemon_workers)
        self.workers = [
            worker(f"worker-{n}", self.config, workdir / f"worker-{n}.log", env, worker_threads)
            for n in range(workers)
        ]

    def _config_text(self, drop_batch: int, service_extra: str) -> str:
        service = (
            f"service:\n  redis_url: {self.redis_url}\n  key_prefix: {self.prefix}\n"
            f"  state_dir: {self.workdir / 'state'}\n  http_port: {self.http_port}\n"
            # every post comes from 127.0.0.1, many from one address: no abuse limits here
            "  web_form: {posts_per_ip: 1000000000, posts_per_identity: 1000000000}\n"
        )
        for line in service_extra.splitlines():
            service += f"  {line.strip()}\n" if line.strip() else ""
        connectors = (
            "connectors:\n"
            f"  - {{name: drop, kind: maildir, path: {self.drop}, poll_interval: 0.2, "
            f"batch_size: {drop_batch}, settle_seconds: 0}}\n"
        )
        return service + STORE_CONFIG.read_text("utf-8") + connectors

    # ------------------------------------------------------------ lifecycle

    @property
    def processes(self) -> list[Managed]:
        return [self.daemon, *self.workers]

    def start(self) -> None:
        """PostgreSQL with the schema, then the daemon, then the workers."""
        self.pg.start()
        self.pg.create_database("omnidesk")
        upgrade(self.database_url)
        self.start_daemon()
        for proc in self.workers:
            proc.start()

    def start_daemon(self) -> None:
        self.daemon.start()
        if not wait_for(lambda: http_answers(self.url("/healthz")), START_TIMEOUT_S, every=0.2):
            raise RuntimeError(f"omnidesk run did not answer /healthz:\n{self.daemon.tail()}")

    def close(self) -> None:
        for proc in self.processes:
            try:
                proc.kill()
            except Exception:  # one that will not die must not keep the others alive
                continue
        self.pg.close()
        self.store.delete_all()

    def __enter__(self) -> RecordsRig:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def exited(self) -> list[str]:
        """Processes that ended without being killed by the test: a finding."""
        return [
            f"{p.name} exited with {p.exit_code()}: {p.tail(600)}"
            for p in self.processes
            if p.exit_code() is not None
        ]

    # ------------------------------------------------------------ feeding

    def markers(self, count: int) -> list[str]:
        """Payload markers the audit recognises (tests/chaosaudit.py's MARKER)."""
        return [f"CHX{self.run_id}-d-{n:05d}" for n in range(count)]

    def drop_mail(self, markers: list[str]) -> None:
        """One mail per marker, written in tmp/ and renamed into new/ (taken once renamed)."""
        for marker in markers:
            tmp = self.drop / "tmp" / f"{marker}.eml"
            tmp.write_bytes(mail_bytes(marker))
            tmp.rename(self.drop / "new" / tmp.name)

    def waiting_files(self) -> int:
        return sum(1 for _ in (self.drop / "new").iterdir())

    # ------------------------------------------------------------ HTTP

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.http_port}{path}"

    def get(self, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(self.url(path), timeout=5) as answer:
                return answer.status, answer.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def health(self) -> dict[str, Any]:
        return json.loads(self.get("/healthz")[1])

    def post(self, path: str, body: dict[str, Any]) -> int:
        request = urllib.request.Request(
            self.url(path), data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )  # fmt: skip
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                return answer.status
        except urllib.error.HTTPError as exc:
            return exc.code

    # ------------------------------------------------------------ what was written

    def rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.database_url, connect_timeout=5) as conn:
            return conn.execute(sql, params).fetchall()

    def pg_count(self, sql: str = "SELECT count(*) FROM messages") -> int | None:
        """A count, or None while PostgreSQL is away."""
        try:
            return int(self.rows(sql)[0][0])
        except psycopg.Error:
            return None

    def stream_backlog(self) -> int:
        """The writer's backlog as Redis has it now (not the daemon's last look): entries
        not yet delivered to the `records` group, plus delivered and unacknowledged."""
        r = self.store.r
        stream = self.store.key("events")
        for group in r.xinfo_groups(stream):
            if group["name"] == GROUP:
                lag = group.get("lag")
                if lag is None:
                    last = group["last-delivered-id"]
                    lag = len(r.xrange(stream, min=f"({last}", count=1_000_000))
                return int(lag) + int(group["pending"])
        return int(r.xlen(stream))

    def stream_length(self) -> int:
        return int(self.store.r.xlen(self.store.key("events")))


def wait_until(check: Any, timeout: float, every: float = 0.25) -> bool:
    """Poll `check` (which may raise a connection error: not yet) until true or timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return True
        except (OSError, psycopg.Error, json.JSONDecodeError):
            pass
        time.sleep(every)
    return False
