"""The console's two new feeds against `omnidesk run` in a subprocess (maildir intake, real
Redis) and headless Chromium: an e-mail's image shown by an <img> and its PDF saved byte for
byte; an EventSource (cookie from POST /v1/session, no header) that sees a colleague's
transfer within 2 s and nothing of another queue; and the daemon stops at once with the
stream still open."""

from __future__ import annotations

import json
import struct
import time
import urllib.request
import zlib
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

import pytest

from tests.services import wait_for
from tests.test_agents_console import browser, cli, daemon  # noqa: F401 (fixtures)
from tests.test_daemon import DaemonProc

pytestmark = pytest.mark.slow


def png(width: int, height: int) -> bytes:
    """A real PNG (a red rectangle) the browser can decode."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )  # fmt: skip


IMAGE = png(12, 7)
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def drop_mail(proc: DaemonProc, name: str, subject: str) -> None:
    msg = EmailMessage()
    msg["From"] = f"{name} <{name}@example.sa>"
    msg["To"] = "care@mc.gov.sa"
    msg["Subject"] = subject
    msg["Date"] = format_datetime(datetime.now(UTC))
    msg["Message-ID"] = f"<{name}-{time.time_ns()}@example.sa>"
    msg.set_content("مرفق صورة الإيصال والفاتورة")
    msg.add_attachment(IMAGE, maintype="image", subtype="png", filename="إيصال.png")
    msg.add_attachment(PDF, maintype="application", subtype="pdf", filename="invoice.pdf")
    tmp = proc.drop / "new" / f".{name}.tmp"
    tmp.write_bytes(msg.as_bytes())
    tmp.rename(proc.drop / "new" / f"{name}.eml")


def call(proc: DaemonProc, method: str, path: str, token: str, body: Any = None) -> Any:
    req = urllib.request.Request(
        f"http://127.0.0.1:{proc.port}{path}",
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=5) as r:
        return r.status, dict(r.headers), r.read()


def test_console_feeds_in_a_real_browser(daemon: DaemonProc, browser: Any) -> None:
    amal = cli(daemon.config, "agents", "token", "amal")
    sara = cli(daemon.config, "agents", "token", "sara")
    omar = cli(daemon.config, "agents", "token", "omar")
    drop_mail(daemon, "huda", "فاتورة الكهرباء")
    store = daemon.store()
    assert wait_for(lambda: store.ticket_count() == 1), daemon.logs()
    (ticket,) = store.list_tickets()

    _, _, raw = call(daemon, "GET", f"/v1/tickets/{ticket.id}/attachments", amal)
    items = {a["filename"]: a for a in json.loads(raw)["attachments"]}
    status, headers, data = call(daemon, "GET", items["invoice.pdf"]["url"], amal)
    assert status == 200 and data == PDF and headers["Content-Type"] == "application/pdf"

    browser.get(f"http://127.0.0.1:{daemon.port}/console")
    browser.set_script_timeout(10)
    # what the console does at login: a session cookie, then an EventSource and an <img>
    # that send it (neither can send an Authorization header)
    started = browser.execute_async_script(
        """
        const [token, src, done] = arguments;
        window.__events = [];
        fetch("/v1/session", {method: "POST", headers: {Authorization: "Bearer " + token}})
          .then((r) => {
            const es = new EventSource("/v1/events/stream");
            for (const kind of ["ticket_opened", "transferred", "noted"]) {
              es.addEventListener(kind, (e) => window.__events.push(JSON.parse(e.data)));
            }
            es.onopen = () => {
              const img = new Image();
              img.onload = () => done([r.status, img.naturalWidth, img.naturalHeight]);
              img.onerror = () => done([r.status, -1, -1]);
              img.src = src;
            };
          });
        """,
        amal,
        items["إيصال.png"]["url"],
    )
    assert started == [201, 12, 7]

    # omar notes his own complaint (not amal's queue); sara transfers amal's ticket
    drop_mail(daemon, "khalid", "شكوى على متجر")
    assert wait_for(lambda: store.ticket_count() == 2), daemon.logs()
    complaint = next(t for t in store.list_tickets() if t.queue == "complaints")
    call(daemon, "POST", f"/v1/tickets/{complaint.id}/notes", omar, {"text": "سري"})
    sent = time.monotonic()
    status, _, _ = call(daemon, "POST", f"/v1/tickets/{ticket.id}/transfer", sara,
                        {"queue": "quiet", "reason": "الاختصاص"})  # fmt: skip
    assert status == 200

    def transferred() -> Any:
        events = browser.execute_script("return window.__events")
        return next((e for e in events if e["type"] == "transferred"), None)

    assert wait_for(lambda: transferred() is not None, timeout=2.0), browser.execute_script(
        "return window.__events"
    )
    assert time.monotonic() - sent < 2.0
    assert transferred()["ticket"] == ticket.id and transferred()["actor"] == "sara"
    events = browser.execute_script("return window.__events")
    assert all(e["ticket"] != complaint.id for e in events), events

    began = time.monotonic()
    assert daemon.stop() == 0  # an open stream does not hold the daemon up
    assert time.monotonic() - began < 10
