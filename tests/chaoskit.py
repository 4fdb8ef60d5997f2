"""The chaos harness, shared by tests/test_chaos.py (short, in the suite) and bench/chaos.py
(10,000 payloads, 10 faults): the real daemon (`omnidesk run`), two `omnidesk worker`
processes and a Redis of their own with an AOF fsynced on every write, fed through the drop
folder, IMAP (a real Dovecot) and the web form while Redis, the workers and the daemon are
SIGKILLed and restarted on a fixed schedule. At the end every payload a source took must be
in the store exactly once; the report says where any other one is, and how long each fault
took to recover from.

    with running_dovecot(binary) as dovecot:
        report = run_chaos(ChaosPlan(payloads=300), dovecot, workdir)
    print(report.account()); assert report.lost == [] and report.duplicated == {}
"""

from __future__ import annotations

import os
import re
import signal
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import redis

from tests.chaosaudit import (
    StoreWatcher,
    broker_places,
    client_for,
    count_markers,
    live_brokers,
    markers_in,
    quarantine_markers,
)
from tests.chaosfeed import (
    DropFeeder,
    Feeder,
    ImapFeeder,
    Submission,
    WebFeeder,
    plan_submissions,
)
from tests.chaosprocs import (
    ROOT,
    Managed,
    daemon,
    http_answers,
    redis_ready,
    redis_server,
    worker,
)
from tests.services import Dovecot, free_port, wait_for

STORE_CONFIG = ROOT / "tests" / "fixtures" / "config" / "store.yaml"
PASSWORD_ENV = "OMNIDESK_CHAOS_IMAP_PASSWORD"
# The "Done when". The daemon goes last in a cycle: the drop folder's lease (30 s)
# outlives the killed daemon, and until it expires no burst reaches the workers to arm on.
TEST_FAULTS = ("redis", "worker", "redis", "worker", "daemon")
FAULT_CYCLE = TEST_FAULTS
START_TIMEOUT_S = 60.0
Say = Callable[[str], None]


def fault_cycle(count: int) -> tuple[str, ...]:
    """`count` faults taking turns: Redis, a worker, Redis, the other worker, the daemon."""
    return tuple(FAULT_CYCLE[n % len(FAULT_CYCLE)] for n in range(count))


@dataclass(frozen=True)
class ChaosPlan:
    """What one run does. Keep faults further apart than dramatiq's 5 s wait before it
    retries an ack (POST_PROCESS_MESSAGE_RETRY_DELAY_SECS): otherwise a worker kill can
    rescue a batch that the Redis kill before it was about to ack unapplied."""

    payloads: int = 540  # in all: the steady feed and the bursts
    rate: float = 6.0  # the steady feed, payloads per second over all sources
    faults: tuple[str, ...] = TEST_FAULTS  # spread evenly over the feed, the first at 3 s
    first_fault_s: float = 3.0
    burst: int = 60  # drop-folder files written at once at each fault, to have work in flight
    arm_timeout_s: float = 5.0  # bound on waiting for that work to be in workers' hands
    redis_down_s: float = 1.5  # how long Redis stays dead before its restart
    drain_s: float = 120.0  # after the last payload is due: bound on the wait for the rest
    web_clients: int = 2
    worker_threads: int = 2
    daemon_workers: int = 0  # ingest only in the worker processes, so killing them bites
    service_extra: str = ""  # YAML lines added under `service:` (e.g. heartbeat settings)

    @property
    def steady(self) -> int:
        steady = self.payloads - self.burst * len(self.faults)
        if steady < 0:
            raise ValueError(f"{self.payloads} payloads cannot hold {len(self.faults)} bursts")
        return steady

    @property
    def feed_s(self) -> float:
        return self.steady / self.rate

    def fault_times(self) -> list[float]:
        """Seconds after the feed starts, evenly spaced from `first_fault_s` to the end."""
        if not self.faults:
            return []
        span = max(0.0, self.feed_s - self.first_fault_s) / len(self.faults)
        return [self.first_fault_s + n * span for n in range(len(self.faults))]


@dataclass
class FaultRecord:
    kind: str  # redis, worker, daemon
    target: str  # the process killed
    at: float  # monotonic time of the SIGKILL
    back: float  # monotonic time the replacement was up
    outstanding: set[str]  # taken by a source, not yet stored, at the kill
    in_flight: int = 0  # ingest messages held by the killed worker (Redis: by all) at the kill
    armed: bool = True  # False: the kill came at the arming bound, with nothing in flight
    resumed_s: float | None = None  # from `back` to the next payload stored
    recovered_s: float | None = None  # from `back` until every outstanding one was stored
    stored_by_s: float | None = None  # from `back` until the last outstanding one stored at all
    missing: int = 0  # outstanding ones never stored


@dataclass
class ChaosReport:
    plan: ChaosPlan
    subs: list[Submission]
    counts: Counter[str]
    faults: list[FaultRecord]
    started: float
    elapsed_s: float
    places: dict[str, str] = field(default_factory=dict)  # missing marker -> where it is
    unexpected_exits: list[str] = field(default_factory=list)
    feeder_errors: list[str] = field(default_factory=list)

    @property
    def accepted(self) -> list[Submission]:
        return [s for s in self.subs if s.accepted_at is not None]

    @property
    def lost(self) -> list[Submission]:
        """Taken by a source (file renamed into new/, APPEND OK, 2xx) and not in the store
        when the bounded wait ended: gone, or stuck where `places` says (a dead worker's
        ack set, the dead-letter queue): either way not back in service."""
        return [s for s in self.accepted if self.counts[s.marker] == 0]

    @property
    def duplicated(self) -> dict[str, int]:
        return {m: n for m, n in self.counts.items() if n > 1}

    @property
    def not_accepted(self) -> list[Submission]:
        """Never taken by its source within the run: still the client's to send."""
        return [s for s in self.subs if s.accepted_at is None]

    @property
    def max_recovery_s(self) -> float | None:
        """The slowest fault's recovery; None when some fault's backlog never came back."""
        times = [f.recovered_s for f in self.faults]
        if any(t is None for t in times):
            return None
        return round(max((t for t in times if t is not None), default=0.0), 1)

    def figures(self) -> dict[str, object]:
        """The bench's JSON line: the issue's keys first, then the breakdown."""
        return {
            "payloads": len(self.subs),
            "lost": len(self.lost),
            "duplicated": len(self.duplicated),
            "faults": len(self.faults),
            "max_recovery_s": self.max_recovery_s,
            "unrecovered_faults": sum(1 for f in self.faults if f.recovered_s is None),
            "max_recovery_of_stored_s": max((f.stored_by_s or 0.0 for f in self.faults), default=0),
            "not_accepted": len(self.not_accepted),
            "lost_by_place": dict(
                Counter(_place_kind(self.places.get(s.marker, "")) for s in self.lost)
            ),
            "unexpected_exits": len(self.unexpected_exits),
            "elapsed_s": round(self.elapsed_s, 1),
        }

    def account(self) -> str:
        """What happened, in lines a person reads: the faults, then every payload not
        stored exactly once and where it is."""
        by_source = Counter(s.source for s in self.subs)
        lines = [
            f"chaos: {len(self.subs)} payloads ({_counts(by_source)}), {len(self.faults)} "
            f"faults, {self.elapsed_s:.1f} s; {len(self.accepted)} taken by their source",
        ]
        for fault in self.faults:
            lines.append("  " + self._fault_line(fault))
        once = sum(1 for s in self.subs if self.counts[s.marker] == 1)
        lines.append(
            f"store: {once} exactly once, {len(self.lost)} lost, {len(self.duplicated)} "
            f"duplicated, {len(self.not_accepted)} never taken by their source"
        )
        lines += self._lost_lines()
        for marker, n in sorted(self.duplicated.items())[:20]:
            lines.append(f"  duplicated: {marker} stored {n} times")
        for sub in self.not_accepted[:10]:
            lines.append(
                f"  not taken: {sub.marker} ({sub.source}) after {sub.attempts} tries "
                f"{sub.refused}".rstrip()
            )
        lines += [f"  unexpected exit: {text}" for text in self.unexpected_exits]
        lines += [f"  feeder error: {text}" for text in self.feeder_errors]
        return "\n".join(lines)

    def _fault_line(self, fault: FaultRecord) -> str:
        rel = fault.at - self.started
        down = fault.back - fault.at
        text = f"+{rel:5.1f}s {fault.target:<8} killed, back after {down:4.1f} s; "
        text += f"{len(fault.outstanding)} outstanding"
        if fault.kind != "daemon":
            whose = "its" if fault.kind == "worker" else "workers'"
            text += f", {fault.in_flight} batches in {whose} hands"
            text += "" if fault.armed else " (none came: killed unarmed)"
        resumed = "never" if fault.resumed_s is None else f"{fault.resumed_s:.1f} s"
        text += f"; processing resumed after {resumed}; "
        if fault.recovered_s is None:
            return text + (
                f"backlog NOT back in service: {fault.missing} never stored, the rest "
                f"by {fault.stored_by_s} s"
            )
        return text + f"backlog in service after {fault.recovered_s:.1f} s"

    def _lost_lines(self) -> list[str]:
        lines: list[str] = []
        groups: dict[str, list[Submission]] = {}
        for sub in self.lost:
            groups.setdefault(_place_kind(self.places.get(sub.marker, "")), []).append(sub)
        for kind, subs in sorted(groups.items(), key=lambda kv: -len(kv[1])):
            lines.append(
                f"  lost, {kind}: {len(subs)} ({_counts(Counter(s.source for s in subs))})"
            )
            for sub in subs[:5]:
                assert sub.accepted_at is not None
                lines.append(
                    f"    {sub.marker} taken at +{sub.accepted_at - self.started:.1f}s: "
                    f"{self.places.get(sub.marker, '?')}"
                )
        return lines


def _place_kind(place: str) -> str:
    """A place without its ids, to group lost payloads by the path that dropped them."""
    return re.sub(r"\s(?:[0-9a-f]{8}\b|as Q-[0-9a-f]+|\(no heartbeat for \d+ s\))", "", place)


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{n} {name}" for name, n in sorted(counter.items()))


class Cluster:
    """The system under test: Redis, the daemon and the workers, with their config."""

    def __init__(self, workdir: Path, dovecot: Dovecot, plan: ChaosPlan, run_id: str) -> None:
        self.workdir = workdir
        self.plan = plan
        self.prefix = f"chaos{run_id}"
        self.redis_port = free_port()
        self.redis_url = f"redis://127.0.0.1:{self.redis_port}/0"
        self.http_port = free_port()
        self.drop = workdir / "drop"
        for sub in ("tmp", "new", "cur"):
            (self.drop / sub).mkdir(parents=True, exist_ok=True)
        self.dovecot = dovecot
        self.imap_user = dovecot.new_user()
        self.config = workdir / "queue_config.yaml"
        self.config.write_text(self._config_text(), "utf-8")
        env = {"PYTHONPATH": str(ROOT), PASSWORD_ENV: "secret"}
        self.redis = redis_server(self.redis_port, workdir / "redis")
        self.daemon = daemon(self.config, workdir / "daemon.log", env, plan.daemon_workers)
        self.workers = [
            worker(f"worker-{n}", self.config, workdir / f"worker-{n}.log", env,
                   plan.worker_threads)
            for n in range(2)
        ]  # fmt: skip
        self._worker_turn = 0
        self.unexpected_exits: list[str] = []

    @property
    def processes(self) -> list[Managed]:
        return [self.redis, self.daemon, *self.workers]

    def _config_text(self) -> str:
        service = (
            f"service:\n  redis_url: {self.redis_url}\n  key_prefix: {self.prefix}\n"
            f"  state_dir: {self.workdir / 'state'}\n  http_port: {self.http_port}\n"
            # every post comes from 127.0.0.1, many from one address: no abuse limits here
            "  web_form: {posts_per_ip: 1000000000, posts_per_identity: 1000000000}\n"
        )
        for line in self.plan.service_extra.splitlines():
            service += f"  {line.strip()}\n" if line.strip() else ""
        imap = (
            f"{{name: mail, kind: imap, host: {self.dovecot.host}, port: {self.dovecot.port}, "
            f"security: none, username: {self.imap_user}, password_env: {PASSWORD_ENV}, "
            "mode: poll, poll_interval: 0.5, lease_ttl: 5, "
            "timeouts: {idle: 5, connect: 3, command: 10}}"
        )
        connectors = (
            "connectors:\n"
            f"  - {{name: drop, kind: maildir, path: {self.drop}, poll_interval: 0.2, "
            "batch_size: 2}\n"
            f"  - {imap}\n"
        )
        return service + STORE_CONFIG.read_text("utf-8") + connectors

    @property
    def web_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}/v1/intake/web"

    def start(self, after_redis: Callable[[], None] = lambda: None) -> None:
        self._start_redis()
        after_redis()  # e.g. a watcher's consumer group, in place before any event
        self._start_daemon()
        for proc in self.workers:
            proc.start()

    def close(self) -> None:
        for proc in self.processes:
            try:
                proc.kill()
            except Exception:  # one that will not die must not keep the others alive
                continue

    def _start_redis(self) -> None:
        self.redis.start()
        if not wait_for(lambda: redis_ready(self.redis_url), START_TIMEOUT_S):
            raise RuntimeError(f"redis-server did not come up:\n{self.redis.tail()}")

    def _start_daemon(self) -> None:
        self.daemon.start()
        healthz = f"http://127.0.0.1:{self.http_port}/healthz"
        if not wait_for(lambda: http_answers(healthz), START_TIMEOUT_S, every=0.2):
            raise RuntimeError(f"omnidesk run did not answer /healthz:\n{self.daemon.tail()}")

    def _target_ids(self, target: Managed) -> set[str]:
        """The broker ids that are `target`'s now: those whose heartbeat still moves while
        the other workers are paused (SIGSTOP) for a moment. Asked at each fault, not learnt
        once: a broker may take a new id after a connection error."""
        others = [w for w in self.workers if w is not target and w.exit_code() is None]
        beats = f"{self.prefix}:dramatiq:__heartbeats__"
        client = client_for(self.redis_url)
        try:
            before = dict(client.zrange(beats, 0, -1, withscores=True))
            for proc in others:
                os.kill(proc.pid, signal.SIGSTOP)
            try:
                time.sleep(0.4)  # an idle worker beats ten times a second per queue
                after = dict(client.zrange(beats, 0, -1, withscores=True))
            finally:
                for proc in others:
                    os.kill(proc.pid, signal.SIGCONT)
        except redis.RedisError:
            return set()
        finally:
            client.close()
        return {bid for bid, beat in after.items() if beat > before.get(bid, 0)}

    def supervise(self, started: float) -> None:
        """Restart any process that died without being killed (as systemd would), and
        note it: a crash is a finding, not something to hide."""
        for proc in self.processes:
            code = proc.exit_code()
            if code is None:
                continue
            last = " | ".join(proc.tail(600).strip().splitlines()[-3:])
            self.unexpected_exits.append(
                f"{proc.name} exited with {code} at +{time.monotonic() - started:.1f}s: {last}"
            )
            if proc is self.redis:
                self._start_redis()
            elif proc is self.daemon:
                self._start_daemon()
            else:
                proc.start()

    def inject(self, kind: str, outstanding: Callable[[], set[str]]) -> FaultRecord:
        """SIGKILL one process once work is in flight, and bring up its replacement;
        returns when it is up. Redis dies while a batch is in a worker's hands, a worker
        while both hold batches, the daemon while files wait in the drop folder."""
        if kind == "redis":
            target = self.redis
        elif kind == "daemon":
            target = self.daemon
        elif kind == "worker":
            target = self.workers[self._worker_turn % len(self.workers)]
            self._worker_turn += 1
        else:
            raise ValueError(f"unknown fault {kind!r}: redis, worker or daemon")
        armed, in_flight = self._arm(kind, target)
        waiting = outstanding()
        at = time.monotonic()
        target.kill()
        if target is self.redis:
            time.sleep(self.plan.redis_down_s)
            self._start_redis()
        elif target is self.daemon:
            self._start_daemon()
        else:
            target.start()
        return FaultRecord(kind, target.name, at, time.monotonic(), waiting, in_flight, armed=armed)

    def _arm(self, kind: str, target: Managed) -> tuple[bool, int]:
        """Wait, bounded, for the moment the fault is meant to hit; (armed, batches held).
        Redis, or a worker, is killed while a worker holds more batches than it has threads:
        at least one of them is not even started, so it is unapplied for sure (and, with
        Redis gone, will be tried and fail during the outage)."""
        deadline = time.monotonic() + self.plan.arm_timeout_s
        mine = self._target_ids(target) if kind == "worker" else set()
        client = client_for(self.redis_url)
        try:
            while time.monotonic() < deadline:
                if kind == "daemon":
                    if any((self.drop / "new").iterdir()):
                        return True, 0
                    time.sleep(0.01)
                    continue
                try:
                    live = live_brokers(client, self.prefix)
                except redis.RedisError:
                    live = {}
                loaded = {w: n for w, n in live.items() if n > self.plan.worker_threads}
                if kind == "redis" and loaded:
                    return True, sum(live.values())
                if kind == "worker" and mine & loaded.keys():
                    return True, sum(loaded[bid] for bid in mine & loaded.keys())
                time.sleep(0.01)
            return False, 0
        finally:
            client.close()

    def source_place(self, sub: Submission, seen_in_imap: dict[str, bool]) -> str:
        """Where the source has the payload: still waiting, or marked as taken."""
        if sub.source == "drop":
            name = f"{sub.marker}.eml"
            for folder, meaning in (("new", "still in new/"), ("cur", "moved to cur/")):
                if (self.drop / folder / name).exists():
                    return f"drop folder: {meaning}"
            return "drop folder: file gone"
        if sub.source == "imap":
            if sub.marker not in seen_in_imap:
                return "imap: not in the mailbox"
            return "imap: marked \\Seen" if seen_in_imap[sub.marker] else "imap: still unseen"
        return "web: answered 2xx"

    def imap_flags(self) -> dict[str, bool]:
        """Marker -> whether the connector marked the mail \\Seen."""
        conn = self.dovecot.client(self.imap_user)
        try:
            conn.select("INBOX", readonly=True)
            typ, data = conn.fetch("1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        finally:
            conn.logout()
        flags: dict[str, bool] = {}
        for item in data if typ == "OK" else []:
            if isinstance(item, tuple):
                for marker in markers_in(item[1]):
                    flags[marker] = b"\\Seen" in item[0]
        return flags


def run_chaos(plan: ChaosPlan, dovecot: Dovecot, workdir: Path, say: Say = print) -> ChaosReport:
    """One chaos run from start-up to the final count; every process is killed on return."""
    run_id = uuid.uuid4().hex[:6]
    cluster = Cluster(workdir, dovecot, plan, run_id)
    watcher = StoreWatcher(cluster.redis_url, cluster.prefix)
    feeders: list[Feeder] = []
    try:
        cluster.start(after_redis=watcher.attach)
        watcher.start()
        subs = plan_submissions(run_id, plan.steady, plan.rate, plan.fault_times(), plan.burst)
        started = time.monotonic() + 0.5
        deadline = started + plan.feed_s + plan.drain_s
        feeders = _feeders(cluster, subs, plan.web_clients, started, deadline)
        for feeder in feeders:
            feeder.start()
        say(f"chaos {run_id}: {plan.payloads} payloads at {plan.rate}/s, faults {plan.faults}")
        faults = []
        for kind, offset in zip(plan.faults, plan.fault_times(), strict=True):
            _supervise_until(cluster, started, started + offset)
            fault = cluster.inject(kind, lambda: _outstanding(subs, watcher.seen()))
            faults.append(fault)
            say(
                f"  +{fault.at - started:.1f}s killed {fault.target}; back after "
                f"{fault.back - fault.at:.1f} s; {len(fault.outstanding)} outstanding"
            )
        _drain(cluster, watcher, feeders, subs, started, deadline, say)
        counts, places = _final_count(cluster, subs)
        report = ChaosReport(
            plan=plan,
            subs=subs,
            counts=counts,
            faults=faults,
            started=started,
            elapsed_s=time.monotonic() - started,
            places=places,
            unexpected_exits=list(cluster.unexpected_exits),
            feeder_errors=[f"{f.name}: {f.error!r}" for f in feeders if f.error is not None],
        )
        _score_recovery(report.faults, watcher.seen())
        return report
    finally:
        for feeder in feeders:
            feeder.halt.set()
        watcher.stop()
        cluster.close()


def _feeders(
    cluster: Cluster, subs: list[Submission], web_clients: int, start: float, deadline: float
) -> list[Feeder]:
    drop = [s for s in subs if s.source == "drop"]
    imap = [s for s in subs if s.source == "imap"]
    web = [s for s in subs if s.source == "web"]
    dovecot = cluster.dovecot
    feeders: list[Feeder] = [
        DropFeeder(cluster.drop, drop, start, deadline),
        ImapFeeder(dovecot.host, dovecot.port, cluster.imap_user, imap, start, deadline),
    ]
    for n in range(web_clients):
        feeders.append(WebFeeder(cluster.web_url, f"web-{n}", web[n::web_clients], start,
                                 deadline))  # fmt: skip
    return feeders


def _supervise_until(cluster: Cluster, started: float, until: float) -> None:
    while time.monotonic() < until:
        cluster.supervise(started)
        time.sleep(min(0.2, max(0.0, until - time.monotonic())))


def _outstanding(subs: list[Submission], seen: dict[str, float]) -> set[str]:
    return {s.marker for s in subs if s.accepted_at is not None and s.marker not in seen}


def _drain(
    cluster: Cluster,
    watcher: StoreWatcher,
    feeders: list[Feeder],
    subs: list[Submission],
    started: float,
    deadline: float,
    say: Say,
) -> None:
    """Wait, bounded, until every feeder is done and every taken payload is stored; then a
    little longer, so a late redelivery has its chance to show as a duplicate."""
    last_note = time.monotonic()
    while time.monotonic() < deadline:
        cluster.supervise(started)
        feeding = any(f.is_alive() for f in feeders)
        waiting = _outstanding(subs, watcher.seen())
        if not feeding and not waiting:
            break
        if time.monotonic() - last_note >= 10:
            say(f"  +{time.monotonic() - started:.0f}s waiting for {len(waiting)} payloads"
                + (" (still feeding)" if feeding else ""))  # fmt: skip
            last_note = time.monotonic()
        time.sleep(0.25)
    for feeder in feeders:
        feeder.halt.set()
        feeder.join(timeout=15)
    time.sleep(2.0)


def _final_count(cluster: Cluster, subs: list[Submission]) -> tuple[Counter[str], dict[str, str]]:
    """The authoritative count, and for each payload not in the store, where it is."""
    client = client_for(cluster.redis_url)
    try:
        counts = count_markers(client, cluster.prefix)
        missing = [s for s in subs if counts[s.marker] == 0]
        places: dict[str, str] = {}
        if missing:
            held = {**broker_places(client, cluster.prefix),
                    **quarantine_markers(client, cluster.prefix)}  # fmt: skip
            flags = cluster.imap_flags() if any(s.source == "imap" for s in missing) else {}
            for sub in missing:
                at_source = cluster.source_place(sub, flags)
                inside = held.get(sub.marker, "nowhere in the broker or the quarantine")
                places[sub.marker] = f"{inside} ({at_source})"
        return counts, places
    finally:
        client.close()


def _score_recovery(faults: list[FaultRecord], seen: dict[str, float]) -> None:
    """Per fault: from the replacement being up, how long until the next payload was stored,
    and until every payload outstanding at the kill was stored."""
    times = sorted(seen.values())
    for fault in faults:
        after = [t for t in times if t >= fault.back]
        fault.resumed_s = round(after[0] - fault.back, 1) if after else None
        stored = [seen[m] for m in fault.outstanding if m in seen]
        fault.missing = len(fault.outstanding) - len(stored)
        last = max(stored, default=fault.back + (fault.resumed_s or 0.0))
        fault.stored_by_s = round(max(0.0, last - fault.back), 1)
        if fault.missing == 0:
            fault.recovered_s = fault.stored_by_s
