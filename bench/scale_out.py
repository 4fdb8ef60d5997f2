"""Scale-out benchmark (issue 16): two `omnidesk run` daemons and two `omnidesk worker`
processes on one Redis and one PostgreSQL, fed N payloads, must make exactly N tickets.

The run gets a key prefix of its own on the shared Redis ($OMNIDESK_BENCH_REDIS, default
127.0.0.1:6379) and a database of its own on the PostgreSQL server ($OMNIDESK_BENCH_PG,
else $OMNIDESK_TEST_PG, default 127.0.0.1:5432): created with the schema at the start,
dropped at the end with the keys and the processes, on failure too. Both daemons read one
config (the reference queue_config.yaml, with a `service:` block of the run's own and two
drop-folder connectors); each serves HTTP on a port of its own and runs no worker threads
(`--workers 0`): the two `omnidesk worker` processes take the handed-over batches in.

The payloads, each a web form with a unique marker in its subject and its own customer:
  * half as `.web.json` files, written in tmp/ and renamed into new/ of two drop folders
    (one connector each; the connectors' leases decide which daemon polls which);
  * half posted to `POST /v1/intake/web`, split evenly between the two daemons (a 503 is
    retried after its Retry-After, a lost answer with the same `submission_id`).

Checked, not just measured (any failure: exit 1, after the figures):
  * exactly N tickets in Redis, N tickets and N messages in PostgreSQL, every marker in
    exactly one ticket in each (no duplicate, none missing, no stray), nothing quarantined;
  * both daemons did work, by their own figures: /healthz (files their connectors handed
    over, events their writer put in PostgreSQL) and /metrics (`omnidesk_ingest_seconds`
    counts the batches a daemon took in itself: with no worker threads, web forms only).

Figures: seconds (from the start of the feed until Redis holds every ticket and the broker
is idle), tickets_per_s, pg_seconds (until PostgreSQL holds them all). The last line is one
JSON object.

    .venv/bin/python bench/scale_out.py [--n 20000] [--clients 16] [--worker-threads 2]

Kept whole though over 500 lines: a benchmark is read top to bottom as one script, its
set-up, its feed and its checks together.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
from psycopg.conninfo import make_conninfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.benchkit import clean_up_on_signals  # noqa: E402
from bench.web_load import MESSAGES, config_file, free_port  # noqa: E402
from omnidesk.db.migrate import upgrade  # noqa: E402
from omnidesk.db.writer import GROUP  # noqa: E402
from omnidesk.store import Store  # noqa: E402

REDIS_URL = os.environ.get("OMNIDESK_BENCH_REDIS", "redis://127.0.0.1:6379/0")
PG_SERVER = os.environ.get("OMNIDESK_BENCH_PG") or os.environ.get(
    "OMNIDESK_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres"
)
JSON = {"Content-Type": "application/json"}
START_TIMEOUT_S = 60.0
RETRY_AFTER_CAP_S = 2.0  # honour Retry-After, but keep the run moving
STOP_TIMEOUT_S = 20.0  # SIGTERM, then SIGKILL after this long
DRAIN_TIMEOUT = "5"  # the daemons' and workers' own bound on finishing in-flight work


class Failed(Exception):
    """A check that failed: the run goes on to its figures, then exits 1."""


# ---------------------------------------------------------------- processes


@dataclass
class Proc:
    """One `omnidesk` subprocess with a log file of its own."""

    name: str
    argv: list[str]
    log: Path
    env: dict[str, str]
    popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.popen = subprocess.Popen(
                self.argv, cwd=ROOT, env=self.env, stdin=subprocess.DEVNULL,
                stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip

    def exited(self) -> int | None:
        return None if self.popen is None else self.popen.poll()

    def terminate(self) -> None:
        """SIGTERM: a daemon or worker finishes what it holds (within its drain timeout)."""
        if self.popen is not None and self.popen.poll() is None:
            self.popen.terminate()

    def reap(self, deadline: float) -> bool:
        """Wait for the end until `deadline` (monotonic), then SIGKILL; whether it had
        to be killed."""
        if self.popen is None:
            return False
        try:
            self.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
            return False
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(timeout=STOP_TIMEOUT_S)
            return True

    def tail(self, chars: int = 2000) -> str:
        return self.log.read_text("utf-8", "replace")[-chars:] if self.log.exists() else ""


@dataclass
class Daemon:
    proc: Proc
    port: int

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def get(self, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(self.url(path), timeout=10) as answer:
                return answer.status, answer.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def answers(self) -> bool:
        try:
            self.get("/healthz")
            return True
        except OSError:
            return False


# ---------------------------------------------------------------- the rig


class Rig:
    """The run's database, Redis prefix, drop folders, config and processes; `close`
    undoes all of it, whatever happened."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.run_id = uuid.uuid4().hex[:8]
        self.prefix = f"scale-{self.run_id}"
        self.workdir = Path(tempfile.mkdtemp(prefix="omnidesk-scaleout-"))
        self.database = f"od_scale_{self.run_id}"
        self.database_url = make_conninfo(PG_SERVER, dbname=self.database)
        self.store = Store.from_url(REDIS_URL, self.prefix)
        self.drops = [self.workdir / "drop-a", self.workdir / "drop-b"]
        for drop in self.drops:
            for sub in ("tmp", "new", "cur"):
                (drop / sub).mkdir(parents=True)
        self.config = self._write_config(args)
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            # a test run's own database and prefix must not leak into the run's processes
            "OMNIDESK_DATABASE_URL": self.database_url,
            "OMNIDESK_KEY_PREFIX": self.prefix,
        }
        omnidesk = [sys.executable, "-m", "omnidesk"]
        config = ["--config", str(self.config)]
        self.daemons = []
        for name in ("a", "b"):
            port = free_port()
            argv = [*omnidesk, "run", *config, "--workers", "0", "--port", str(port)]
            argv += ["--drain-timeout", DRAIN_TIMEOUT]
            log = self.workdir / f"daemon-{name}.log"
            self.daemons.append(Daemon(Proc(f"daemon-{name}", argv, log, env), port))
        self.workers = [
            Proc(
                f"worker-{n}",
                [*omnidesk, "worker", *config, "--threads", str(args.worker_threads)],
                self.workdir / f"worker-{n}.log",
                env,
            )
            for n in (1, 2)
        ]
        self.created_database = False

    def _write_config(self, args: argparse.Namespace) -> Path:
        out = self.workdir / "queue_config.yaml"
        config_file(
            ROOT / "queue_config.yaml", out, prefix=self.prefix, port=free_port(),
            max_backlog=args.max_backlog,
        )  # fmt: skip
        connectors = "connectors:\n" + "".join(
            f"  - {{name: {drop.name}, kind: maildir, path: {drop}, poll_interval: 0.2, "
            "settle_seconds: 0}\n"
            for drop in self.drops
        )
        with out.open("a", encoding="utf-8") as f:
            f.write(connectors)
        return out

    @property
    def processes(self) -> list[Proc]:
        return [*(d.proc for d in self.daemons), *self.workers]

    def start(self) -> None:
        with psycopg.connect(PG_SERVER, autocommit=True, connect_timeout=5) as admin:
            admin.execute(f'CREATE DATABASE "{self.database}"')
        self.created_database = True
        upgrade(self.database_url)
        for proc in self.processes:
            proc.start()
        for daemon in self.daemons:
            wait_for(daemon.answers, START_TIMEOUT_S, self, f"{daemon.proc.name} to answer")

    def died(self) -> list[str]:
        return [
            f"{p.name} exited with {p.exited()}:\n{p.tail()}"
            for p in self.processes
            if p.exited() is not None
        ]

    def close(self) -> str:
        """Stop the processes (SIGTERM to all, then one deadline), delete the keys, drop
        the database, remove the folders; how long each took."""
        began = time.monotonic()
        deadline = began + STOP_TIMEOUT_S
        killed = []
        for proc in self.processes:  # each its own try: one stuck must not keep the rest
            try:
                proc.terminate()
            except Exception as exc:
                print(f"could not stop {proc.name}: {exc}", file=sys.stderr)
        for proc in self.processes:
            try:
                if proc.reap(deadline):
                    killed.append(proc.name)
            except Exception as exc:
                print(f"could not stop {proc.name}: {exc}", file=sys.stderr)
        stopped = time.monotonic()
        try:
            self.store.delete_all()
        except Exception as exc:
            print(f"could not delete the keys under {self.prefix}: {exc}", file=sys.stderr)
        deleted = time.monotonic()
        if self.created_database:
            try:
                with psycopg.connect(PG_SERVER, autocommit=True, connect_timeout=5) as admin:
                    admin.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
            except psycopg.Error as exc:
                print(f"could not drop {self.database}: {exc}", file=sys.stderr)
        shutil.rmtree(self.workdir, ignore_errors=True)
        return (
            f"processes stopped in {stopped - began:.1f} s (SIGKILLed after "
            f"{STOP_TIMEOUT_S:.0f} s: {killed or 'none'}), keys deleted in "
            f"{deleted - stopped:.1f} s, database and folders gone in "
            f"{time.monotonic() - deleted:.1f} s"
        )

    # ------------------------------------------------------------ what the run left

    def ingest_backlog(self) -> int:
        """Ingest messages queued, in flight or delayed in the broker."""
        pipe = self.store.r.pipeline(transaction=False)
        for queue in ("ingest", "ingest.DQ"):
            pipe.hlen(self.store.key("dramatiq", f"{queue}.msgs"))
        return sum(pipe.execute())

    def files_taken(self) -> int:
        """Files moved to cur/ (handed over); None may be left in new/ or set aside."""
        return sum(sum(1 for _ in (drop / "cur").iterdir()) for drop in self.drops)

    def files_left(self) -> int:
        return sum(sum(1 for _ in (drop / "new").iterdir()) for drop in self.drops)

    def files_rejected(self) -> int:
        """Files the connectors set aside (too large, unreadable): none is expected."""
        folders = [drop / "rejected" for drop in self.drops]
        return sum(sum(1 for _ in folder.iterdir()) for folder in folders if folder.exists())

    def writer_backlog(self) -> int:
        """Events not yet written to PostgreSQL: not delivered to the writers' group, or
        delivered and not acknowledged."""
        r, stream = self.store.r, self.store.key("events")
        for group in r.xinfo_groups(stream):
            if group["name"] == GROUP:
                lag = group.get("lag")
                if lag is None:  # Redis < 7: count what is past the last delivered id
                    last = group["last-delivered-id"]
                    lag = len(r.xrange(stream, min=f"({last}", count=10**7))
                return int(lag) + int(group["pending"])
        return int(r.xlen(stream))

    def pg(self, sql: str) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.database_url, connect_timeout=5) as conn:
            return conn.execute(sql).fetchall()


def wait_for(check: Callable[[], bool], timeout: float, rig: Rig, what: str) -> None:
    """Poll `check` until true; fail at `timeout`, or at once when a process died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if dead := rig.died():
            raise Failed(f"waiting for {what}: " + "\n".join(dead))
        if check():
            return
        time.sleep(0.1)
    raise Failed(f"timed out after {timeout:.0f} s waiting for {what}")


# ---------------------------------------------------------------- the payloads


def marker_pattern(run_id: str) -> re.Pattern[str]:
    return re.compile(rf"SCO{run_id}-[fw]-\d{{6}}")


def payload(run_id: str, kind: str, n: int) -> tuple[str, bytes]:
    """A web form with a unique marker in its subject and message, from a customer of its
    own (so no payload threads onto another's ticket); `submission_id` makes a post sent
    again after a lost answer the same submission."""
    marker = f"SCO{run_id}-{kind}-{n:06d}"
    body = {
        "name": f"Customer {kind}{n}",
        "email": f"{marker.lower()}@example.sa",
        "subject": f"scale-out {marker}",
        "message": f"{MESSAGES[n % len(MESSAGES)]} {marker}",
        "submission_id": marker,
    }
    return marker, json.dumps(body, ensure_ascii=False).encode()


def drop_files(drops: list[Path], files: list[tuple[str, bytes]]) -> None:
    """Half the files into each folder, the maildir way: written in tmp/, renamed into new/."""
    for n, (marker, body) in enumerate(files):
        drop = drops[n % len(drops)]
        tmp = drop / "tmp" / f"{marker}.web.json"
        tmp.write_bytes(body)
        tmp.rename(drop / "new" / tmp.name)


@dataclass
class Answers:
    """What one daemon answered the web-form posts sent to it."""

    created: int = 0  # 201: taken in within the request, the ticket id in the answer
    existing: int = 0  # 200: a submission already taken (a retry of a lost answer)
    queued: int = 0  # 202: handed to the workers
    refused_503: int = 0  # retried after Retry-After
    lost: int = 0  # connection errors and timeouts, retried
    failed: dict[str, int] = field(default_factory=dict)  # anything else: a failed check

    @property
    def taken(self) -> int:
        return self.created + self.existing + self.queued


async def post_all(
    url: str, forms: list[tuple[str, bytes]], clients: int, deadline: float
) -> Answers:
    """Post every form to `url` from `clients` concurrent clients, each form until taken."""
    answers = Answers()
    pending = list(reversed(forms))
    timeout = aiohttp.ClientTimeout(total=30)
    connector = aiohttp.TCPConnector(limit=clients, keepalive_timeout=2)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def client() -> None:
            while pending:
                _, body = pending.pop()
                await post_one(session, url, body, answers, deadline)

        await asyncio.gather(*(client() for _ in range(clients)))
    return answers


async def post_one(
    session: aiohttp.ClientSession, url: str, body: bytes, answers: Answers, deadline: float
) -> None:
    while time.monotonic() < deadline:
        try:
            async with session.post(url, data=body, headers=JSON) as r:
                await r.read()
                status, retry_after = r.status, r.headers.get("Retry-After")
        except (aiohttp.ClientError, TimeoutError):
            answers.lost += 1
            await asyncio.sleep(0.2)
            continue
        if status in (200, 201, 202):
            answers.existing += status == 200
            answers.created += status == 201
            answers.queued += status == 202
            return
        if status == 503 and retry_after:
            answers.refused_503 += 1
            await asyncio.sleep(min(float(retry_after), RETRY_AFTER_CAP_S))
            continue
        answers.failed[str(status)] = answers.failed.get(str(status), 0) + 1
        return
    answers.failed["deadline"] = answers.failed.get("deadline", 0) + 1


async def feed(
    rig: Rig, files: list[tuple[str, bytes]], forms: list[list[tuple[str, bytes]]],
    clients: int, deadline: float,
) -> list[Answers]:  # fmt: skip
    """The files into the drop folders (in a thread) while the forms are posted, each
    daemon its half, from `clients` clients in all."""
    dropping = asyncio.create_task(asyncio.to_thread(drop_files, rig.drops, files))
    posting = [
        post_all(daemon.url("/v1/intake/web"), part, max(1, clients // 2), deadline)
        for daemon, part in zip(rig.daemons, forms, strict=True)
    ]
    *answers, _ = await asyncio.gather(*posting, dropping)
    return answers


# ---------------------------------------------------------------- the checks


def marker_counts(subjects: list[str], pattern: re.Pattern[str]) -> tuple[Counter[str], int]:
    """How many tickets carry each marker, and how many tickets carry none (strays)."""
    counts: Counter[str] = Counter()
    strays = 0
    for subject in subjects:
        found = pattern.findall(subject or "")
        counts.update(found)
        strays += not found
    return counts, strays


def audit(name: str, subjects: list[str], markers: list[str], pattern: re.Pattern[str]) -> dict:
    counts, strays = marker_counts(subjects, pattern)
    expected = set(markers)
    return {
        f"{name}duplicates": sum(c - 1 for c in counts.values() if c > 1),
        f"{name}missing": sum(1 for m in markers if counts[m] == 0),
        f"{name}strays": strays + sum(1 for m in counts if m not in expected),
    }


METRIC_LINE = re.compile(r"^omnidesk_ingest_seconds_count(?:\{[^}]*\})? ([0-9.e+]+)$", re.M)


def daemon_work(daemon: Daemon, answers: Answers) -> dict[str, Any]:
    """What a daemon did, by its own /healthz and /metrics (and its answers to the posts)."""
    status, body = daemon.get("/healthz")
    health = json.loads(body)
    _, metrics = daemon.get("/metrics")
    batches = sum(float(v) for v in METRIC_LINE.findall(metrics.decode()))
    connectors = health.get("connectors", [])
    return {
        "healthz_status": status,
        "drop_files_handed_over": sum(int(c.get("handed_over", 0)) for c in connectors),
        # the leases it held at the end (the others wait in "standby")
        "connectors_running": sorted(c["name"] for c in connectors if c["state"] == "running"),
        "web_batches_taken_in": int(batches),
        "records_written": int((health.get("records") or {}).get("written") or 0),
        "web_answers": asdict(answers),
    }


def run(rig: Rig, args: argparse.Namespace) -> tuple[dict[str, Any], list[str]]:
    """Feed, wait, count; the figures and the failed checks."""
    failures: list[str] = []
    half = args.n // 2
    files = [payload(rig.run_id, "f", n) for n in range(half)]
    web = [payload(rig.run_id, "w", n) for n in range(args.n - half)]
    forms = [web[0::2], web[1::2]]
    markers = [m for m, _ in files] + [m for m, _ in web]
    pattern = marker_pattern(rig.run_id)
    limit = args.timeout or 120.0 + args.n / 20

    started = time.monotonic()
    answers = asyncio.run(feed(rig, files, forms, args.clients, started + limit))
    fed_s = time.monotonic() - started
    print(f"fed {args.n} payloads in {fed_s:.1f} s", flush=True)
    failures += [
        f"daemon-{n} answered {a.failed}" for n, a in zip("ab", answers, strict=True) if a.failed
    ]

    def redis_done() -> bool:
        return (
            rig.files_taken() >= len(files)
            and rig.ingest_backlog() == 0
            and rig.store.ticket_count() >= args.n
        )

    def remaining(at_least: float) -> float:
        """What is left of the run's time limit (at least `at_least`, to see the counts)."""
        return max(at_least, started + limit - time.monotonic())

    seconds = pg_seconds = None
    try:
        wait_for(redis_done, remaining(10.0), rig, "every ticket in Redis")
        seconds = time.monotonic() - started
        print(f"{rig.store.ticket_count()} tickets in Redis after {seconds:.1f} s", flush=True)

        def pg_done() -> bool:
            return (
                rig.writer_backlog() == 0
                and rig.pg("SELECT count(*) FROM messages")[0][0] >= args.n
            )

        wait_for(pg_done, remaining(60.0), rig, "every record in PostgreSQL")
        pg_seconds = time.monotonic() - started
    except Failed as exc:
        failures.append(str(exc))

    counting = time.monotonic()
    subjects = [t.subject for t in rig.store.list_tickets(limit=10**7)]
    pg_subjects = [s for (s,) in rig.pg("SELECT subject FROM tickets")]
    figures: dict[str, Any] = {
        "payloads": args.n,
        "tickets": rig.store.ticket_count(),
        "pg_tickets": len(pg_subjects),
        "pg_messages": rig.pg("SELECT count(*) FROM messages")[0][0],
        **audit("", subjects, markers, pattern),
        **audit("pg_", pg_subjects, markers, pattern),
        "quarantined": int(rig.store.counts()["quarantine"]),
        "files_left": rig.files_left(),
        "rejected_files": rig.files_rejected(),
        "daemon_a_work": daemon_work(rig.daemons[0], answers[0]),
        "daemon_b_work": daemon_work(rig.daemons[1], answers[1]),
        "seconds": round(seconds, 1) if seconds else None,
        "tickets_per_s": round(args.n / seconds, 1) if seconds else None,
        "pg_seconds": round(pg_seconds, 1) if pg_seconds else None,
        "fed_seconds": round(fed_s, 1),
        "clients": args.clients,
        "worker_threads": args.worker_threads,
    }
    print(f"counted and audited in {time.monotonic() - counting:.1f} s", flush=True)
    failures += check(figures)
    return figures, failures


def check(figures: dict[str, Any]) -> list[str]:
    n = figures["payloads"]
    failed = [
        f"{key} is {figures[key]}, not {want}"
        for key, want in (
            ("tickets", n), ("pg_tickets", n), ("pg_messages", n),
            ("duplicates", 0), ("missing", 0), ("strays", 0),
            ("pg_duplicates", 0), ("pg_missing", 0), ("pg_strays", 0),
            ("quarantined", 0), ("files_left", 0), ("rejected_files", 0),
        )
        if figures[key] != want
    ]  # fmt: skip
    for name in ("daemon_a_work", "daemon_b_work"):
        work = figures[name]
        if work["drop_files_handed_over"] + work["web_batches_taken_in"] == 0:
            failed.append(f"{name}: the daemon's /healthz and /metrics show no work")
    return failed


# ---------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=20_000, help="payloads, half files, half posts")
    parser.add_argument("--clients", type=int, default=16, help="web-form clients in all")
    parser.add_argument("--worker-threads", type=int, default=2, help="per worker process")
    parser.add_argument("--max-backlog", type=int, default=2000, help="intake_max_backlog")
    parser.add_argument("--timeout", type=float, default=0.0, help="default: 120 s + n/20 s")
    args = parser.parse_args(argv)
    if args.n < 2:
        parser.error("--n: at least 2 (one file, one post)")
    clean_up_on_signals()

    print(f"load average before: {os.getloadavg()}", flush=True)
    rig = Rig(args)
    try:
        try:
            rig.start()
        except Failed as exc:
            print(f"FAILED to start: {exc}", file=sys.stderr)
            return 1
        print(
            f"2 daemons (ports {[d.port for d in rig.daemons]}), 2 workers x "
            f"{args.worker_threads} threads; prefix {rig.prefix}, database {rig.database}",
            flush=True,
        )
        figures, failures = run(rig, args)
        if failures:
            for proc in rig.processes:
                print(f"--- {proc.name} log tail\n{proc.tail(1500)}", file=sys.stderr)
    finally:
        print(rig.close(), flush=True)
    figures["loadavg"] = [round(x, 2) for x in os.getloadavg()]
    figures["ok"] = not failures
    figures["failed"] = failures
    for line in failures:
        print(f"FAILED: {line}", file=sys.stderr)
    a, b = figures["daemon_a_work"], figures["daemon_b_work"]
    print(
        f"{figures['tickets']} tickets in Redis, {figures['pg_tickets']} in PostgreSQL "
        f"({figures['pg_messages']} messages), {figures['duplicates']} duplicates, "
        f"{figures['quarantined']} quarantined; {figures['tickets_per_s']} tickets/s "
        f"({figures['seconds']} s, PostgreSQL at {figures['pg_seconds']} s)\n"
        f"daemon a: {a['drop_files_handed_over']} files handed over {a['connectors_running']}, "
        f"{a['web_batches_taken_in']} web batches; daemon b: {b['drop_files_handed_over']} "
        f"files {b['connectors_running']}, {b['web_batches_taken_in']} web batches; "
        f"load average {figures['loadavg']} (a shared machine: figures are noisy)"
    )
    print(json.dumps(figures))
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
