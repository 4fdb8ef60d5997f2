"""`omnidesk run` as an operator runs it: a real process on the real Redis, fed through a
drop folder and the web intake, stopped with signals."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from omnidesk.store import Store
from tests.services import free_port, wait_for
from tests.storekit import CONFIG, REDIS_URL

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class DaemonProc:
    config: Path
    drop: Path
    port: int
    prefix: str
    log: Path
    redis_url: str
    proc: subprocess.Popen[bytes] | None = None
    args: list[str] = field(default_factory=list)  # more `omnidesk run` options

    def start(self) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "omnidesk",
                "--log-level",
                "INFO",
                "run",
                "--config",
                str(self.config),
                "--workers",
                "2",
                "--drain-timeout",
                "15",
                *self.args,
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=self.log.open("ab"),
        )
        assert wait_for(lambda: self.get("/healthz")[0] in (200, 503), timeout=30), self.logs()

    def get(self, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def post(self, path: str, body: bytes) -> tuple[int, dict[str, object]]:
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}",
            data=body,
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=5) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def stop(self, timeout: float = 30) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=timeout)
        self.proc = None
        return code

    def drop_web(self, name: str, message: str, **fields: str) -> None:
        body = json.dumps(
            {"message": message, "email": f"{name}@example.sa", **fields}, ensure_ascii=False
        )
        tmp = self.drop / "new" / f".{name}.tmp"
        tmp.write_text(body, "utf-8")
        tmp.rename(self.drop / "new" / f"{name}.web.json")

    def store(self) -> Store:
        return Store.from_url(self.redis_url, self.prefix)

    def logs(self) -> str:
        return self.log.read_text("utf-8", "replace")[-3000:]


def daemon_yaml(
    body: str,
    *,
    prefix: str,
    state: Path,
    port: int,
    drop: Path | None,
    redis_url: str = REDIS_URL,
    service_extra: str = "",
) -> str:
    """A daemon's config: its own `service:` (prefix, state, port; `service_extra` lines
    after), `body` (queues, rules, agents...), and a drop folder connector when `drop`."""
    service = (
        f"service:\n  redis_url: {redis_url}\n  key_prefix: {prefix}\n"
        f"  state_dir: {state}\n  http_port: {port}\n{service_extra}"
    )
    connectors = (
        f"connectors:\n  - {{name: drop, kind: maildir, path: {drop}, poll_interval: 0.1}}\n"
        if drop is not None
        else ""
    )
    return service + body + connectors


def write_daemon_config(
    path: Path,
    *,
    prefix: str,
    state: Path,
    drop: Path,
    port: int,
    redis_url: str = REDIS_URL,
    extra_rules: str = "",
) -> None:
    text = CONFIG.read_text("utf-8")
    if extra_rules:
        text = text.replace("rules:\n", "rules:\n" + extra_rules, 1)
    yaml = daemon_yaml(text, prefix=prefix, state=state, port=port, drop=drop, redis_url=redis_url)
    path.write_text(yaml, "utf-8")


@contextmanager
def started_daemon(
    tmp_path: Path, prefix: str, body: str, *, service_extra: str = "", drop_folder: bool = True
) -> Iterator[DaemonProc]:
    """`omnidesk run` on `body` (see daemon_yaml) in tmp_path, up and answering; killed after."""
    drop = tmp_path / "drop"
    (drop / "new").mkdir(parents=True)
    port = free_port()
    config = tmp_path / "queue_config.yaml"
    yaml = daemon_yaml(body, prefix=prefix, state=tmp_path / "state", port=port,
                       drop=drop if drop_folder else None, service_extra=service_extra)  # fmt: skip
    config.write_text(yaml, "utf-8")
    proc = DaemonProc(config=config, drop=drop, port=port, prefix=prefix,
                      log=tmp_path / "daemon.log", redis_url=REDIS_URL)  # fmt: skip
    proc.start()
    try:
        yield proc
    finally:
        if proc.proc is not None:
            proc.proc.kill()
            proc.proc.wait()


@pytest.fixture
def daemon(prefix: str, tmp_path: Path) -> Iterator[DaemonProc]:
    drop = tmp_path / "drop"
    (drop / "new").mkdir(parents=True)
    port = free_port()
    config = tmp_path / "queue_config.yaml"
    write_daemon_config(config, prefix=prefix, state=tmp_path / "state", drop=drop, port=port)
    proc = DaemonProc(
        config=config,
        drop=drop,
        port=port,
        prefix=prefix,
        log=tmp_path / "daemon.log",
        redis_url=REDIS_URL,
    )
    yield proc
    if proc.proc is not None:
        proc.proc.kill()
        proc.proc.wait()


def test_run_ingests_serves_health_and_metrics_and_stops_on_sigterm(daemon: DaemonProc) -> None:
    daemon.start()
    for i in range(5):
        daemon.drop_web(f"c{i}", f"استفسار عن السجل التجاري رقم {i}")
    store = daemon.store()
    assert wait_for(lambda: store.ticket_count() == 5), daemon.logs()
    assert wait_for(lambda: not list((daemon.drop / "new").iterdir()))
    assert len(list((daemon.drop / "cur").iterdir())) == 5

    status, body = daemon.get("/healthz")
    health = json.loads(body)
    assert status == 200 and health["ok"] and health["redis"]
    (drop_status,) = health["connectors"]
    assert drop_status["name"] == "drop" and drop_status["handed_over"] == 5
    assert drop_status["last_fetch"] is not None
    assert health["queues"]["ingest"]["queued"] == 0  # broker figures per queue

    # SLA clocks start right after intake, in the same worker, and the batch's message is
    # acked only after its receipts and guide answers: wait for both
    settled = (
        b'omnidesk_sla_clocks{queue="cr",state="running"} 5.0',
        b'omnidesk_broker_messages{queue="ingest",state="in_flight"} 0.0',
    )
    assert wait_for(lambda: all(line in daemon.get("/metrics")[1] for line in settled))
    status, body = daemon.get("/metrics")
    text = body.decode()
    assert status == 200
    assert 'omnidesk_queue_tickets{queue="cr"} 5.0' in text
    assert 'omnidesk_messages_in_total{channel="web"} 5.0' in text
    assert 'omnidesk_connector_handed_over{connector="drop",kind="maildir"} 5.0' in text
    assert "omnidesk_ingest_seconds_count" in text
    assert 'omnidesk_sla_clocks{queue="cr",state="running"} 5.0' in text
    assert 'omnidesk_sla_clocks{queue="cr",state="paused"} 0.0' in text
    assert 'omnidesk_broker_messages{queue="ingest",state="in_flight"} 0.0' in text

    ok_status, ok = daemon.post(
        "/v1/intake/web",
        json.dumps(
            {"message": "I have a complaint about a shop", "email": "web@example.sa"}
        ).encode(),
    )
    assert ok_status == 201 and str(ok["ticket"]).startswith("OD-")
    bad_status, bad = daemon.post("/v1/intake/web", b'{"message": 5, "colour": "red"}')
    assert bad_status == 400 and "colour" in str(bad["error"])
    assert store.ticket_count() == 6  # taken in within the request
    # the submitter was told: a refused form is counted, not stored
    assert daemon.store().counts()["quarantine"] == 0
    assert 'omnidesk_web_rejected_total{reason="' in daemon.get("/metrics")[1].decode()

    started = time.monotonic()
    assert daemon.stop() == 0
    assert time.monotonic() - started < 20


def test_sigterm_with_work_in_flight_loses_nothing(daemon: DaemonProc) -> None:
    daemon.start()
    for i in range(150):
        daemon.drop_web(f"m{i:03d}", f"complaint number {i}")
    store = daemon.store()
    assert wait_for(lambda: store.ticket_count() > 0, every=0.02)
    assert daemon.stop() == 0  # in the middle of the burst
    handed = len(list((daemon.drop / "cur").iterdir()))
    assert handed + len(list((daemon.drop / "new").iterdir())) == 150
    daemon.start()  # picks up the rest and any queued batches
    assert wait_for(lambda: store.ticket_count() == 150, timeout=60), daemon.logs()
    assert daemon.stop() == 0
    assert store.ticket_count() == 150  # each payload exactly once


def test_sighup_reload_changes_routing_and_a_bad_config_changes_nothing(
    daemon: DaemonProc, prefix: str, tmp_path: Path
) -> None:
    daemon.start()
    store = daemon.store()
    daemon.drop_web("before", "question about trademarks")
    assert wait_for(lambda: store.ticket_count() == 1)
    assert store.list_tickets()[0].queue == "general"

    good = tmp_path / "good.yaml"
    write_daemon_config(
        good,
        prefix=prefix,
        state=tmp_path / "state",
        drop=daemon.drop,
        port=daemon.port,
        extra_rules=(
            "  - id: trademarks\n    when: {keywords: [trademarks]}\n"
            "    then: {queue: complaints}\n"
        ),
    )
    shutil.copy(good, daemon.config)
    daemon.signal(signal.SIGHUP)
    assert wait_for(lambda: "reloaded" in daemon.logs(), timeout=10), daemon.logs()
    daemon.drop_web("after", "question about trademarks")
    assert wait_for(lambda: store.ticket_count() == 2)
    queues = {t.queue for t in store.list_tickets()}
    assert queues == {"general", "complaints"}

    daemon.config.write_text(daemon.config.read_text() + "surprise: key\n")
    daemon.signal(signal.SIGHUP)
    assert wait_for(lambda: "reload refused" in daemon.logs(), timeout=10)
    assert "surprise: unknown key" in daemon.logs()
    daemon.drop_web("still", "question about trademarks")
    assert wait_for(lambda: store.ticket_count() == 3)
    assert [t.queue for t in store.list_tickets(limit=1)] == ["complaints"]
    assert daemon.stop() == 0


@pytest.mark.slow
def test_redis_restarted_mid_run_the_daemon_recovers(prefix: str, tmp_path: Path) -> None:
    if shutil.which("redis-server") is None:
        pytest.skip("no redis-server binary")
    redis_port = free_port()
    redis_dir = tmp_path / "redis"
    redis_dir.mkdir()

    def start_redis() -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(redis_port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(redis_dir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        assert wait_for(lambda: socket.create_connection(("127.0.0.1", redis_port), 1))
        return proc

    redis_proc = start_redis()
    url = f"redis://127.0.0.1:{redis_port}/0"
    drop = tmp_path / "drop"
    (drop / "new").mkdir(parents=True)
    port = free_port()
    config = tmp_path / "queue_config.yaml"
    write_daemon_config(
        config, prefix=prefix, state=tmp_path / "state", drop=drop, port=port, redis_url=url
    )
    daemon = DaemonProc(
        config=config,
        drop=drop,
        port=port,
        prefix=prefix,
        log=tmp_path / "daemon.log",
        redis_url=url,
    )
    try:
        daemon.start()
        daemon.drop_web("first", "hello")
        assert wait_for(lambda: daemon.store().ticket_count() == 1)
        redis_proc.terminate()
        redis_proc.wait()
        daemon.drop_web("during", "hello while redis is down")
        time.sleep(2)
        assert (drop / "new" / "during.web.json").exists()  # not handed over, not lost
        status, body = daemon.get("/healthz")
        assert status == 503 and json.loads(body)["redis"] is False
        redis_proc = start_redis()  # empty again: no persistence in this test
        assert wait_for(lambda: daemon.store().ticket_count() == 1, timeout=60), daemon.logs()
        # the file moves to cur/ once the hand-over returns, which a fast worker can beat
        assert wait_for(lambda: not (drop / "new" / "during.web.json").exists()), daemon.logs()
        assert daemon.get("/healthz")[0] == 200
        assert daemon.stop() == 0
    finally:
        if daemon.proc is not None:
            daemon.proc.kill()
        redis_proc.terminate()
        redis_proc.wait()
