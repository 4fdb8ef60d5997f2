"""Scheduled reports: periods and send moments, and exactly one e-mail per period with two
schedulers racing (real Redis, a real aiosmtpd server on loopback)."""

from __future__ import annotations

import asyncio
import email
import uuid
from datetime import datetime
from email import policy
from zoneinfo import ZoneInfo

import pytest
from aiosmtpd.controller import Controller

from omnidesk.config import BrandingConfig, QueueConfigFile, ScheduledReport
from omnidesk.configload import load_config
from omnidesk.db.records import Records
from omnidesk.reports.schedule import ReportScheduler, last_send, period_of
from omnidesk.store import Store
from tests.reportkit import history, seeded_database
from tests.services import free_port
from tests.storekit import CONFIG, REDIS_URL

RIYADH = ZoneInfo("Asia/Riyadh")


def report(**kw) -> ScheduledReport:
    base = {"name": "r", "schedule": "daily", "at": "07:00", "recipients": ["a@moc.example.sa"]}
    return ScheduledReport.model_validate({**base, **kw})


def test_daily_reports_yesterday_after_its_time_and_the_day_before_until_then():
    r = report()
    before = datetime(2026, 3, 10, 6, 59, tzinfo=RIYADH)
    after = datetime(2026, 3, 10, 7, 0, tzinfo=RIYADH)
    assert period_of(r, last_send(r, before))[0] == "2026-03-08"
    assert period_of(r, last_send(r, after))[0] == "2026-03-09"


def test_weekly_covers_the_seven_days_before_the_send_day():
    r = report(schedule="weekly", weekday="sun", at="08:30")
    now = datetime(2026, 3, 12, 9, 0, tzinfo=RIYADH)  # a Thursday
    sent = last_send(r, now)
    assert sent == datetime(2026, 3, 8, 8, 30, tzinfo=RIYADH)  # last Sunday
    label, start, end = period_of(r, sent)
    assert (label, start.isoformat(), end.isoformat()) == (
        "2026-03-01..2026-03-07",
        "2026-03-01",
        "2026-03-07",
    )


def test_monthly_covers_the_previous_month():
    r = report(schedule="monthly", day=2)
    assert period_of(r, last_send(r, datetime(2026, 3, 1, 12, tzinfo=RIYADH)))[0] == "2026-01"
    assert period_of(r, last_send(r, datetime(2026, 3, 2, 12, tzinfo=RIYADH)))[0] == "2026-02"


def test_weekday_only_with_weekly():
    with pytest.raises(ValueError, match="weekday"):
        report(weekday="mon")


class Inbox:
    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(email.message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"


@pytest.fixture
def smtp():
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


@pytest.fixture(scope="module")
def database(pg_template):
    """Five days of generated events in PostgreSQL, where the reports are computed."""
    with seeded_database(pg_template, history(5, 30, days=5)) as url:
        records = Records(url)
        yield records
        records.close()


def seeded_store(prefix: str) -> Store:
    """The store under `prefix` the schedulers keep their sent marks in (delete_all after)."""
    return Store.from_url(REDIS_URL, prefix)


def smtp_config(port: int) -> QueueConfigFile:
    """The test config, sending through the aiosmtpd on `port`."""
    loaded = load_config(CONFIG)
    smtp_cfg = {"host": "127.0.0.1", "port": port, "from_address": "od@moc.sa"}
    service = loaded.data.service.model_validate(
        {**loaded.data.service.model_dump(), "smtp": smtp_cfg}
    )
    return loaded.data.model_copy(update={"service": service})


async def test_two_schedulers_send_each_period_once(smtp, tmp_path, database):
    inbox, port = smtp
    prefix = f"test-sched-{uuid.uuid4().hex[:10]}"
    store = seeded_store(prefix)
    try:
        data = smtp_config(port)
        reports = [
            report(name="daily-all", recipients=["boss@moc.example.sa"]),
            report(name="weekly-web", schedule="weekly", weekday="sun", format="csv",
                   filters={"channel": "web"}),
        ]  # fmt: skip
        cfg = data.model_copy(update={"reports": reports})
        now = datetime(2026, 3, 8, 9, 0, tzinfo=RIYADH)  # a Sunday, after 07:00
        a, b = (ReportScheduler(Store.from_url(REDIS_URL, prefix), cfg, records=database,
                                clock=lambda: now) for _ in range(2))  # fmt: skip
        first = await asyncio.gather(a.tick(), b.tick(), a.tick(), b.tick())
        assert sum(len(x) for x in first) == 2
        assert len(inbox.messages) == 2
        subjects = sorted(m["Subject"] for m in inbox.messages)
        assert subjects == [
            "Omnidesk report daily-all: 2026-03-07",
            "Omnidesk report weekly-web: 2026-03-01..2026-03-07",
        ]
        daily = next(m for m in inbox.messages if "daily-all" in m["Subject"])
        assert daily["To"] == "boss@moc.example.sa"
        attachment = next(daily.iter_attachments())
        assert attachment.get_filename() == "omnidesk-daily-all-2026-03-07.html"
        assert "<svg" in attachment.get_content()
        # later rounds, by either daemon, send nothing more for the same periods
        assert await a.tick() == [] and await b.tick() == []
        assert len(inbox.messages) == 2
    finally:
        store.delete_all()


async def test_an_unreachable_server_leaves_the_period_to_retry(tmp_path, database):
    prefix = f"test-sched-{uuid.uuid4().hex[:10]}"
    store = Store.from_url(REDIS_URL, prefix)
    try:
        loaded = load_config(CONFIG)
        service = loaded.data.service.model_validate(
            {**loaded.data.service.model_dump(),
             "smtp": {"host": "127.0.0.1", "port": 1, "from_address": "od@moc.sa", "timeout": 2}}
        )  # fmt: skip
        cfg = loaded.data.model_copy(update={"service": service, "reports": [report()]})
        now = datetime(2026, 3, 8, 9, 0, tzinfo=RIYADH)
        sched = ReportScheduler(store, cfg, records=database, clock=lambda: now)
        assert await sched.tick() == []
        assert store.r.exists(store.key("report", "r", "2026-03-07")) == 0
    finally:
        store.delete_all()


async def test_postgresql_away_sends_nothing_and_leaves_the_period_to_retry(smtp, caplog):
    """No figures are made up: the report waits for PostgreSQL, and the log says why."""
    inbox, port = smtp
    prefix = f"test-sched-{uuid.uuid4().hex[:10]}"
    store = seeded_store(prefix)
    away = Records("postgresql://postgres@127.0.0.1:1/od_absent?connect_timeout=2")
    try:
        cfg = smtp_config(port).model_copy(update={"reports": [report()]})
        now = datetime(2026, 3, 8, 9, 0, tzinfo=RIYADH)
        sched = ReportScheduler(store, cfg, records=away, clock=lambda: now)
        assert await sched.tick() == []
        assert inbox.messages == []
        assert store.r.exists(store.key("report", "r", "2026-03-07")) == 0  # a later round
        assert "postgresql unavailable at 127.0.0.1:1/od_absent" in caplog.text
    finally:
        away.close()
        store.delete_all()


def test_check_names_duplicate_reports_and_unknown_queues(tmp_path, capsys):
    from omnidesk.cli import main

    path = tmp_path / "q.yaml"
    path.write_text(
        "sla_policies:\n  standard: {first_response: 4h}\n"
        "queues:\n  general: {kind: contact_centre, sla_policy: standard}\n"
        "default: {queue: general}\n"
        "reports:\n"
        "  - {name: a, schedule: daily, recipients: [x@moc.sa]}\n"
        "  - {name: a, schedule: weekly, recipients: [x@moc.sa], filters: {queue: nope}}\n",
        "utf-8",
    )
    assert main(["check", str(path)]) == 1
    err = capsys.readouterr().err
    assert f"{path}:8: reports[1].name: duplicate report 'a'" in err
    assert f"{path}:8: reports[1].filters.queue: queue 'nope' does not exist" in err


async def test_a_scheduled_arabic_report_carries_the_branding(smtp, tmp_path, database):
    """The e-mailed page is the printable one: Arabic, right-to-left, the ministry's name
    and its logo (a path relative to the config file's folder)."""
    inbox, port = smtp
    prefix = f"test-sched-{uuid.uuid4().hex[:10]}"
    store = seeded_store(prefix)
    (tmp_path / "logo.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg"/>', "utf-8")
    try:
        data = smtp_config(port)
        branding = BrandingConfig(name_ar="وزارة التجارة", name_en="Ministry of Commerce",
                                  logo="logo.svg")  # fmt: skip
        cfg = data.model_copy(update={
            "branding": branding,
            "reports": [report(name="daily-ar", recipients=["boss@moc.example.sa"], lang="ar")],
        })  # fmt: skip
        now = datetime(2026, 3, 8, 9, 0, tzinfo=RIYADH)
        sched = ReportScheduler(store, cfg, records=database, clock=lambda: now,
                                base_dir=tmp_path)  # fmt: skip
        assert len(await sched.tick()) == 1
        attachment = next(inbox.messages[0].iter_attachments())
        assert attachment.get_content_charset() == "utf-8"  # else clients read US-ASCII
        page = attachment.get_content()
        assert 'dir="rtl"' in page and "وزارة التجارة" in page and "تقرير الأداء" in page
        assert "data:image/svg+xml;base64," in page
    finally:
        store.delete_all()


async def test_an_arabic_report_mail_body_is_in_arabic(smtp, database):
    inbox, port = smtp
    prefix = f"test-sched-{uuid.uuid4().hex[:10]}"
    store = seeded_store(prefix)
    try:
        data = smtp_config(port)
        ar = report(name="daily-ar", format="csv", lang="ar", digits="arab")
        cfg = data.model_copy(update={"reports": [ar]})
        now = datetime(2026, 3, 8, 9, 0, tzinfo=RIYADH)
        sched = ReportScheduler(store, cfg, records=database, clock=lambda: now)
        assert len(await sched.tick()) == 1
        body = inbox.messages[0].get_body(preferencelist=("plain",)).get_content()
        assert "تقرير" in body and "المرشحات" in body and "Report " not in body
        assert any("٠" <= ch <= "٩" for ch in body)  # digits: arab
    finally:
        store.delete_all()


def _pdf_setup(  # type: ignore[no-untyped-def]
    port: int, prefix: str, database: Records, monotonic=None
):
    store = seeded_store(prefix)
    data = smtp_config(port)
    pdf = report(name="daily-pdf", format="pdf", lang="ar", digits="arab")
    cfg = data.model_copy(update={"reports": [pdf]})
    now = datetime(2026, 3, 8, 9, 0, tzinfo=RIYADH)
    timing = {"monotonic": monotonic} if monotonic is not None else {}
    return store, ReportScheduler(store, cfg, records=database, clock=lambda: now, **timing)


async def test_a_scheduled_pdf_report_is_printed_and_attached(smtp, database):
    inbox, port = smtp
    store, sched = _pdf_setup(port, f"test-sched-{uuid.uuid4().hex[:10]}", database)
    try:
        assert len(await sched.tick()) == 1
        attachment = next(inbox.messages[0].iter_attachments())
        assert attachment.get_content_type() == "application/pdf"
        assert attachment.get_filename() == "omnidesk-daily-pdf-2026-03-07.pdf"
        assert attachment.get_content().startswith(b"%PDF")
        assert sched.health() == {"mail": "ok", "pdf": "ok"}
    finally:
        store.delete_all()


async def test_without_chromium_a_pdf_report_is_not_sent_and_health_says_why(
    smtp, tmp_path, monkeypatch, database
):
    inbox, port = smtp
    monkeypatch.setenv("OMNIDESK_CHROMIUM", str(tmp_path / "no-such-chromium"))
    store, sched = _pdf_setup(port, f"test-sched-{uuid.uuid4().hex[:10]}", database)
    try:
        assert await sched.tick() == []
        assert inbox.messages == []
        assert store.r.exists(store.key("report", "daily-pdf", "2026-03-07")) == 0  # retried
        health = sched.health()
        assert health["pdf"] == "down" and "no-such-chromium" in health["pdf_error"]
    finally:
        store.delete_all()


async def test_a_failing_print_is_retried_after_a_growing_wait_not_every_round(
    smtp, tmp_path, monkeypatch, database
):
    inbox, port = smtp
    launches = tmp_path / "launches"
    fake = tmp_path / "chromium"
    fake.write_text(f"#!/bin/sh\necho x >> {launches}\necho 'cannot print' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("OMNIDESK_CHROMIUM", str(fake))
    now = [1000.0]
    prefix = f"test-sched-{uuid.uuid4().hex[:10]}"
    store, sched = _pdf_setup(port, prefix, database, lambda: now[0])

    def launched() -> int:
        return len(launches.read_text().split()) if launches.exists() else 0

    try:
        assert await sched.tick() == [] and launched() == 1
        health = sched.health()
        assert health["pdf"] == "down" and "cannot print" in health["pdf_error"]
        now[0] += 29  # the next rounds within the first 30 s wait
        assert await sched.tick() == [] and launched() == 1
        now[0] += 2
        assert await sched.tick() == [] and launched() == 2
        now[0] += 59  # then 60 s
        assert await sched.tick() == [] and launched() == 2
        now[0] += 2
        assert await sched.tick() == [] and launched() == 3
        sched.reload(sched.config)  # a reload tries at once
        assert await sched.tick() == [] and launched() == 4
        assert inbox.messages == []
        fake.write_text(  # Chromium repaired: it prints
            "#!/bin/sh\n"
            'for a in "$@"; do case "$a" in --print-to-pdf=*) out="${a#--print-to-pdf=}";; esac; '
            f'done\necho x >> {launches}\nprintf "%%PDF-1.4 stand-in" > "$out"\n'
        )
        now[0] += 31
        assert len(await sched.tick()) == 1 and launched() == 5
        assert sched.health() == {"mail": "ok", "pdf": "ok"}
    finally:
        store.delete_all()


async def test_print_slots_busy_with_the_api_are_no_pdf_failure(smtp, database, monkeypatch):
    import omnidesk.reports.pdf as pdf

    inbox, port = smtp
    monkeypatch.setattr(pdf, "WAIT_S", 0.2)
    prefix = f"test-sched-{uuid.uuid4().hex[:10]}"
    store, sched = _pdf_setup(port, prefix, database, lambda: 1000.0)
    slots = pdf.print_slots()
    for _ in range(pdf.PRINTS):  # the API prints two reports
        await asyncio.wait_for(slots.acquire(), timeout=1)
    try:
        assert await sched.tick() == []
        assert sched.health() == {"mail": "ok", "pdf": "ok"}
        assert store.r.exists(store.key("report", "daily-pdf", "2026-03-07")) == 0
    finally:
        for _ in range(pdf.PRINTS):
            slots.release()
    try:
        assert len(await sched.tick()) == 1  # the next round, same moment: no backoff
        assert len(inbox.messages) == 1
    finally:
        store.delete_all()


def test_digits_and_pdf_are_checked():
    assert report(format="pdf", digits="arab").digits == "arab"
    with pytest.raises(ValueError, match="digits"):
        report(digits="roman")
