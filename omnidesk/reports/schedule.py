"""Scheduled reports: each `reports:` entry of queue_config.yaml is e-mailed once per period.

A report is due from its send moment (daily at `at`, weekly on `weekday` at `at`, monthly on
`day` at `at`, local time) and covers the period that ended before it: yesterday, the seven
days before the send day, or the previous month. Several daemons may run this job: the one
that wins ``SET NX <prefix>:report:<name>:<period>`` sends it; a failed send deletes the key
so the next round (of any daemon) tries again. A daemon that was down at the send moment
sends the latest period it missed when it comes back.

A send the SMTP server refuses or never answers marks the report mail down (`/healthz`:
degraded, `report_mail_down`) and the next try waits, 30 s doubling to an hour; the first
send that goes through marks it up again.

A `format: pdf` report is printed by the same Chromium path as `omnidesk report --format pdf`
(omnidesk.reports.pdf); when it cannot print (no Chromium, a print timed out) that report is
not sent, retried after a wait (30 s doubling to an hour, like the mail), and `/healthz` says
so (degraded, `report_pdf_down`). Print slots all taken by the API is no failure: the next
round retries.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time as monotonic_time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from omnidesk.config import WEEKDAYS, QueueConfigFile, ScheduledReport, SmtpConfig
from omnidesk.errors import OmnideskError, TransientError
from omnidesk.reports.fold import Context
from omnidesk.reports.html import branding_from
from omnidesk.reports.pdf import PrinterBusy, print_pdf
from omnidesk.reports.render import as_table, render
from omnidesk.reports.source import figures_for
from omnidesk.store import Store

log = logging.getLogger("omnidesk.reports.schedule")
SENT_TTL_S = 400 * 86400  # longer than any period, so a late restart never re-sends


def last_send(report: ScheduledReport, now: datetime) -> datetime:
    """The latest send moment at or before `now` (aware, in now's zone)."""
    hh, mm = (int(x) for x in report.at.split(":"))
    at = time(hh, mm)
    today = now.date()

    def moment(d: date) -> datetime:
        return datetime.combine(d, at, tzinfo=now.tzinfo)

    if report.schedule == "daily":
        d = today if moment(today) <= now else today - timedelta(days=1)
    elif report.schedule == "weekly":
        want = WEEKDAYS.index(report.weekday or "sun")
        d = today - timedelta(days=(today.weekday() - want) % 7)
        if moment(d) > now:
            d -= timedelta(days=7)
    else:
        d = today.replace(day=report.day)
        if moment(d) > now:
            prev = today.replace(day=1) - timedelta(days=1)
            d = prev.replace(day=report.day)
    return moment(d)


def period_of(report: ScheduledReport, sent: datetime) -> tuple[str, date, date]:
    """(label, first day, last day) of the period a send moment reports on."""
    day = sent.date()
    if report.schedule == "daily":
        end = day - timedelta(days=1)
        return end.isoformat(), end, end
    if report.schedule == "weekly":
        end = day - timedelta(days=1)
        start = end - timedelta(days=6)
        return f"{start.isoformat()}..{end.isoformat()}", start, end
    end = day.replace(day=1) - timedelta(days=1)
    start = end.replace(day=1)
    return f"{start:%Y-%m}", start, end


def build_message(
    report: ScheduledReport, smtp: SmtpConfig, label: str, body: str, attachment: str | bytes
) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = smtp.from_address
    msg["To"] = ", ".join(report.recipients)
    msg["Subject"] = f"Omnidesk report {report.name}: {label}"
    msg.set_content(body)
    filename = f"omnidesk-{report.name}-{label.replace('..', '_')}"
    if isinstance(attachment, bytes):  # the printed PDF
        msg.add_attachment(attachment, maintype="application", subtype="pdf",
                           filename=f"{filename}.pdf")  # fmt: skip
        return msg
    ext = {"html": "html", "csv": "csv", "json": "json", "table": "txt"}[report.format]
    subtype = {"html": "html", "csv": "csv", "json": "json", "table": "plain"}[report.format]
    maintype = "application" if ext == "json" else "text"
    msg.add_attachment(
        attachment.encode("utf-8"),
        maintype=maintype,
        subtype=subtype,
        filename=f"{filename}.{ext}",
        # text/* without a charset is US-ASCII to a mail client: Arabic came out garbled
        params={"charset": "utf-8"} if maintype == "text" else {},
    )
    return msg


class MailUnsent(TransientError):
    """The SMTP server could not be reached, or refused the mail or the login."""


class Unprintable(TransientError):
    """A PDF report could not be printed (no Chromium, a print that timed out)."""


@dataclass
class Backoff:
    """Something failing in a row (the report mail, printing PDFs) and when the next try is:
    30 s doubling to an hour, so a broken server or Chromium is not hit every round."""

    first_wait: float = 30.0  # the run loop's own round: the first retry is not delayed more
    max_wait: float = 3600.0
    failures: int = 0  # sends failed in a row
    error: str | None = None
    retry_at: float = 0.0  # time.monotonic() of the next try

    @property
    def down(self) -> bool:
        return self.failures > 0

    def failed(self, error: str, now: float) -> float:
        """Note a failed send; the seconds to wait before the next one."""
        self.failures += 1
        self.error = error
        wait = min(self.max_wait, self.first_wait * 2 ** min(self.failures - 1, 20))
        self.retry_at = now + wait
        return wait

    def sent(self) -> None:
        self.failures, self.error, self.retry_at = 0, None, 0.0

    def waiting(self, now: float) -> bool:
        return self.down and now < self.retry_at


@dataclass
class MailHealth(Backoff):
    """Whether report mail goes out, for /healthz; while down, when the next try is."""

    def as_dict(self, now: float) -> dict[str, Any]:
        if not self.down:
            return {"mail": "ok"}
        return {
            "mail": "down",
            "error": self.error,
            "failures": self.failures,
            "next_try_in_s": round(max(0.0, self.retry_at - now), 1),
        }


async def send(smtp: SmtpConfig, msg: EmailMessage) -> None:
    import aiosmtplib

    password = os.environ.get(smtp.password_env, "") if smtp.password_env else None
    try:
        await aiosmtplib.send(
            msg,
            hostname=smtp.host,
            port=smtp.port,
            username=smtp.username,
            password=password,
            start_tls=smtp.starttls,
            use_tls=smtp.use_tls,
            timeout=smtp.timeout,
        )
    except aiosmtplib.SMTPAuthenticationError as exc:
        raise MailUnsent(f"smtp {smtp.host}: authentication refused ({exc.code})") from None
    except (aiosmtplib.SMTPException, OSError) as exc:
        raise MailUnsent(f"smtp {smtp.host}:{smtp.port}: {exc}") from None


class ReportScheduler:
    """Sends each due report once per period; `tick()` is one round, `run()` the job."""

    def __init__(
        self,
        store: Store,
        config: QueueConfigFile,
        *,
        clock: Callable[[], datetime] | None = None,
        titles: dict[str, str] | None = None,
        records: Any = None,
        monotonic: Callable[[], float] = monotonic_time.monotonic,
        base_dir: Path | None = None,
    ) -> None:
        self.store = store
        self.base_dir = base_dir  # the config file's folder: a relative branding logo's base
        self.records = records  # PostgreSQL (omnidesk.db.records.Records), when configured
        self.clock = clock or (lambda: datetime.now(self.ctx.tz))
        self.monotonic = monotonic  # the mail and print backoffs' clock
        self.mail = MailHealth()
        self._fixed_titles = titles
        self.reload(config)

    def reload(self, config: QueueConfigFile) -> None:
        """Take a new config (SIGHUP): its reports, SMTP server, calendar and queue titles.
        Another SMTP server is tried at once."""
        old: QueueConfigFile | None = getattr(self, "config", None)
        if old is not None and config.service.smtp != old.service.smtp:
            self.mail = MailHealth()
        self.printing = Backoff()  # perhaps Chromium was installed meanwhile: try at once
        self.ctx = Context.from_config(config)
        self.titles = self._fixed_titles or {
            n: q.title for n, q in config.queues.items() if q.title
        }
        self.config = config

    def health(self) -> dict[str, Any] | None:
        """The /healthz block, when there are reports to send."""
        if not self.config.reports:
            return None
        block = self.mail.as_dict(self.monotonic())
        if any(r.format == "pdf" for r in self.config.reports):
            block["pdf"] = "down" if self.printing.down else "ok"
            if self.printing.down:
                block["pdf_error"] = self.printing.error
                block["pdf_next_try_in_s"] = round(
                    max(0.0, self.printing.retry_at - self.monotonic()), 1
                )
        return block

    @property
    def pdf_error(self) -> str | None:
        """The last PDF print failure, until one prints."""
        return self.printing.error

    def key(self, report: ScheduledReport, label: str) -> str:
        return self.store.keys.report(report.name, label)

    async def tick(self) -> list[str]:
        """Send what is due now; returns the keys of the reports this call sent."""
        smtp = self.config.service.smtp
        if not self.config.reports:
            return []
        if smtp is None:
            log.error("scheduled reports configured but service.smtp is not: nothing sent")
            return []
        if self.mail.waiting(self.monotonic()):
            return []
        sent = []
        for report in self.config.reports:
            if report.format == "pdf" and self.printing.waiting(self.monotonic()):
                continue  # printing failed lately: its backoff, not every round
            tz = ZoneInfo(report.timezone) if report.timezone else self.ctx.tz
            moment = last_send(report, self.clock().astimezone(tz))
            label, start, end = period_of(report, moment)
            key = self.key(report, label)
            claimed = await asyncio.to_thread(
                self.store.r.set, key, f"sending {os.getpid()}", nx=True, ex=SENT_TTL_S
            )
            if not claimed:
                continue
            try:
                await self._send_one(report, smtp, label, start, end)
            except MailUnsent as exc:
                await asyncio.to_thread(self.store.r.delete, key)  # let a later round retry
                wait = self.mail.failed(str(exc), self.monotonic())
                log.error("report %s for %s not sent: %s; report mail down, next try in %.0f s",
                          report.name, label, exc, wait)  # fmt: skip
                break  # the other reports would only knock at the same door
            except Exception as exc:
                await asyncio.to_thread(self.store.r.delete, key)  # let a later round retry
                log.error("report %s for %s not sent: %s", report.name, label, exc)
                continue
            if self.mail.down:
                log.info("report mail up again after %d failed sends", self.mail.failures)
            self.mail.sent()
            await asyncio.to_thread(self.store.r.set, key, f"sent {datetime.now():%FT%T}",
                                    ex=SENT_TTL_S)  # fmt: skip
            log.info("report %s for %s sent to %d recipients", report.name, label,
                     len(report.recipients))  # fmt: skip
            sent.append(key)
        return sent

    async def _send_one(
        self, report: ScheduledReport, smtp: SmtpConfig, label: str, start: date, end: date
    ) -> None:
        filters = {k: str(v) for k, v in report.filters.model_dump().items() if v is not None}
        records = self.records.connection if self.records is not None else None
        result = await asyncio.to_thread(
            figures_for, records, self.config, self.ctx, start, end, filters
        )

        options = {"lang": report.lang, "titles": self.titles, "digits": report.digits,
                   "branding": branding_from(self.config, self.base_dir)}  # fmt: skip
        attachment: str | bytes
        if report.format == "pdf":
            page = await asyncio.to_thread(render, result, "html", **options)
            attachment = await self._print(page)
        else:
            attachment = await asyncio.to_thread(render, result, report.format, **options)
        body = as_table(result, lang=report.lang, digits=report.digits)  # the reader's language
        msg = build_message(report, smtp, label, body, attachment)
        await send(smtp, msg)

    async def _print(self, page: str) -> bytes:
        try:
            pdf = await print_pdf(page)
        except PrinterBusy:  # the API is printing: nothing is broken, the next round retries
            raise
        except OmnideskError as exc:  # NoChromium, PrintTimeout, a failed print
            wait = self.printing.failed(str(exc), self.monotonic())
            raise Unprintable(f"PDF not printed: {exc}; next print in {wait:.0f} s") from None
        self.printing.sent()
        return pdf

    async def run(self, stop: asyncio.Event, interval: float = 30.0) -> None:
        while not stop.is_set():
            try:
                await self.tick()
            except Exception as exc:  # Redis down and the like: the next round retries
                log.warning("scheduled reports: %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval)


def scheduler_for(daemon: Any) -> ReportScheduler:
    return ReportScheduler(
        daemon.runtime.store,
        daemon.loaded.data,
        records=getattr(daemon, "records", None),
        base_dir=daemon.loaded.base_dir,
    )
