"""The chaos run's customers: one thread per source, each submitting its payloads on a
schedule and retrying until the source has taken them.

* drop folder: the maildir way, written in ``tmp/`` and renamed into ``new/``; taken once
  renamed;
* IMAP: APPENDed to the test user's INBOX on the real Dovecot; taken once APPEND says OK;
* web form: ``POST /v1/intake/web``; taken on a 2xx. Connection errors, timeouts and 5xx
  (503 with Retry-After under overload or a Redis outage) are retried with the same body
  and ``submission_id``, so a retry of a post whose answer was lost dedupes to one ticket.
"""

from __future__ import annotations

import contextlib
import imaplib
import json
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path

SOURCES = {"d": "drop", "i": "imap", "w": "web"}
RETRY_AFTER_CAP_S = 2.0  # honour Retry-After, but keep the run short


@dataclass
class Submission:
    """One payload: its marker, its source, when it is due (seconds after the feed starts),
    and, once a source took it, when (monotonic) and after how many tries."""

    marker: str
    source: str
    due_s: float
    accepted_at: float | None = None
    attempts: int = 0
    refused: str = ""  # a 4xx answer: the client's bug, kept for the report


def plan_submissions(
    run_id: str, steady: int, rate: float, bursts: list[float], burst: int
) -> list[Submission]:
    """`steady` payloads evenly spaced at `rate` per second, two of every five through the
    drop folder, two through the web form, one by IMAP; then `burst` drop-folder files all
    due at each time in `bursts` (the faults'), so each fault finds batches in flight."""
    pattern = "dwidw"
    subs = []
    for n in range(steady):
        kind = pattern[n % len(pattern)]
        subs.append(Submission(f"CHX{run_id}-{kind}-{n:05d}", SOURCES[kind], n / rate))
    n = steady
    for due in bursts:
        for _ in range(burst):
            subs.append(Submission(f"CHX{run_id}-d-{n:05d}", "drop", due))
            n += 1
    return sorted(subs, key=lambda sub: sub.due_s)


def mail_bytes(marker: str) -> bytes:
    return (
        f"From: Customer {marker[-5:]} <c{marker[-5:]}@customer.test>\r\n"
        "To: care@example.test\r\n"
        f"Subject: Chaos {marker}\r\n"
        f"Date: {format_datetime(datetime.now(UTC))}\r\n"
        f"Message-ID: <{marker}@chaos.test>\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "\r\n"
        f"Payload {marker}: a question about my commercial registration.\r\n"
    ).encode()


def web_body(marker: str) -> bytes:
    form = {
        "message": f"Payload {marker}: a complaint about a shop.",
        "email": f"w{int(marker[-5:]) % 50}@example.sa",
        "submission_id": marker,
    }
    return json.dumps(form).encode()


class Feeder(threading.Thread):
    """Submits its share in order, each at its due time; `submit` returns once the source
    took the payload, or False at the deadline."""

    def __init__(self, name: str, subs: list[Submission], start: float, deadline: float) -> None:
        super().__init__(name=f"chaos-feed-{name}", daemon=True)
        self.subs = subs
        self.start_at = start
        self.deadline = deadline
        self.halt = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            for sub in self.subs:
                delay = self.start_at + sub.due_s - time.monotonic()
                if delay > 0 and self.halt.wait(delay):
                    return
                while not self.halt.is_set() and time.monotonic() < self.deadline:
                    sub.attempts += 1
                    if self.submit(sub):
                        sub.accepted_at = time.monotonic()
                        break
                    if sub.refused:
                        break
        except BaseException as exc:  # shown in the report, never a silent stop
            self.error = exc

    def submit(self, sub: Submission) -> bool:
        raise NotImplementedError


class DropFeeder(Feeder):
    def __init__(self, folder: Path, subs: list[Submission], start: float, deadline: float):
        super().__init__("drop", subs, start, deadline)
        self.folder = folder

    def submit(self, sub: Submission) -> bool:
        tmp = self.folder / "tmp" / f"{sub.marker}.eml"
        tmp.write_bytes(mail_bytes(sub.marker))
        tmp.rename(self.folder / "new" / tmp.name)
        return True


class ImapFeeder(Feeder):
    def __init__(
        self, host: str, port: int, user: str, subs: list[Submission], start: float,
        deadline: float,
    ) -> None:  # fmt: skip
        super().__init__("imap", subs, start, deadline)
        self.host, self.port, self.user = host, port, user
        self.conn: imaplib.IMAP4 | None = None

    def submit(self, sub: Submission) -> bool:
        try:
            if self.conn is None:
                self.conn = imaplib.IMAP4(self.host, self.port, timeout=10)
                self.conn.login(self.user, "secret")
            when = imaplib.Time2Internaldate(time.time())
            typ, _ = self.conn.append("INBOX", "", when, mail_bytes(sub.marker))
            return typ == "OK"
        except (OSError, imaplib.IMAP4.error):
            self.conn = None
            time.sleep(0.5)
            return False

    def run(self) -> None:
        try:
            super().run()
        finally:
            if self.conn is not None:
                with contextlib.suppress(OSError, imaplib.IMAP4.error):
                    self.conn.logout()


class WebFeeder(Feeder):
    def __init__(
        self, url: str, name: str, subs: list[Submission], start: float, deadline: float
    ) -> None:
        super().__init__(name, subs, start, deadline)
        self.url = url
        self.backoff = 0.2

    def submit(self, sub: Submission) -> bool:
        request = urllib.request.Request(
            self.url, data=web_body(sub.marker), headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                self.backoff = 0.2
                return 200 <= answer.status < 300
        except urllib.error.HTTPError as exc:
            if exc.code < 500 and exc.code != 429:
                sub.refused = f"{exc.code}: {exc.read()[:200]!r}"
                return False
            wait = _retry_after(exc.headers.get("Retry-After")) or self.backoff
        except OSError:  # refused, reset or timed out: the outcome is unknown, send it again
            wait = self.backoff
        self.backoff = min(2.0, self.backoff * 2)
        self.halt.wait(min(wait, RETRY_AFTER_CAP_S))
        return False


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None
