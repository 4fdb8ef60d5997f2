"""Attachments an agent opens: an e-mail with a JPEG, a PDF, an Arabic-named file, an SVG,
an HTML file and a `<script>` file name, taken in through the real intake (raw archive,
Redis), listed and served over the real HTTP API; access as for the ticket; the size cap;
and the same after the ticket has left Redis for PostgreSQL."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from connectors.telegram.connector import TelegramConnector
from connectors.whatsapp.connector import WhatsAppConnector
from omnidesk.agents.attachments import content_disposition, safe_filename, serve_as
from omnidesk.agents.routes import add_routes
from omnidesk.db.evict import Eviction
from omnidesk.db.records import Records
from omnidesk.db.writer import RecordWriter
from omnidesk.model import Channel, RawPayload
from tests.agentkit import make
from tests.botapi import GOOD_TOKEN, BotApi, botapi  # noqa: F401 (the fixture)
from tests.storekit import telegram
from tests.test_telegram import TOKEN_ENV, make_config
from tests.test_whatsapp import FakeGraph, graph, wa_message, wa_raw  # noqa: F401
from tests.test_whatsapp import config as wa_config

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + os.urandom(3000)
PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\n" + os.urandom(2000) + b"\n%%EOF\n"
ARABIC_NAME = "فاتورة الكهرباء.pdf"
ARABIC = b"%PDF-1.7\n" + os.urandom(500)
SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
HTML = b"<html><body><script>alert(document.cookie)</script></body></html>"
SCRIPT_NAME = '<img src=x onerror="alert(1)"><script>.txt'
SCRIPT_TEXT = "ملاحظة: الفاتورة مرفقة\n".encode()


def complaint_mail(message_id: str = "inv-1@example.sa") -> RawPayload:
    msg = EmailMessage()
    msg["From"] = "Umm Khalid <umm.khalid@example.sa>"
    msg["To"] = "care@mc.gov.sa"
    msg["Subject"] = "فاتورة خاطئة"
    msg["Date"] = format_datetime(datetime.now(UTC))
    msg["Message-ID"] = f"<{message_id}>"
    msg.set_content("السلام عليكم، أرفقت الفاتورة وصورة الإيصال.")
    msg.add_attachment(JPEG, maintype="image", subtype="jpeg", filename="receipt.jpg")
    msg.add_attachment(PDF, maintype="application", subtype="pdf", filename="invoice.pdf")
    msg.add_attachment(ARABIC, maintype="application", subtype="pdf", filename=ARABIC_NAME)
    msg.add_attachment(SVG, maintype="image", subtype="svg+xml", filename="logo.svg")
    msg.add_attachment(HTML, maintype="text", subtype="html", filename="page.html")
    msg.add_attachment(SCRIPT_TEXT, maintype="text", subtype="plain", filename=SCRIPT_NAME)
    return RawPayload(
        channel=Channel.EMAIL,
        account="care",
        payload=msg.as_bytes(),
        received_at=datetime.now(UTC),
        source=f"imap:INBOX:{message_id}",
    )


@pytest.fixture
async def api(prefix: str, tmp_path: Path, pg_url: str) -> AsyncIterator[dict[str, Any]]:
    records = Records(pg_url)
    runtime, service, _ = make(prefix, tmp_path, records=records)
    app = web.Application()
    add_routes(service)(app)
    client = TestClient(TestServer(app))
    await client.start_server()
    tokens = {a: service.tokens.create(a) for a in ("amal", "omar")}
    yield {"client": client, "service": service, "runtime": runtime, "tokens": tokens,
           "records": records, "pg_url": pg_url}  # fmt: skip
    await client.close()
    records.close()


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def by_name(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {a["filename"]: a for a in items}


async def test_email_attachments_listed_served_and_scoped(api: dict[str, Any]) -> None:
    client, runtime, tokens = api["client"], api["runtime"], api["tokens"]
    tid = runtime.process([complaint_mail()]).results[0].ticket_id
    h = auth(tokens["amal"])  # the "general" queue's agent
    r = await client.get(f"/v1/tickets/{tid}/attachments", headers=h)
    assert r.status == 200
    listed = by_name((await r.json())["attachments"])
    assert set(listed) == {"receipt.jpg", "invoice.pdf", ARABIC_NAME, "logo.svg", "page.html",
                           SCRIPT_NAME}  # fmt: skip
    jpeg = listed["receipt.jpg"]
    assert jpeg["content_type"] == "image/jpeg" and jpeg["size"] == len(JPEG)
    assert jpeg["available"] is True and jpeg["url"].endswith(f"/attachments/{jpeg['id']}")
    assert jpeg["message_id"] and jpeg["id"].startswith(jpeg["message_id"] + ".")

    # the ticket view lists the same attachments on the message, with their URLs
    view = await (await client.get(f"/v1/tickets/{tid}", headers=h)).json()
    (message,) = view["messages"]
    assert {a["id"]: a["url"] for a in message["attachments"]} == {
        a["id"]: a["url"] for a in listed.values()
    }

    for name, data, ctype in (
        ("receipt.jpg", JPEG, "image/jpeg"),
        ("invoice.pdf", PDF, "application/pdf"),
    ):
        r = await client.get(listed[name]["url"], headers=h)
        assert r.status == 200 and await r.read() == data, name
        assert r.headers["Content-Type"] == ctype
        assert r.headers["Content-Disposition"] == (
            f"inline; filename=\"{name}\"; filename*=UTF-8''{name}"
        )
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        assert r.headers["Content-Security-Policy"].startswith("sandbox")

    r = await client.get(listed[ARABIC_NAME]["url"], headers=h)
    assert (
        r.status == 200
        and hashlib.sha256(await r.read()).digest() == hashlib.sha256(ARABIC).digest()
    )
    disposition = r.headers["Content-Disposition"]
    assert f"filename*=UTF-8''{quote(ARABIC_NAME, safe='')}" in disposition
    assert disposition.isascii()  # the ASCII fallback stands in for the Arabic letters

    # scripts-capable types never inline: a file to save, as octet-stream
    for name, data in (("logo.svg", SVG), ("page.html", HTML)):
        r = await client.get(listed[name]["url"], headers=h)
        assert r.status == 200 and await r.read() == data
        assert r.headers["Content-Type"] == "application/octet-stream", name
        assert r.headers["Content-Disposition"].startswith("attachment;"), name
        assert r.headers["X-Content-Type-Options"] == "nosniff"

    r = await client.get(listed[SCRIPT_NAME]["url"], headers=h)
    assert r.status == 200 and await r.read() == SCRIPT_TEXT
    assert r.headers["Content-Type"] == "text/plain; charset=utf-8"
    disposition = r.headers["Content-Disposition"]
    assert "<" not in disposition and ">" not in disposition and '"alert' not in disposition
    assert disposition.startswith('inline; filename="_img src_x onerror__alert(1)___script_.txt"')

    r = await client.get(listed["receipt.jpg"]["url"] + "?download=1", headers=h)
    assert r.headers["Content-Type"] == "application/octet-stream"
    assert r.headers["Content-Disposition"].startswith("attachment;")

    # an agent of another queue gets what he gets for the ticket itself: 403
    o = auth(tokens["omar"])
    assert (await client.get(f"/v1/tickets/{tid}", headers=o)).status == 403
    assert (await client.get(f"/v1/tickets/{tid}/attachments", headers=o)).status == 403
    assert (await client.get(listed["invoice.pdf"]["url"], headers=o)).status == 403
    assert (await client.get(listed["invoice.pdf"]["url"])).status == 401
    # unknown ids: 404, never a file system path
    for bad in (f"{jpeg['message_id']}.99", "..%2F..%2Fetc%2Fpasswd", "M-1-000000000000.0"):
        r = await client.get(f"/v1/tickets/{tid}/attachments/{bad}", headers=h)
        assert r.status == 404, bad
    r = await client.get(f"/v1/tickets/OD-1999-000001/attachments/{jpeg['id']}", headers=h)
    assert r.status == 404


async def test_over_the_cap_is_413(api: dict[str, Any]) -> None:
    client, runtime, service = api["client"], api["runtime"], api["service"]
    tid = runtime.process([complaint_mail("cap@example.sa")]).results[0].ticket_id
    h = auth(api["tokens"]["amal"])
    listed = by_name((await (await client.get(f"/v1/tickets/{tid}/attachments", headers=h))
                      .json())["attachments"])  # fmt: skip
    data = service.config()
    capped = data.model_copy(update={"service": data.service.model_copy(
        update={"attachments": data.service.attachments.model_copy(
            update={"max_serve_bytes": 2500})})})  # fmt: skip
    service.config = lambda: capped
    r = await client.get(listed["receipt.jpg"]["url"], headers=h)  # 3011 bytes
    assert r.status == 413
    assert "2500" in (await r.json())["error"]
    r = await client.get(listed["invoice.pdf"]["url"], headers=h)  # under it
    assert r.status == 200 and await r.read() == PDF


async def test_an_evicted_ticket_still_serves(api: dict[str, Any]) -> None:
    client, runtime, service = api["client"], api["runtime"], api["service"]
    store = runtime.store
    tid = runtime.process([complaint_mail("old@example.sa")]).results[0].ticket_id
    amal = service.agent("amal")
    service.desk.resolve(amal, tid)
    await RecordWriter(store, api["pg_url"]).drain()
    window = timedelta(days=7)
    later = datetime.now(UTC) + window + timedelta(days=1)
    assert Eviction(store, api["records"], reopen_window=window).run(later).evicted == [tid]
    assert store.get_ticket(tid) is None
    h = auth(api["tokens"]["amal"])
    view = await (await client.get(f"/v1/tickets/{tid}", headers=h)).json()
    assert view["ticket"]["live"] is False
    r = await client.get(f"/v1/tickets/{tid}/attachments", headers=h)
    listed = by_name((await r.json())["attachments"])
    assert listed["receipt.jpg"]["available"] is True
    r = await client.get(listed["receipt.jpg"]["url"], headers=h)
    assert r.status == 200 and await r.read() == JPEG
    o = auth(api["tokens"]["omar"])
    assert (await client.get(listed["receipt.jpg"]["url"], headers=o)).status == 403


async def test_a_pruned_raw_message_lists_its_attachments_as_gone(api: dict[str, Any]) -> None:
    client, runtime = api["client"], api["runtime"]
    raw = complaint_mail("pruned@example.sa")
    tid = runtime.process([raw]).results[0].ticket_id
    runtime.archive.path(raw.sha256).unlink()  # as archive retention or an erasure does
    h = auth(api["tokens"]["amal"])
    items = (await (await client.get(f"/v1/tickets/{tid}/attachments", headers=h)).json())[
        "attachments"
    ]
    assert len(items) == 6 and not any(i["available"] for i in items)
    assert "no longer kept" in items[0]["reason"]
    r = await client.get(items[0]["url"], headers=h)
    got = await r.json()
    assert r.status == 404 and "no longer kept" in got["error"]
    assert got["code"] == "attachment_unavailable"  # the console words it


async def test_chat_attachments_listed_as_not_available(api: dict[str, Any]) -> None:
    client, runtime = api["client"], api["runtime"]
    photo = [{"file_id": "AgAC-photo", "file_unique_id": "u1", "width": 90, "height": 90,
              "file_size": 1234}]  # fmt: skip
    raw = telegram(1, 555, 7, "", photo=photo, caption="صورة الإيصال")
    tid = runtime.process([raw]).results[0].ticket_id
    h = auth(api["tokens"]["amal"])
    (item,) = (await (await client.get(f"/v1/tickets/{tid}/attachments", headers=h)).json())[
        "attachments"
    ]
    assert item["available"] is False and "telegram connector 'bot'" in item["reason"]
    assert item["reason_code"] == "connector_not_running"  # for the console to word it
    assert item["reason_params"] == {"channel": "telegram", "account": "bot"}
    r = await client.get(item["url"], headers=h)
    assert r.status == 404 and "not available" in (await r.json())["error"]


async def test_a_telegram_photo_is_fetched_by_its_file_id(
    api: dict[str, Any],
    botapi: BotApi,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client, runtime, service = api["client"], api["runtime"], api["service"]
    monkeypatch.setenv(TOKEN_ENV, GOOD_TOKEN)
    botapi.files["AgAC-photo"] = JPEG
    config = make_config(botapi, base_file_url=botapi.base_file_url)
    connector = TelegramConnector(config)
    await connector.initialize()
    service.downloaders = lambda: {("telegram", "bot"): connector.download}
    photo = [{"file_id": "AgAC-photo", "file_unique_id": "u1", "width": 90, "height": 90,
              "file_size": len(JPEG)}]  # fmt: skip
    gone = [{"file_id": "AgAC-expired", "file_unique_id": "u2", "width": 9, "height": 9}]
    tid = (
        runtime.process([telegram(2, 556, 8, "", photo=photo, caption="الإيصال")])
        .results[0]
        .ticket_id
    )
    runtime.process([telegram(3, 556, 9, "", photo=gone)])
    h = auth(api["tokens"]["amal"])
    items = (await (await client.get(f"/v1/tickets/{tid}/attachments", headers=h)).json())[
        "attachments"
    ]
    assert [i["available"] for i in items] == [True, True]
    r = await client.get(items[0]["url"], headers=h)
    assert r.status == 200 and await r.read() == JPEG
    assert r.headers["Content-Type"] == "image/jpeg"
    assert r.headers["Content-Disposition"].startswith('inline; filename="attachment.jpg"')
    assert ("getFile", {"file_id": "AgAC-photo"}) in botapi.calls
    r = await client.get(items[1]["url"], headers=h)  # the Bot API no longer has it
    assert r.status == 404 and "invalid file_id" in (await r.json())["error"].lower()
    assert GOOD_TOKEN not in (await r.text())
    assert (await client.get(items[0]["url"], headers=auth(api["tokens"]["omar"]))).status == 403
    await connector.shutdown()


async def test_session_cookie_stands_in_for_the_token_on_gets(api: dict[str, Any]) -> None:
    client, runtime, service = api["client"], api["runtime"], api["service"]
    tid = runtime.process([complaint_mail("cookie@example.sa")]).results[0].ticket_id
    token = api["tokens"]["amal"]
    r = await client.post("/v1/session", headers=auth(token))
    assert r.status == 201
    cookie = r.cookies["omnidesk_session"]
    assert cookie.value.startswith("odc_") and token not in cookie.value
    assert cookie["httponly"] and cookie["samesite"] == "Strict" and cookie["path"] == "/v1/"
    jar = {"omnidesk_session": cookie.value}
    client.session.cookie_jar.clear()
    r = await client.get(f"/v1/tickets/{tid}/attachments", cookies=jar)
    assert r.status == 200
    url = by_name((await r.json())["attachments"])["receipt.jpg"]["url"]
    assert (await client.get(url, cookies=jar)).status == 200
    # only the read-only browser routes take it: an action still needs the token
    r = await client.post(f"/v1/tickets/{tid}/notes", json={"text": "x"}, cookies=jar)
    assert r.status == 401
    service.tokens.revoke("amal")  # the cookie dies with its token
    assert (await client.get(url, cookies=jar)).status == 401


def test_names_and_types() -> None:
    assert safe_filename("../../etc/passwd") == "_.._etc_passwd"
    assert safe_filename("a\u202egnp.exe") == "agnp.exe"  # no bidi override
    assert safe_filename("", "application/pdf") == "attachment.pdf"
    assert safe_filename("...") == "attachment"
    arabic = content_disposition("تقرير.pdf", False)
    assert arabic.startswith("attachment; filename=\"attachment.pdf\"; filename*=UTF-8''%D8")
    assert serve_as("image/png", b"<html>") is None  # bytes unlike the declared type
    assert serve_as("image/svg+xml", b"<svg/>") is None
    assert serve_as("image/webp", b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "image/webp"


def test_the_extractor_picks_the_part_by_its_sha256() -> None:
    from connectors.email.extract import extract

    raw = complaint_mail().payload
    found = extract(raw, hashlib.sha256(PDF).hexdigest())
    assert found is not None and found.data == PDF
    assert extract(raw, hashlib.sha256(JPEG).hexdigest(), index=0).data == JPEG
    assert extract(raw, hashlib.sha256(JPEG).hexdigest(), index=4).data == JPEG  # by hash
    assert extract(raw, "0" * 64) is None


def test_cli_lists_and_saves_an_attachment(
    prefix: str, tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.storekit import REDIS_URL
    from tests.test_agents_cli import AGENTS_CONFIG, run

    monkeypatch.setenv("OMNIDESK_DATABASE_URL", pg_url)  # what the CLI reads the records from
    records = Records(pg_url)
    runtime, service_, _ = make(prefix, tmp_path, records=records)
    tid = runtime.process([complaint_mail("cli@example.sa")]).results[0].ticket_id
    config = tmp_path / "queue_config.yaml"
    service = (
        f"service:\n  redis_url: {REDIS_URL}\n  key_prefix: {prefix}\n"
        f"  state_dir: {tmp_path / 'state'}\n"
    )
    config.write_text(service + AGENTS_CONFIG.read_text("utf-8"), "utf-8")
    done = run(config, "show", tid)
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stdout.splitlines() if "[attachment " in line]
    assert len(lines) == 6 and any(ARABIC_NAME in line for line in lines)
    jpeg_id = next(line for line in lines if "receipt.jpg" in line).split()[1].rstrip("]")
    out = tmp_path / "saved.jpg"
    done = run(config, "show", tid, "--save-attachment", jpeg_id, "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert out.read_bytes() == JPEG
    done = run(config, "show", tid, "--save-attachment", "M-1-000000000000.0", "--out", str(out))
    assert done.returncode == 2 and "no attachment" in done.stderr
    assert "Traceback" not in done.stderr
    done = run(config, "agent", "show", tid, "--as", "amal")
    assert done.returncode == 0 and "receipt.jpg" in done.stdout

    # once the ticket has left Redis, the same from PostgreSQL and the archive
    service_.desk.resolve(service_.agent("amal"), tid)
    asyncio.run(RecordWriter(runtime.store, pg_url).drain())
    later = datetime.now(UTC) + timedelta(days=8)
    assert Eviction(runtime.store, records, reopen_window=timedelta(days=7)).run(later).evicted
    out.unlink()
    done = run(config, "show", tid, "--save-attachment", jpeg_id, "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert out.read_bytes() == JPEG
    records.close()


async def test_a_whatsapp_image_is_fetched_by_its_media_id(
    api: dict[str, Any],
    graph: FakeGraph,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client, runtime, service = api["client"], api["runtime"], api["service"]
    for name, value in (("TEST_WA_VERIFY", "v"), ("TEST_WA_SECRET", "s"),
                        ("TEST_WA_TOKEN", "graph-token")):  # fmt: skip
        monkeypatch.setenv(name, value)
    graph.media["1001"] = JPEG
    graph.media["1002"] = b"\xff\xd8\xff other bytes than announced"
    connector = WhatsAppConnector(wa_config(graph.base, name="wa"))
    service.downloaders = lambda: {("whatsapp", "wa"): connector.download}
    sha = hashlib.sha256(JPEG).hexdigest()
    image = {"id": "1001", "mime_type": "image/jpeg", "sha256": sha, "caption": "الإيصال"}
    forged = {"id": "1002", "mime_type": "image/jpeg", "sha256": sha}
    missing = {"id": "1003", "mime_type": "image/jpeg"}
    tid = runtime.process([wa_raw(wa_message("wamid.A1", "image", image))]).results[0].ticket_id
    runtime.process([wa_raw(wa_message("wamid.A2", "image", forged, 1714550500))])
    runtime.process([wa_raw(wa_message("wamid.A3", "image", missing, 1714550600))])
    h = auth(api["tokens"]["amal"])
    items = (await (await client.get(f"/v1/tickets/{tid}/attachments", headers=h)).json())[
        "attachments"
    ]
    assert len(items) == 3 and all(i["available"] for i in items)
    r = await client.get(items[0]["url"], headers=h)
    assert r.status == 200 and await r.read() == JPEG
    assert r.headers["Content-Type"] == "image/jpeg"
    r = await client.get(items[1]["url"], headers=h)  # not the bytes WhatsApp announced
    assert r.status == 404 and "other bytes" in (await r.json())["error"]
    r = await client.get(items[2]["url"], headers=h)
    assert r.status == 404 and "Unsupported get request" in (await r.json())["error"]
    assert graph.auth and all(a == "Bearer graph-token" for a in graph.auth)
    assert "graph-token" not in await r.text()
    await connector.shutdown()


async def test_a_web_forms_uploaded_file_is_served_and_a_listed_one_never(
    prefix: str, tmp_path: Path, pg_url: str
) -> None:
    """A PDF uploaded with a multipart post is served to the agent byte for byte; a JSON
    post that lists an attachment with that file's sha256 (anyone can copy a digest) gets
    nothing served: only what its own post carried is marked at intake."""
    import aiohttp

    from tests.test_web_form import open_site

    site = await open_site(tmp_path, prefix, pg_url)  # the real form, same Redis and state
    _, service, _ = make(prefix, tmp_path)
    app = web.Application()
    add_routes(service)(app)
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        form = aiohttp.FormData()
        form.add_field("message", "سؤال عن الفاتورة المرفقة")
        form.add_field("email", "uploader@example.sa")
        form.add_field("invoice", PDF, filename="invoice.pdf", content_type="application/pdf")
        status, _, posted = await site.post(form)
        assert status == 201, posted
        digest = hashlib.sha256(PDF).hexdigest()
        claim = {"message": "أرسلت الفاتورة", "email": "thief@example.sa",
                 "attachments": [{"filename": "invoice.pdf", "content_type": "application/pdf",
                                  "size": len(PDF), "sha256": digest}]}  # fmt: skip
        status, _, claimed = await site.post(claim)
        assert status == 201, claimed
        h = auth(service.tokens.create("amal"))
        r = await client.get(f"/v1/tickets/{posted['ticket']}/attachments", headers=h)
        assert r.status == 200, await r.text()
        (item,) = (await r.json())["attachments"]
        assert item["available"] is True and item["filename"] == "invoice.pdf"
        r = await client.get(item["url"], headers=h)
        assert r.status == 200 and await r.read() == PDF
        assert r.headers["Content-Type"] == "application/pdf"

        r = await client.get(f"/v1/tickets/{claimed['ticket']}/attachments", headers=h)
        (item,) = (await r.json())["attachments"]
        assert item["available"] is False and "only listed" in item["reason"]
        r = await client.get(item["url"], headers=h)
        assert r.status == 404 and await r.read() != PDF
    finally:
        await client.close()
        await site.daemon.__aexit__(None, None, None)
