"""Report mail that cannot go out is seen and waited out: an aiosmtpd that is down, then up,
on the same port. The daemon's /healthz says degraded (`report_mail_down`, with the error)
while it is down, the tries back off from 30 s doubling to an hour, and the first send that
goes through makes it OK again (real Redis, a real daemon in this process)."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from omnidesk.configload import load_config
from omnidesk.db.records import Records
from omnidesk.reports.schedule import ReportScheduler
from omnidesk.service import Daemon, DaemonOptions
from omnidesk.store import Store
from tests.agentkit import AGENTS_CONFIG
from tests.services import SmtpSink, eventually, free_port
from tests.storekit import CONFIG, REDIS_URL
from tests.test_report_schedule import RIYADH, report


class LateSmtp:
    """An SMTP port nobody answers on until `up()`."""

    def __init__(self) -> None:
        self.sink = SmtpSink(host="127.0.0.1", port=free_port())
        self.controller: Controller | None = None

    def up(self) -> None:
        self.controller = Controller(self.sink, hostname=self.sink.host, port=self.sink.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()


@pytest.fixture
def late_smtp() -> Iterator[LateSmtp]:
    server = LateSmtp()
    yield server
    server.stop()


class Clock:
    """The backoff's monotonic clock, moved by hand."""

    def __init__(self) -> None:
        self.now = time.monotonic()  # a daemon's own round may have set a retry time by it

    def __call__(self) -> float:
        return self.now


async def test_the_backoff_doubles_to_an_hour_and_a_sent_report_ends_it(
    late_smtp: LateSmtp, run_database: str
) -> None:
    prefix = f"test-mailup-{uuid.uuid4().hex[:10]}"
    store = Store.from_url(REDIS_URL, prefix)
    records = Records(run_database)  # the figures come from PostgreSQL, the mail fails
    try:
        loaded = load_config(CONFIG)
        smtp = {"host": "127.0.0.1", "port": late_smtp.sink.port, "from_address": "od@moc.sa",
                "timeout": 5}  # fmt: skip
        service = loaded.data.service.model_validate(
            {**loaded.data.service.model_dump(), "smtp": smtp}
        )
        cfg = loaded.data.model_copy(update={"service": service, "reports": [report()]})
        clock = Clock()
        now = datetime(2026, 3, 8, 9, 0, tzinfo=RIYADH)
        sched = ReportScheduler(store, cfg, clock=lambda: now, monotonic=clock, records=records)
        assert sched.health() == {"mail": "ok"}
        waits = []
        for _ in range(9):
            assert await sched.tick() == []
            health = sched.health()
            assert health is not None and health["mail"] == "down"
            assert "127.0.0.1" in str(health["error"])
            waits.append(health["next_try_in_s"])
            clock.now += 1
            assert await sched.tick() == []  # still waiting: no try at all
            assert sched.health()["failures"] == len(waits)  # type: ignore[index]
            clock.now += waits[-1]
        assert waits == [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]
        assert store.r.exists(store.key("report", "r", "2026-03-07")) == 0  # left to retry

        late_smtp.up()
        (sent,) = await sched.tick()
        assert sent == store.key("report", "r", "2026-03-07")
        assert sched.health() == {"mail": "ok"}
        assert len(late_smtp.sink.messages) == 1
    finally:
        records.close()
        store.delete_all()


@contextlib.asynccontextmanager
async def report_daemon(
    tmp_path: Path, prefix: str, late_smtp: LateSmtp, name: str, options: str
) -> AsyncIterator[Daemon]:
    """A daemon (no HTTP, no workers) with one daily report `name` (its `options`) sent
    through `late_smtp`."""
    config = tmp_path / "queue_config.yaml"
    config.write_text(
        f"service:\n  redis_url: {REDIS_URL}\n  key_prefix: {prefix}\n"
        f"  state_dir: {tmp_path / 'state'}\n"
        f"  smtp: {{host: 127.0.0.1, port: {late_smtp.sink.port}, from_address: od@moc.sa,"
        " timeout: 5}\n"
        + AGENTS_CONFIG.read_text("utf-8")
        + f"reports:\n  - {{name: {name}, schedule: daily, at: '00:00',"
        f" recipients: [ops@moc.example.sa], {options}}}\n",
        "utf-8",
    )
    d = Daemon(DaemonOptions(config=str(config), workers=0, http=False, drain_timeout=5))
    async with d:
        yield d


@pytest.fixture
async def daemon(prefix: str, tmp_path: Path, late_smtp: LateSmtp):
    async with report_daemon(tmp_path, prefix, late_smtp, "daily-ops", "format: csv") as d:
        yield d


async def test_healthz_says_degraded_while_report_mail_is_down_and_ok_once_it_is_sent(
    daemon: Daemon, late_smtp: LateSmtp
) -> None:
    scheduler = daemon.report_scheduler
    clock = Clock()
    scheduler.monotonic = clock
    await scheduler.tick()  # the daemon's own round may have tried first: either way, down
    assert await eventually(lambda: scheduler.mail.down, 10)
    health = await daemon.health()
    assert health["ok"] is True  # intake goes on
    assert health["status"] == "degraded"
    assert "report_mail_down" in health["degraded"]
    assert health["reports"]["mail"] == "down"
    assert f"127.0.0.1:{late_smtp.sink.port}" in health["reports"]["error"]

    late_smtp.up()
    clock.now += 3600
    sent: list[str] = []
    deadline = asyncio.get_running_loop().time() + 20
    while not late_smtp.sink.messages and asyncio.get_running_loop().time() < deadline:
        sent += await scheduler.tick()
        await asyncio.sleep(0.05)
    assert len(late_smtp.sink.messages) == 1
    health = await daemon.health()
    assert "report_mail_down" not in health.get("degraded", [])
    assert health["reports"] == {"mail": "ok"}


@pytest.fixture
async def pdf_daemon(prefix: str, tmp_path: Path, late_smtp: LateSmtp, monkeypatch):
    monkeypatch.setenv("OMNIDESK_CHROMIUM", str(tmp_path / "no-such-chromium"))
    report = "format: pdf, lang: ar, digits: arab"
    async with report_daemon(tmp_path, prefix, late_smtp, "daily-pdf", report) as d:
        yield d


async def test_healthz_says_a_pdf_report_cannot_be_printed(
    pdf_daemon: Daemon, late_smtp: LateSmtp
) -> None:
    late_smtp.up()  # mail would go: only the printing is missing
    scheduler = pdf_daemon.report_scheduler
    assert await scheduler.tick() == []
    assert await eventually(lambda: scheduler.pdf_error is not None, 10)
    health = await pdf_daemon.health()
    assert health["ok"] is True and health["status"] == "degraded"
    assert "report_pdf_down" in health["degraded"]
    assert "report_mail_down" not in health["degraded"]
    assert "no-such-chromium" in health["reports"]["pdf_error"]
    assert late_smtp.sink.messages == []
