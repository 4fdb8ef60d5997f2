"""Customer text on screens and odd requests on the agents' API (issue 12, items 9 and 11):
bodies that arrive in several TCP reads, odd ticket ids, related tickets of other queues,
terminal escapes and bidi overrides on the CLI, the API and the dashboard data.

The API runs on a real aiohttp server over the real Redis; requests go through a raw
socket so that the bytes on the wire (split bodies, `..`, `%00`) are the test's own."""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from omnidesk.agents.http import MAX_JSON
from omnidesk.agents.routes import add_routes
from omnidesk.cli import TerminalSafeWriter
from omnidesk.db.writer import RecordWriter
from omnidesk.reports.dashboard import Dashboard, Viewer, env_authorize, route_hook
from omnidesk.text import display_safe
from omnidesk.webguard import install as install_security_headers
from tests.agentkit import AGENTS_CONFIG, make
from tests.clikit import omnidesk
from tests.services import within_one_riyadh_day
from tests.storekit import REDIS_URL
from tests.storekit import web as web_form
from tests.test_daemon import ROOT

TERMINAL_ATTACK = "\x1b]0;pwned\x07\x1b[2J"
SPOOFED_NAME = "invoice\u202efdp.exe"  # shows as "invoiceexe.pdf"
ARABIC = "مرحبا\u200cبكم \u200fفي\u200d الخدمة \u2067عربي\u2069"  # ZWNJ, RLM, ZWJ, an isolate
BIDI_CONTROLS = set("\u202a\u202b\u202c\u202d\u202e")


# ---------------------------------------------------------------- the helper itself


def test_display_safe_drops_escape_sequences_and_controls_keeps_layout() -> None:
    assert display_safe(TERMINAL_ATTACK + "hello") == "hello"
    assert display_safe("a\x00b\x7fc\x9bd\re") == "abcde"
    assert display_safe("one\r\ntwo\tcolumn") == "one\ntwo\tcolumn"
    assert display_safe("line\u2028break") == "line\nbreak"


def test_display_safe_neutralizes_overrides_and_keeps_arabic() -> None:
    assert display_safe(SPOOFED_NAME) == "invoicefdp.exe"
    assert display_safe("\u202bمرحبا\u202c") == "مرحبا"
    assert display_safe(ARABIC) == ARABIC  # letters, ZWNJ/ZWJ, RLM and a closed isolate stay
    # isolates only in pairs on one line: a stray PDI or an unclosed RLI goes
    assert display_safe("a\u2069b \u2067c\nd\u2069") == "ab c\nd"


def test_display_safe_visible_shows_what_was_there_and_keeps_json_json() -> None:
    shown = display_safe(TERMINAL_ATTACK + SPOOFED_NAME, visible=True)
    assert shown == "\\u001b]0;pwned\\u0007\\u001b[2Jinvoice\\u202efdp.exe"
    line = json.dumps({"subject": "x\u202ey\x9b\u2028z " + ARABIC}, ensure_ascii=False)
    safe = display_safe(line, visible=True)
    assert "\u202e" not in safe and "\x9b" not in safe and "\u2028" not in safe
    assert json.loads(safe) == json.loads(line)  # the same JSON, escaped


def test_a_stray_escape_before_text_drops_only_the_escape() -> None:
    # ESC P / X / ] / ^ / _ open a string only a BEL or ST ends: unterminated, it is text
    for opener in "PX]^_":
        text = f"\x1b{opener}ayment failed: card declined"
        assert display_safe(text) == f"{opener}ayment failed: card declined"
    assert display_safe("\x1bPayment failed\nline two") == "Payment failed\nline two"
    # terminated strings still go whole, by BEL or by ST
    assert display_safe("a\x1bPq$x\x1b\\b\x1b]0;title\x07c") == "abc"


def test_a_csv_report_keeps_its_crlf_line_endings_through_a_pipe(pg_url: str) -> None:
    config = ROOT / "queue_config.yaml"  # records with no events: a header and a total row
    argv = ["report", "--format", "csv", "--config", str(config),
            "--from", "2026-02-27", "--to", "2026-03-20"]  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "omnidesk", *argv],
        cwd=ROOT,
        capture_output=True,
        timeout=60,
        env={**os.environ, "OMNIDESK_DATABASE_URL": pg_url},
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.split(b"\r\n")
    assert len(lines) > 2 and lines[-1] == b""  # every row ends in CRLF (RFC 4180)
    assert b"\\u000d" not in done.stdout and b"\n" not in b"".join(lines)


# ---------------------------------------------------------------- the API over raw sockets


@pytest.fixture
async def api(prefix: str, tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    runtime, service, _ = make(prefix, tmp_path)
    app = web.Application()
    install_security_headers(app)
    add_routes(service)(app)
    dashboard = Dashboard(service.store, service.config())
    dashboard.authorize = lambda token: (
        Viewer("operator", None) if token == "supervisor" else env_authorize("")
    )
    route_hook(dashboard)(app)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    tokens = {a: service.tokens.create(a) for a in ("amal", "omar", "boss")}
    yield {"port": server.port, "runtime": runtime, "service": service, "tokens": tokens}
    await server.close()


async def raw_http(
    port: int,
    method: str,
    path: str,
    token: str | None = None,
    body_parts: list[bytes] | None = None,
    extra_headers: str = "",
) -> tuple[int, dict[str, str], bytes]:
    """One request written byte for byte (the path as given: no client normalizes it), the
    body in `body_parts` with a pause between writes; the response read to EOF."""
    parts = body_parts or []
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
    if token:
        head += f"Authorization: Bearer {token}\r\n"
    if parts and "Transfer-Encoding" not in extra_headers:
        head += f"Content-Type: application/json\r\nContent-Length: {sum(map(len, parts))}\r\n"
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write((head + extra_headers + "\r\n").encode("utf-8"))
    await writer.drain()
    for part in parts:
        if len(parts) > 1:
            await asyncio.sleep(0.2)  # each part its own TCP segment and server read
        writer.write(part)
        await writer.drain()
    raw = await asyncio.wait_for(reader.read(), timeout=30)
    writer.close()
    head_bytes, _, body = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head_bytes.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines)}
    return int(status_line.split()[1]), headers, body


def open_ticket(runtime: Any, text: str, email: str, **fields: str) -> str:
    (result,) = runtime.process([web_form(text, email=email, **fields)]).results
    return result.ticket_id


async def test_a_json_body_sent_in_several_writes_is_read_whole(api: dict[str, Any]) -> None:
    ticket = open_ticket(api["runtime"], "a general question", "split@example.sa")
    body = json.dumps({"text": "شكرًا، " + "we are looking into it. " * 40}).encode()
    parts = [body[:7], body[7:300], body[300:]]
    status, _, answer = await raw_http(
        api["port"], "POST", f"/v1/tickets/{ticket}/notes", api["tokens"]["amal"], parts
    )
    assert status == 201, answer
    assert json.loads(answer)["message"]["text"] == json.loads(body)["text"].strip()


async def test_a_body_over_the_limit_is_413_announced_or_chunked(api: dict[str, Any]) -> None:
    ticket = open_ticket(api["runtime"], "a general question", "big@example.sa")
    big = json.dumps({"text": "x" * (MAX_JSON + 10)}).encode()
    path, token = f"/v1/tickets/{ticket}/notes", api["tokens"]["amal"]
    status, _, answer = await raw_http(api["port"], "POST", path, token, [big])
    assert status == 413 and "error" in json.loads(answer)
    chunked = [f"{len(c):x}\r\n".encode() + c + b"\r\n" for c in (big[:70_000], big[70_000:])]
    status, _, answer = await raw_http(
        api["port"], "POST", path, token, [*chunked, b"0\r\n\r\n"],
        extra_headers="Transfer-Encoding: chunked\r\n",
    )  # fmt: skip
    assert status == 413 and "error" in json.loads(answer)
    assert api["service"].store.ticket_messages(ticket)[-1].direction.value == "in"  # no note


ODD_IDS = [
    "{ticket}:msgs",
    "{ticket}%3Amsgs",
    "..",
    "%2e%2e",
    "%2E%2E%2F%2E%2E%2Fhealthz",
    "%00",
    "%0d%0aX-Injected:%201",
    "%F0%9F%92%A5%D8%B9%D8%B1%D8%A8%D9%8A",
    "%E2%80%AEexe.pdf",
    "%FF%FE",
    "a" * 4000,
    "OD-2026-000001%20",
    "*",
]
ACTIONS = ("reply", "notes", "transfer", "pending", "resolve", "reopen", "merge", "tags")
ID_ROUTES = [
    ("GET", "/v1/tickets/{id}"),
    *[("POST", f"/v1/tickets/{{id}}/{action}") for action in (*ACTIONS, "priority")],
]
BODIES = {
    "reply": {"text": "hi"},
    "notes": {"text": "hi"},
    "transfer": {"queue": "complaints", "reason": "r"},
    "merge": {"into": "{ticket}:msgs"},
    "tags": {"add": ["x"]},
    "priority": {"priority": "high"},
}


async def test_odd_ticket_ids_get_404_or_400_as_json_on_every_route(
    api: dict[str, Any],
) -> None:
    ticket = open_ticket(api["runtime"], "a general question", "odd@example.sa")
    token = api["tokens"]["amal"]
    for method, route in ID_ROUTES:
        action = route.rsplit("/", 1)[-1]
        body = json.dumps(BODIES.get(action, {})).replace("{ticket}", ticket).encode()
        for odd in ODD_IDS:
            path = route.format(id=odd.format(ticket=ticket))
            parts = [body] if method == "POST" else None
            status, headers, answer = await raw_http(api["port"], method, path, token, parts)
            assert status in (400, 404), (path, status, answer[:300])
            assert headers["content-type"].startswith("application/json"), (path, headers)
            assert "error" in json.loads(answer), path
    # merging a real ticket into an odd one is refused the same way
    status, _, answer = await raw_http(
        api["port"], "POST", f"/v1/tickets/{ticket}/merge", token,
        [json.dumps({"into": f"{ticket}:msgs"}).encode()],
    )  # fmt: skip
    assert status == 404 and "error" in json.loads(answer)
    for odd in ("%00", "x:y", "..", "a" * 4000):
        status, _, _ = await raw_http(api["port"], "GET", f"/csat/{odd}")
        assert status == 404


async def test_related_tickets_of_other_queues_show_no_subject(api: dict[str, Any]) -> None:
    runtime, tokens, port = api["runtime"], api["tokens"], api["port"]
    email = "both@example.sa"
    general = open_ticket(runtime, "a question about my licence", email, subject="licence")
    fraud = open_ticket(
        runtime, "complaint: fraud at the branch", email, subject="Fraud report: cashier 7"
    )
    # amal works general only: the complaint is listed as an id, nothing more
    status, _, answer = await raw_http(port, "GET", f"/v1/tickets/{general}", tokens["amal"])
    assert status == 200
    view = json.loads(answer)
    assert view["other_tickets"] == [{"id": fraud, "visible": False, "restricted": True}]
    assert b"Fraud" not in answer and b"complaints" not in answer
    # omar works complaints only: the same the other way round
    status, _, answer = await raw_http(port, "GET", f"/v1/tickets/{fraud}", tokens["omar"])
    assert status == 200
    assert json.loads(answer)["other_tickets"] == [
        {"id": general, "visible": False, "restricted": True}
    ]
    assert b"licence" not in answer.split(b'"other_tickets"')[1]
    # the supervisor of both queues sees both in full
    status, _, answer = await raw_http(port, "GET", f"/v1/tickets/{general}", tokens["boss"])
    (other,) = json.loads(answer)["other_tickets"]
    assert other["subject"] == "Fraud report: cashier 7" and other["visible"] is True


async def test_api_and_dashboard_show_customer_text_without_overrides(
    api: dict[str, Any],
) -> None:
    runtime, port = api["runtime"], api["port"]
    text = f"{ARABIC}\nattached: {SPOOFED_NAME} {TERMINAL_ATTACK}done"
    ticket = open_ticket(runtime, text, "rlo@example.sa", subject=SPOOFED_NAME)
    stored = api["service"].store.get_ticket(ticket)
    assert stored is not None and stored.subject == SPOOFED_NAME  # kept as received
    status, _, answer = await raw_http(port, "GET", f"/v1/tickets/{ticket}", api["tokens"]["amal"])
    assert status == 200
    view = json.loads(answer)
    assert view["ticket"]["subject"] == "invoicefdp.exe"
    (message,) = view["messages"]
    assert message["text"] == f"{ARABIC}\nattached: invoicefdp.exe done"
    status, _, answer = await raw_http(port, "GET", "/v1/tickets", api["tokens"]["amal"])
    assert "invoicefdp.exe" in {t["subject"] for t in json.loads(answer)["tickets"]}
    service = api["service"]
    handed = service.assigner.hand_to(ticket, service.agent("amal"), "boss", stored.queue)
    assert handed.outcome == "assigned"
    status, _, answer = await raw_http(port, "GET", "/v1/dashboard.json", "supervisor")
    assert status == 200
    held = {
        h["ticket"]: h["subject"] for a in json.loads(answer)["agents"]["list"] for h in a["held"]
    }
    assert held[ticket] == "invoicefdp.exe"
    for controls in (BIDI_CONTROLS, {"\x1b", "\x07"}):
        assert not controls & set(answer.decode("utf-8"))


# ---------------------------------------------------------------- the command line


def write_config(prefix: str, tmp: Path) -> Path:
    path = tmp / "queue_config.yaml"
    service = f"service:\n  redis_url: {REDIS_URL}\n  key_prefix: {prefix}\n  state_dir: {tmp}\n"
    path.write_text(service + AGENTS_CONFIG.read_text("utf-8"), "utf-8")
    return path


def cli(config: Path, *args: str, database: str | None = None) -> str:
    """The command's stdout, in-process (tests/clikit.py): as a pipe, not a terminal."""
    env = {"OMNIDESK_DATABASE_URL": database} if database else None
    done = omnidesk(*args, "--config", str(config), env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_cli_prints_no_escape_or_override_from_customer_text(
    prefix: str, tmp_path: Path, pg_url: str
) -> None:
    runtime, _, _ = make(prefix, tmp_path)
    subject = TERMINAL_ATTACK + SPOOFED_NAME
    body = f"{ARABIC}\n{TERMINAL_ATTACK}\x9b31m red\tcell"
    ticket = open_ticket(runtime, body, "tty@example.sa", subject=subject)
    config = write_config(prefix, tmp_path)
    asyncio.run(RecordWriter(runtime.store, pg_url).drain())  # lists come from PostgreSQL
    outputs = {
        "tickets": cli(config, "tickets", database=pg_url),
        "show": cli(config, "show", ticket),
        "agent show": cli(config, "agent", "show", ticket, "--as", "amal"),
    }
    for name, out in outputs.items():
        assert not {"\x1b", "\x07", "\x9b", *BIDI_CONTROLS} & set(out), name
        assert "مرحبا" in out or name == "tickets", name
    assert "\\u001b]0;pwned\\u0007" in outputs["show"]  # shown, not obeyed
    assert "invoice\\u202efdp.exe" in outputs["tickets"]  # the spoof is visible as such
    assert ARABIC in outputs["show"] and "red\tcell" in outputs["show"]
    # the JSON form is the same data, escaped: nothing lost
    (line,) = cli(config, "tickets", "--json", database=pg_url).splitlines()
    assert json.loads(line)["subject"] == subject
    assert "\u202e" not in line
    shown = json.loads(cli(config, "show", ticket, "--json"))
    assert shown["ticket"]["subject"] == subject and shown["messages"][0]["text"] == body


@within_one_riyadh_day
def test_html_report_shows_a_csat_comment_without_overrides(
    prefix: str, tmp_path: Path, pg_url: str
) -> None:
    """The comment reaches the report the way every comment does: the events stream, the
    records writer, PostgreSQL, the report's SQL."""
    import asyncio

    from omnidesk.agents import csat
    from omnidesk.db.records import Records
    from omnidesk.db.writer import RecordWriter
    from omnidesk.reports.fold import Context
    from omnidesk.reports.html import as_html
    from omnidesk.reports.source import figures_for

    runtime, service, _ = make(prefix, tmp_path)
    ticket = open_ticket(runtime, "a general question", "csat@example.sa")
    service.desk.resolve(service.agent("amal"), ticket)
    store = service.store
    token = store.r.hget(store.key("ticket", ticket), "csat_token")
    comment = f"see {SPOOFED_NAME} {TERMINAL_ATTACK}شكراً"
    assert csat.record(store, token, 4, comment, "web")[0] == "recorded"
    asyncio.run(RecordWriter(store, pg_url).drain())
    config = service.config()
    ctx = Context.from_config(config)
    today = datetime.now(ctx.tz).date()
    records = Records(pg_url)
    try:
        result = figures_for(records.connection, config, ctx, today, today, {})
    finally:
        records.close()
    assert result["csat_comments"]
    page = as_html(result)
    assert "see invoicefdp.exe شكراً" in page
    assert not {*BIDI_CONTROLS, "\x1b", "\x07"} & set(page)


@pytest.mark.slow  # CLI subprocesses
def test_quarantine_raw_payload_is_escaped_on_a_terminal_and_whole_in_a_pipe(
    prefix: str, tmp_path: Path
) -> None:
    import os
    import pty

    from omnidesk.model import Channel, RawPayload

    runtime, _, _ = make(prefix, tmp_path)
    payload = f"not json {TERMINAL_ATTACK}{SPOOFED_NAME}".encode()
    item = RawPayload(
        channel=Channel.WEB, account="site", payload=payload, received_at=datetime.now(UTC)
    )
    runtime.process([item])
    (kept,) = runtime.quarantine.list()
    config = write_config(prefix, tmp_path)
    command = [sys.executable, "-m", "omnidesk", "quarantine", "--config", str(config)]
    piped = subprocess.run([*command, "show", kept.id, "--raw"], cwd=ROOT, capture_output=True)
    assert piped.returncode == 0 and piped.stdout == payload  # to a file: the bytes as kept
    controller, terminal = pty.openpty()
    shown = subprocess.run(
        [*command, "show", kept.id, "--raw"], cwd=ROOT, stdout=terminal, timeout=60
    )
    os.close(terminal)
    out = b""
    while chunk := _read_pty(controller):
        out += chunk
    os.close(controller)
    assert shown.returncode == 0
    text = out.decode("utf-8")
    assert "not json \\u001b]0;pwned" in text and "invoice\\u202efdp.exe" in text
    assert not {"\x1b", "\x07", *BIDI_CONTROLS} & set(text)


def _read_pty(fd: int) -> bytes:
    import os

    try:
        return os.read(fd, 65536)
    except OSError:  # EIO: the other end is closed and drained
        return b""


def test_every_way_of_writing_to_the_terminal_is_cleaned() -> None:
    """`print` uses write(); a library may use writelines(): both pass display_safe."""
    out = io.StringIO()
    writer = TerminalSafeWriter(out)
    writer.write("\x1b]0;pwned\x07subject\n")
    writer.writelines(["\x1b[2Jcleared\n", "fine\r\n"])
    writer.flush()
    assert "\x1b" not in out.getvalue() and "\x07" not in out.getvalue()
    assert out.getvalue().endswith("fine\r\n")  # a CRLF line ending stays
