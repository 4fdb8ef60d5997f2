"""The web form answers with the ticket number (issue 14): a daemon in this process on the
real Redis (and PostgreSQL for its records), driven over real HTTP. JSON, form-encoded and
multipart posts open a ticket within the request (201 and its id); the same submission again
gets 200 and the same id; bad fields come back per field in Arabic or English; CORS answers
only the configured origins; the honeypot and the rate limits refuse, count and store
nothing; a post that no batch took in time is queued and its reference later names the
ticket; posts that arrive together are taken in together, each with its own answer."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from omnidesk.service import Daemon, DaemonOptions
from tests.services import eventually
from tests.storekit import CONFIG, REDIS_URL

ORIGIN = "http://ministry.test:8000"
FORM = {"message": "شكوى على محل في جدة", "email": "visitor@example.sa"}


@dataclass
class Site:
    daemon: Daemon
    base: str

    async def call(self, method: str, path: str, **kwargs: Any) -> tuple[int, dict[str, str], Any]:
        async with (
            aiohttp.ClientSession() as session,
            session.request(method, self.base + path, **kwargs) as response,
        ):
            raw = await response.read()
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = raw.decode("utf-8", "replace")
            return response.status, dict(response.headers), body

    async def post(self, data: Any = None, **kwargs: Any) -> tuple[int, dict[str, str], Any]:
        if isinstance(data, dict):
            kwargs["json"] = data
        elif data is not None:
            kwargs["data"] = data
        return await self.call("POST", "/v1/intake/web", **kwargs)

    def rejected(self, metrics: str, reason: str) -> float:
        line = f'omnidesk_web_rejected_total{{reason="{reason}"}} '
        found = [x for x in metrics.splitlines() if x.startswith(line)]
        return float(found[0].split()[-1]) if found else 0.0

    async def metrics(self) -> str:
        return (await self.call("GET", "/metrics"))[2]

    @property
    def store(self) -> Any:
        return self.daemon.runtime.store


async def open_site(
    tmp_path: Path, prefix: str, pg_url: str, web_form: str = "", service: str = ""
) -> Site:
    """The daemon on a config whose `service.web_form` has `web_form`'s lines added, and
    `service` has `service`'s (both YAML, indented as in their section)."""
    state = tmp_path / "state"
    extra = "".join(f"    {line}\n" for line in web_form.strip().splitlines())
    more = "".join(f"  {line}\n" for line in service.strip().splitlines())
    head = (
        f"service:\n  redis_url: {REDIS_URL}\n  key_prefix: {prefix}\n  state_dir: {state}\n"
        f"{more}  web_form:\n    allowed_origins: ['{ORIGIN}']\n{extra}"
    )
    config = tmp_path / "queue_config.yaml"
    config.write_text(head + CONFIG.read_text("utf-8"), "utf-8")
    daemon = Daemon(
        DaemonOptions(
            config=str(config), workers=0, http_port=0, drain_timeout=5, key_prefix=prefix,
            database_url=pg_url,
        )
    )  # fmt: skip
    await daemon.__aenter__()
    return Site(daemon, f"http://127.0.0.1:{daemon.http_port}")


@pytest.fixture
async def site(prefix: str, tmp_path: Path, pg_url: str) -> AsyncIterator[Site]:
    running = await open_site(tmp_path, prefix, pg_url)
    yield running
    await running.daemon.__aexit__(None, None, None)


async def test_a_json_post_gets_its_ticket_number_and_a_repeat_the_same(site: Site) -> None:
    status, headers, body = await site.post(FORM)
    assert status == 201 and body["outcome"] == "opened"
    ticket = site.store.get_ticket(body["ticket"])
    assert ticket is not None and ticket.channel == "web"
    assert headers["Location"] == f"/status?ticket={body['ticket']}"
    again_status, _, again = await site.post(FORM)  # a double click
    assert again_status == 200 and again["ticket"] == body["ticket"]
    assert again["outcome"] == "duplicate"
    assert site.store.ticket_count() == 1


async def test_a_form_encoded_post_opens_a_ticket(site: Site) -> None:
    form = {"message": "أرغب في تجديد السجل التجاري", "phone": "0501234567", "name": "هدى"}
    status, _, body = await site.post(aiohttp.FormData(form))
    assert status == 201
    ticket = site.store.get_ticket(body["ticket"])
    assert ticket is not None and ticket.queue == "cr"  # routed on the text, as JSON would be
    customer = site.store.get_customer(ticket.customer_id)
    assert customer is not None and customer.name == "هدى"
    assert [i.key for i in customer.identities] == ["phone:+966501234567"]


async def test_a_multipart_post_keeps_its_attachment(site: Site) -> None:
    pdf = b"%PDF-1.4 receipt of the purchase\n" * 40
    form = aiohttp.FormData()
    form.add_field("message", "complaint about a shop, invoice attached")
    form.add_field("email", "files@example.sa")
    form.add_field("invoice", pdf, filename="invoice.pdf", content_type="application/pdf")
    form.add_field("empty", b"", filename="", content_type="application/octet-stream")
    status, _, body = await site.post(form)
    assert status == 201, body
    (message,) = site.store.ticket_messages(body["ticket"])
    (attachment,) = message.attachments
    digest = hashlib.sha256(pdf).hexdigest()
    assert (attachment.filename, attachment.size, attachment.sha256) == (
        "invoice.pdf", len(pdf), digest,
    )  # fmt: skip
    archive = site.daemon.runtime.archive
    assert archive.get(digest) == pdf  # the file itself is archived
    stored = json.loads(archive.get(message.raw_ref))  # and the form it came in
    assert stored["email"] == "files@example.sa" and stored["attachments"][0]["sha256"] == digest


async def test_too_many_files_are_refused_per_field(
    prefix: str, tmp_path: Path, pg_url: str
) -> None:
    site = await open_site(tmp_path, prefix, pg_url, "max_attachments: 1")
    try:
        form = aiohttp.FormData()
        form.add_field("message", "two files")
        form.add_field("email", "files@example.sa")
        for name in ("a.txt", "b.txt"):
            form.add_field("file", b"x", filename=name, content_type="text/plain")
        status, _, body = await site.post(form, headers={"Accept-Language": "en"})
        assert status == 400 and body["errors"]["attachments"]["en"] == "More than 1 attachments."
        assert site.store.ticket_count() == 0
    finally:
        await site.daemon.__aexit__(None, None, None)


async def test_a_file_over_the_per_file_limit_is_refused_per_field(
    prefix: str, tmp_path: Path, pg_url: str
) -> None:
    """A multipart file bigger than service.attachments.max_serve_bytes (what agents could be
    served) is refused with the `attachments` field's error, within the body limit; a file
    of exactly the limit is taken."""
    limit = 2048
    site = await open_site(
        tmp_path, prefix, pg_url, service=f"attachments: {{max_serve_bytes: {limit}}}"
    )
    try:
        big = b"%PDF-1.4 " + b"x" * limit  # over the limit, far under web_max_body_bytes

        def form_with(data: bytes) -> aiohttp.FormData:
            form = aiohttp.FormData()
            form.add_field("message", "complaint about a shop, scans attached")
            form.add_field("email", "files@example.sa")
            form.add_field("note", b"small", filename="note.txt", content_type="text/plain")
            form.add_field("scan", data, filename="scan.pdf", content_type="application/pdf")
            return form

        before = site.rejected(await site.metrics(), "too_large_file")
        status, _, body = await site.post(form_with(big), headers={"Accept-Language": "en"})
        assert status == 400, body
        assert body["code"] == "invalid_form" and list(body["errors"]) == ["attachments"]
        assert body["errors"]["attachments"]["en"] == "The attachments are larger than allowed."
        assert body["errors"]["attachments"]["ar"]  # in both languages, as every field error
        assert site.store.ticket_count() == 0
        archive = site.daemon.runtime.archive
        assert archive.get(hashlib.sha256(big).hexdigest()) is None  # nothing was kept
        assert site.rejected(await site.metrics(), "too_large_file") == before + 1

        exact = b"y" * limit
        status, _, body = await site.post(form_with(exact))
        assert status == 201, body
        (message,) = site.store.ticket_messages(body["ticket"])
        assert sorted(a.size for a in message.attachments) == [len(b"small"), limit]
    finally:
        await site.daemon.__aexit__(None, None, None)


async def test_bad_fields_come_back_per_field_in_the_visitors_language(site: Site) -> None:
    status, _, body = await site.post(
        {"message": "", "email": "not-an-address"}, headers={"Accept-Language": "ar-SA,ar;q=0.9"}
    )
    assert status == 400 and body["lang"] == "ar"
    assert body["errors"]["email"] == {
        "ar": "البريد الإلكتروني غير صحيح.",
        "en": "This is not a valid e-mail address.",
    }
    assert body["errors"]["message"]["ar"] == "هذا الحقل مطلوب."
    assert body["error"].startswith("البريد الإلكتروني: ")  # one line, in Arabic
    # a `lang` field wins over the header
    status, _, body = await site.post(
        aiohttp.FormData({"message": "hi", "lang": "en"}), headers={"Accept-Language": "ar"}
    )
    assert status == 400 and body["lang"] == "en"
    assert (
        body["error"] == "e-mail: Please give an e-mail address or a phone number so we can reply."
    )
    status, _, body = await site.post(b"{not json", headers={"Content-Type": "application/json"})
    assert status == 400 and body["code"] == "not_json" and body["error"] == "تعذرت قراءة النموذج."
    status, _, body = await site.post(b"<xml/>", headers={"Content-Type": "application/xml"})
    assert status == 415
    assert site.store.ticket_count() == 0 and site.store.counts()["quarantine"] == 0
    metrics = await site.metrics()
    assert site.rejected(metrics, "invalid_form") == 2 and site.rejected(metrics, "not_json") == 1


async def test_cors_only_for_configured_origins_with_a_preflight(site: Site) -> None:
    asked = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type",
    }
    status, headers, _ = await site.call(
        "OPTIONS", "/v1/intake/web", headers={"Origin": ORIGIN, **asked}
    )
    assert status == 204 and headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "POST" in headers["Access-Control-Allow-Methods"]
    assert "Content-Type" in headers["Access-Control-Allow-Headers"]
    status, headers, _ = await site.call(
        "OPTIONS", "/v1/intake/web", headers={"Origin": "http://evil.test", **asked}
    )
    assert status == 403 and "Access-Control-Allow-Origin" not in headers
    status, headers, _ = await site.post(FORM, headers={"Origin": ORIGIN})
    assert status == 201 and headers["Access-Control-Allow-Origin"] == ORIGIN
    status, headers, _ = await site.post(
        {**FORM, "message": "from elsewhere"}, headers={"Origin": "http://evil.test"}
    )
    assert "Access-Control-Allow-Origin" not in headers
    status, headers, _ = await site.post({"message": ""}, headers={"Origin": ORIGIN})
    assert status == 400 and headers["Access-Control-Allow-Origin"] == ORIGIN  # errors too


async def test_the_honeypot_answers_accepted_opens_nothing_and_is_counted(site: Site) -> None:
    status, _, body = await site.post(aiohttp.FormData({**FORM, "website": "http://spam.test"}))
    assert status == 202 and body["outcome"] == "queued" and body["reference"]
    assert site.store.ticket_count() == 0
    assert site.rejected(await site.metrics(), "honeypot") == 1
    status, _, polled = await site.call("GET", body["poll"])
    assert status == 202 and polled["outcome"] == "queued"  # and it never resolves
    status, _, body = await site.post(aiohttp.FormData({**FORM, "website": ""}))
    assert status == 201  # left empty, as a person leaves it


async def test_rate_limits_per_ip_and_per_identity(
    prefix: str, tmp_path: Path, pg_url: str
) -> None:
    site = await open_site(
        tmp_path, prefix, pg_url, "posts_per_ip: 4\nposts_per_identity: 2\nrate_window_s: 600"
    )
    try:
        one = {"email": "same@example.sa"}
        assert (await site.post({**one, "message": "first"}))[0] == 201
        assert (await site.post({**one, "message": "second"}))[0] == 201
        status, headers, body = await site.post(
            {**one, "message": "third"}, headers={"Accept-Language": "en"}
        )
        assert status == 429 and int(headers["Retry-After"]) > 0 and body["code"] == "rate_limited"
        assert (await site.post({"email": "other@example.sa", "message": "x"}))[0] == 201
        status, _, body = await site.post({"email": "third@example.sa", "message": "y"})
        assert status == 429 and body["error"].startswith("طلبات كثيرة")  # the IP's fifth
        assert site.store.ticket_count() == 3
        metrics = await site.metrics()
        assert site.rejected(metrics, "web:id") == 1 and site.rejected(metrics, "web:ip") == 1
        keys = list(site.store.r.scan_iter(match=f"{prefix}:rl:*"))
        assert keys and all(0 < site.store.r.ttl(k) <= 601 for k in keys)  # they expire
        assert not any("same@example.sa" in k or "127.0.0.1" in k for k in keys)
    finally:
        await site.daemon.__aexit__(None, None, None)


async def test_a_post_no_batch_took_in_time_is_queued_and_its_reference_resolves(
    prefix: str, tmp_path: Path, pg_url: str
) -> None:
    # sync_wait_s 0: no post waits for a batch (as when none could take it in time)
    site = await open_site(tmp_path, prefix, pg_url, "sync_wait_s: 0")
    try:
        status, _, body = await site.post(FORM)
        assert status == 202 and body["outcome"] == "queued"
        assert site.store.ticket_count() == 0  # no worker runs yet
        status, _, polled = await site.call("GET", body["poll"])
        assert status == 202
        worker = site.daemon.pipeline.start_worker(1)
        try:
            assert await eventually(lambda: site.store.ticket_count() == 1, timeout=20)
        finally:
            await asyncio.to_thread(worker.stop, 5000)
        status, _, polled = await site.call("GET", body["poll"])
        (tid,) = site.store.r.zrange(site.store.key("tickets"), 0, -1)
        assert status == 200 and polled["ticket"] == tid
        status, _, _ = await site.call("GET", "/v1/intake/web/" + "x" * 24)
        assert status == 404
    finally:
        await site.daemon.__aexit__(None, None, None)


async def test_posts_arriving_together_each_get_their_own_ticket(
    prefix: str, tmp_path: Path, pg_url: str
) -> None:
    site = await open_site(tmp_path, prefix, pg_url, "posts_per_ip: 100")
    try:
        await _together(site)
    finally:
        await site.daemon.__aexit__(None, None, None)


async def _together(site: Site) -> None:
    forms = [{"message": f"complaint number {n}", "email": f"c{n}@example.sa"} for n in range(30)]
    forms.append(dict(forms[0]))  # the first one twice, in the same moment
    answers = await asyncio.gather(*(site.post(form) for form in forms))
    assert sorted(a[0] for a in answers) == [200] + [201] * 30  # either copy may be first
    tickets = [a[2]["ticket"] for a in answers]
    assert len(set(tickets)) == 30 and tickets[-1] == tickets[0]  # the repeat: the same id
    for form, ticket in zip(forms, tickets, strict=True):
        (message,) = site.store.ticket_messages(ticket)[:1]
        assert message.text == form["message"]  # each post got its own ticket's number
    assert site.store.ticket_count() == 30
