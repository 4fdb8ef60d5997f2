"""Real test services and their fixtures: Dovecot (IMAP), aiosmtpd (SMTP), Redis keys,
and a day in Riyadh that stays one day for a test that reads "today" twice.

Kept here, beside nothing else, so that `tests/conftest.py` only re-exports them and
other branches' fixtures merge without conflicts. Every fixture cleans up at teardown.
"""

from __future__ import annotations

import asyncio
import imaplib
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import pytest
import redis.asyncio as aioredis
from selenium.common.exceptions import StaleElementReferenceException

REPO = Path(__file__).resolve().parent.parent
# CI runs with a copy of shared/ beside the clone; the committed copy is the fallback.
DOVECOT_TEMPLATES = (
    REPO.parent / "shared" / "testing" / "dovecot.conf.template",
    REPO / "tests" / "dovecot.conf.template",
)
REDIS_URL = os.environ.get("OMNIDESK_TEST_REDIS", "redis://127.0.0.1:6379/0")
# Test-only additions: answer bad logins at once (no 2 s failure delay, no growing per-IP
# penalty, which would slow every later auth test) and notice new mail within a second.
DOVECOT_TEST_SETTINGS = """
auth_failure_delay = 0
mailbox_idle_check_interval = 1 secs
service anvil {
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
"""


DOVECOT_USERS = 100  # one fresh mailbox per test


_ports_handed_out: set[int] = set()


def free_port() -> int:
    """A loopback port nothing listens on, never one this process handed out before: once
    the probe socket is closed the kernel may give the same port to the next probe, and a
    server given both (Dovecot's imap and imaps) fails with "duplicate listener"."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in _ports_handed_out:
            _ports_handed_out.add(port)
            return port


# ---------------------------------------------------------------- Dovecot


@dataclass
class Dovecot:
    """A running Dovecot on loopback; `new_user()` gives each test a fresh mailbox."""

    root: Path
    port: int
    host: str = "127.0.0.1"
    spare_users: list[str] = field(default_factory=list)
    tls_port: int | None = None  # implicit TLS (imaps), when openssl made a certificate
    ca_file: str | None = None  # the self-signed certificate, to trust it explicitly

    @property
    def users_file(self) -> Path:
        return self.root / "users"

    @property
    def log(self) -> Path:
        return self.root / "dovecot.log"

    def new_user(self) -> str:
        """A user of its own for each test (password "secret"), created at start-up:
        Dovecot caches the passwd-file, so users added later are not seen at once."""
        return self.spare_users.pop()

    def client(self, user: str, password: str = "secret") -> imaplib.IMAP4:
        """A plain stdlib client for the test's side of the mailbox (APPEND, CREATE)."""
        conn = imaplib.IMAP4(self.host, self.port, timeout=10)
        conn.login(user, password)
        return conn

    def append(self, user: str, raw: bytes, folder: str = "INBOX") -> None:
        conn = self.client(user)
        try:
            typ, data = conn.append(folder, "", imaplib.Time2Internaldate(time.time()), raw)
            assert typ == "OK", data
        finally:
            conn.logout()

    def logins(self, user: str) -> int:
        """Successful logins for `user` as Dovecot logged them."""
        if not self.log.exists():
            return 0
        text = self.log.read_text(errors="replace")
        return sum(1 for line in text.splitlines() if f"Login: user=<{user}>" in line)

    def auth_failures(self, user: str) -> int:
        """Failed logins for `user` as Dovecot logged them."""
        if not self.log.exists():
            return 0
        text = self.log.read_text(errors="replace")
        return sum(
            1 for line in text.splitlines() if user in line and "auth failed" in line.lower()
        )


def _template() -> Path:
    for path in DOVECOT_TEMPLATES:
        if path.exists():
            return path
    raise FileNotFoundError("no dovecot.conf.template in ../shared/testing or tests/")


def _tls_settings(root: Path) -> tuple[str, int | None, str | None]:
    """A self-signed certificate for 127.0.0.1 and an imaps listener; none without openssl."""
    openssl = shutil.which("openssl")
    if openssl is None:
        return "", None, None
    cert, key = root / "cert.pem", root / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    port = free_port()
    settings = f"""
ssl = yes
ssl_cert = <{cert}
ssl_key = <{key}
service imap-login {{
  inet_listener imaps {{
    address = 127.0.0.1
    port = {port}
  }}
}}
"""
    return settings, port, str(cert)


def _wait_for_greeting(port: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                if sock.recv(64).startswith(b"* OK"):
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"dovecot did not answer on port {port}")


def dovecot_binary() -> str | None:
    """The dovecot executable, or None when it is not installed."""
    return shutil.which("dovecot") or (
        "/usr/sbin/dovecot" if Path("/usr/sbin/dovecot").exists() else None
    )


@contextmanager
def running_dovecot(binary: str) -> Iterator[Dovecot]:
    """A Dovecot of its own in a temp dir, stopped and removed on exit (the `dovecot`
    fixture, and benchmarks that run outside pytest)."""
    root = Path(tempfile.mkdtemp(prefix="od-dovecot-"))
    root.chmod(0o755)
    port = free_port()
    for sub in ("mail", "run", "state"):
        (root / sub).mkdir()
    shutil.chown(root / "mail", "dovecot", "dovecot")
    users = [f"u{uuid.uuid4().hex[:10]}@example.test" for _ in range(DOVECOT_USERS)]
    (root / "users").write_text("".join(f"{user}:{{PLAIN}}secret\n" for user in users))
    conf = _template().read_text().replace("@ROOT@", str(root)).replace("@PORT@", str(port))
    tls, tls_port, ca_file = _tls_settings(root)
    (root / "dovecot.conf").write_text(conf + DOVECOT_TEST_SETTINGS + tls)
    subprocess.run([binary, "-c", str(root / "dovecot.conf")], check=True, timeout=30)
    server = Dovecot(root=root, port=port, spare_users=users, tls_port=tls_port, ca_file=ca_file)
    try:
        _wait_for_greeting(port, time.monotonic() + 15)
        yield server
    finally:
        pid_file = root / "run" / "master.pid"
        if pid_file.exists():
            pid = int(pid_file.read_text().strip())
            try:
                os.kill(pid, 15)
                for _ in range(50):
                    os.kill(pid, 0)
                    time.sleep(0.1)
            except ProcessLookupError:
                pass
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def dovecot() -> Iterator[Dovecot]:
    binary = dovecot_binary()
    if binary is None:
        pytest.skip("dovecot is not installed (apt-get install -y dovecot-imapd)")
    if os.geteuid() != 0:
        pytest.skip("dovecot in tests runs as root (it switches to the dovecot user)")
    with running_dovecot(binary) as server:
        yield server


# ---------------------------------------------------------------- SMTP


@dataclass
class SmtpSink:
    """What an aiosmtpd server on loopback received; `reply_rcpt` makes it refuse."""

    host: str
    port: int
    envelopes: list[object] = field(default_factory=list)
    reply_rcpt: str | None = None  # e.g. "450 4.2.1 try later", "550 5.1.1 no such user"
    users: dict[str, str] = field(default_factory=dict)

    @property
    def messages(self) -> list[EmailMessage]:
        return [
            message_from_bytes(e.content, policy=policy.default)  # type: ignore[attr-defined]
            for e in self.envelopes
        ]

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.reply_rcpt:
            return self.reply_rcpt
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"

    def authenticate(self, server, session, envelope, mechanism, auth_data):
        from aiosmtpd.smtp import AuthResult, LoginPassword

        ok = (
            isinstance(auth_data, LoginPassword)
            and self.users.get(auth_data.login.decode()) == auth_data.password.decode()
        )
        return AuthResult(success=ok, handled=False)  # let aiosmtpd answer 235 or 535


@pytest.fixture
def smtp_server() -> Iterator[SmtpSink]:
    from aiosmtpd.controller import Controller

    sink = SmtpSink(host="127.0.0.1", port=free_port(), users={"agent": "s3cret"})
    controller = Controller(
        sink,
        hostname=sink.host,
        port=sink.port,
        authenticator=sink.authenticate,
        auth_require_tls=False,
        auth_required=False,
    )
    controller.start()
    try:
        yield sink
    finally:
        controller.stop()


# ---------------------------------------------------------------- Redis


@pytest.fixture
async def redis_prefix() -> AsyncIterator[tuple[aioredis.Redis, str]]:
    """An async Redis client and a key prefix of this test's own; its keys are deleted
    at teardown (Redis is shared with other test runs: never FLUSHDB)."""
    client = aioredis.Redis.from_url(REDIS_URL)
    prefix = f"odtest:{uuid.uuid4().hex[:12]}"
    try:
        yield client, prefix
    finally:
        keys = [key async for key in client.scan_iter(match=f"{prefix}:*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


@contextmanager
def chromium_env() -> Iterator[dict[str, str]]:
    """chromedriver's environment, with TMPDIR in a folder of its own that is removed
    after: quitting through the driver kills Chromium before it removes its singleton
    socket's folder (org.chromium.Chromium.*), which every browser test left in /tmp. Short,
    under /tmp: a socket's path is at most 107 bytes, and pytest's tmp_path under xdist is
    longer (Chromium then fails to start)."""
    folder = tempfile.mkdtemp(prefix="od-chromium-")
    try:
        yield {**os.environ, "TMPDIR": folder}
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def wait_for(check: Any, timeout: float = 20.0, every: float = 0.05) -> bool:
    """Poll `check` until true or timeout, from synchronous test code; a connection that
    is refused or not there yet counts as not yet, and so does a page element that a live
    redraw replaced between finding it and reading it (as the WebDriverWaits ignore)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return True
        except (OSError, StaleElementReferenceException):  # urllib's URLError is an OSError
            pass
        time.sleep(every)
    return False


async def eventually(predicate, timeout: float = 5.0, interval: float = 0.05) -> bool:
    """Poll `predicate` until true or timeout; returns the last answer."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(interval)
    return bool(predicate())


# ---------------------------------------------------------------- today, in Riyadh

RIYADH = ZoneInfo("Asia/Riyadh")  # the day reports and dashboards count in
DAY_MARGIN_S = 180.0  # longer than any test that opens today's tickets, then counts them


def wait_for_one_day(now: datetime, margin_s: float = DAY_MARGIN_S) -> float:
    """Seconds to wait before a test that makes today's events and then reads today's
    figures: 0, or until just past midnight in Riyadh when that is under `margin_s` away
    (the product reads the real clock, so a run across midnight would count two days)."""
    local = now.astimezone(RIYADH)
    midnight = datetime(local.year, local.month, local.day, tzinfo=RIYADH) + timedelta(days=1)
    left = (midnight - local).total_seconds()
    return left + 1.0 if left < margin_s else 0.0


@pytest.fixture
def same_riyadh_day() -> None:
    """The test runs within one day in Riyadh (it waits out a midnight that is near)."""
    time.sleep(wait_for_one_day(datetime.now(RIYADH)))


SUITE_TIMEOUT_S = 180  # pyproject.toml [tool.pytest.ini_options] timeout
_Test = TypeVar("_Test", bound=Callable[..., Any])


def within_one_riyadh_day(test: _Test) -> _Test:
    """Marks a test that makes today's events, then reads today's figures: it waits out a
    near midnight first (`same_riyadh_day`), and its timeout, which counts fixtures, has
    room for that wait."""
    test = pytest.mark.usefixtures("same_riyadh_day")(test)
    return pytest.mark.timeout(SUITE_TIMEOUT_S + DAY_MARGIN_S)(test)
