"""The WhatsApp connector: the webhook on a real aiohttp server (handshake, signed and
forged POSTs) and replies through a local server speaking the Graph API wire format."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.catalog import validate_entry
from connectors.whatsapp.config import WhatsAppConfig
from connectors.whatsapp.connector import WhatsAppConnector
from connectors.whatsapp.normalize import normalize
from omnidesk.errors import AuthError, ConfigError, PermanentError, TransientError
from omnidesk.model import (
    Channel,
    Identity,
    IdentityKind,
    Inbound,
    Outbound,
    RawPayload,
    Receipt,
    Skipped,
)
from tests.services import eventually

pytestmark = pytest.mark.timeout(30)

FIXTURES = Path(__file__).parent / "fixtures" / "whatsapp"
PHONE_ID = "106540352242922"
SECRET = "app-secret-for-tests"
WA_ID = "966501234567"


@pytest.fixture(autouse=True)
def wa_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_WA_VERIFY", "verify-me")
    monkeypatch.setenv("TEST_WA_SECRET", SECRET)
    monkeypatch.setenv("TEST_WA_TOKEN", "graph-token")


# ---------------------------------------------------------------- a local Graph API


@dataclass
class FakeGraph:
    sent: list[dict[str, Any]] = field(default_factory=list)
    auth: list[str] = field(default_factory=list)
    answer: tuple[int, dict[str, Any], dict[str, str]] | None = None  # forced error answer
    base: str = ""
    media: dict[str, bytes] = field(default_factory=dict)  # media id -> the customer's file

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/{version}/{phone}/messages", self._messages)
        app.router.add_get("/{version}/{media_id}", self._media_record)
        app.router.add_get("/media-download/{media_id}", self._media_bytes)
        return app

    async def _media_record(self, request: web.Request) -> web.Response:
        """GET /<media id>: the record naming a short-lived download URL (Graph's shape)."""
        self.auth.append(request.headers.get("Authorization", ""))
        media_id = request.match_info["media_id"]
        data = self.media.get(media_id)
        if data is None:
            error = {"message": "Unsupported get request.", "type": "GraphMethodException",
                     "code": 100}  # fmt: skip
            return web.json_response({"error": error}, status=400)
        return web.json_response({
            "messaging_product": "whatsapp", "id": media_id, "file_size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(), "mime_type": "image/jpeg",
            "url": f"{self.base}/media-download/{media_id}",
        })  # fmt: skip

    async def _media_bytes(self, request: web.Request) -> web.Response:
        """The URL of the record: bytes only with the access token, as Meta's is."""
        if request.headers.get("Authorization") != "Bearer graph-token":
            return web.json_response({"error": {"message": "no token", "code": 190}}, status=401)
        return web.Response(body=self.media[request.match_info["media_id"]])

    async def _messages(self, request: web.Request) -> web.Response:
        self.auth.append(request.headers.get("Authorization", ""))
        if self.answer is not None:
            status, body, headers = self.answer
            return web.json_response(body, status=status, headers=headers)
        body = await request.json()
        body["_path"] = request.path
        self.sent.append(body)
        wamid = f"wamid.OUT{len(self.sent)}"
        return web.json_response(
            {
                "messaging_product": "whatsapp",
                "contacts": [{"input": body["to"], "wa_id": body["to"]}],
                "messages": [{"id": wamid}],
            }
        )


async def serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}"


@pytest.fixture
async def graph() -> AsyncIterator[FakeGraph]:
    fake = FakeGraph()
    runner, fake.base = await serve(fake.app())
    yield fake
    await runner.cleanup()


def config(graph_base: str = "http://127.0.0.1:9", **extra: object) -> WhatsAppConfig:
    model = validate_entry(
        {
            "name": "mci_wa",
            "kind": "whatsapp",
            "phone_number_id": PHONE_ID,
            "verify_token_env": "TEST_WA_VERIFY",
            "app_secret_env": "TEST_WA_SECRET",
            "access_token_env": "TEST_WA_TOKEN",
            "graph_base": graph_base,
            **extra,
        }
    )
    assert isinstance(model, WhatsAppConfig)
    return model


# ---------------------------------------------------------------- the webhook


class Collect:
    def __init__(self) -> None:
        self.raws: list[RawPayload] = []
        self.fail = False

    async def __call__(self, items: list[RawPayload]) -> None:
        if self.fail:
            raise TransientError("broker unavailable", retry_after=7)
        self.raws.extend(items)


@dataclass
class Webhook:
    connector: WhatsAppConnector
    url: str
    sink: Collect
    http: aiohttp.ClientSession

    async def post(self, body: bytes, signature: str | None) -> aiohttp.ClientResponse:
        headers = {"Content-Type": "application/json"}
        if signature is not None:
            headers["X-Hub-Signature-256"] = signature
        async with self.http.post(self.url, data=body, headers=headers) as resp:
            await resp.read()
            return resp


def sign(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@asynccontextmanager
async def webhook_for(sink: Any, graph_base: str = "http://127.0.0.1:9") -> AsyncIterator[Webhook]:
    connector = WhatsAppConnector(config(graph_base, webhook_path="/hooks/wa"))
    await connector.initialize()
    app = web.Application()
    connector.add_routes(app)  # what the daemon's route hook does
    runner, base = await serve(app)
    task = asyncio.create_task(connector.start(sink))
    await eventually(lambda: connector.status.state == "running")
    try:
        async with aiohttp.ClientSession() as http:
            yield Webhook(
                connector,
                f"{base}/hooks/wa",
                sink if isinstance(sink, Collect) else Collect(),
                http,
            )
    finally:
        await connector.stop()
        await asyncio.wait_for(task, 5)
        await connector.shutdown()
        await runner.cleanup()


@pytest.fixture
async def hook() -> AsyncIterator[Webhook]:
    async with webhook_for(Collect()) as w:
        yield w


async def test_handshake_answers_the_challenge_for_the_right_token(hook: Webhook) -> None:
    params = {
        "hub.mode": "subscribe",
        "hub.verify_token": "verify-me",
        "hub.challenge": "1158201444",
    }
    async with hook.http.get(hook.url, params=params) as resp:
        assert resp.status == 200 and await resp.text() == "1158201444"
    for wrong in ({**params, "hub.verify_token": "guess"}, {**params, "hub.mode": "unsubscribe"}):
        async with hook.http.get(hook.url, params=wrong) as resp:
            assert resp.status == 403 and "1158201444" not in await resp.text()


async def test_signed_post_is_handed_over_whole(hook: Webhook) -> None:
    body = (FIXTURES / "text.json").read_bytes()
    resp = await hook.post(body, sign(body))
    assert resp.status == 200
    assert len(hook.sink.raws) == 1
    raw = hook.sink.raws[0]
    assert raw.payload == body and raw.channel == Channel.WHATSAPP and raw.account == "mci_wa"
    assert hook.connector.status.handed_over == 1


@pytest.mark.parametrize(
    "signature",
    [None, "sha256=" + "0" * 64, "sha1=abc", "", "SIGNED"],
    ids=["missing", "forged", "wrong-algorithm", "empty", "garbage"],
)
async def test_forged_or_missing_signature_is_401_and_nothing_ingested(
    hook: Webhook, signature: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    body = (FIXTURES / "text.json").read_bytes()
    resp = await hook.post(body, signature)
    assert resp.status == 401
    assert hook.sink.raws == []
    assert hook.connector.status.errors["signature"] == 1
    assert "signature" in caplog.text and SECRET not in caplog.text


async def test_body_changed_after_signing_is_refused(hook: Webhook) -> None:
    body = (FIXTURES / "text.json").read_bytes()
    signature = sign(body)
    tampered = body.replace(b"966501234567", b"966500000000")
    assert (await hook.post(tampered, signature)).status == 401
    assert (await hook.post(body, sign(body, "another-apps-secret"))).status == 401
    assert hook.sink.raws == []


async def test_failed_hand_over_answers_503_so_meta_retries() -> None:
    sink = Collect()
    sink.fail = True
    async with webhook_for(sink) as hook:
        body = (FIXTURES / "text.json").read_bytes()
        refused = await hook.post(body, sign(body))
        assert (refused.status, refused.headers.get("Retry-After")) == (503, "7")
        sink.fail = False
        assert (await hook.post(body, sign(body))).status == 200
        assert len(sink.raws) == 1


# ---------------------------------------------------------------- replies


def outbound(text: str = "تم إصدار الترخيص", **meta: str) -> Outbound:
    return Outbound(
        id="out-1",
        ticket_id="OD-1",
        channel=Channel.WHATSAPP,
        account="mci_wa",
        text=text,
        in_reply_to="wamid.IN1",
        meta={"wa_id": WA_ID, **meta},
    )


def hours_ago(hours: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - hours * 3600))


async def test_reply_inside_window_is_text(graph: FakeGraph) -> None:
    async with WhatsAppConnector(config(graph.base)) as wa:
        receipt = await wa.send(outbound(last_customer_at=hours_ago(2)))
    assert receipt.status == "sent" and receipt.external_id == "wamid.OUT1"
    sent = graph.sent[0]
    assert sent["_path"] == f"/v21.0/{PHONE_ID}/messages"
    assert sent["to"] == WA_ID and sent["type"] == "text"
    assert sent["text"]["body"] == "تم إصدار الترخيص"
    assert sent["context"] == {"message_id": "wamid.IN1"}
    assert graph.auth == ["Bearer graph-token"]


async def test_reply_without_known_time_counts_as_inside(graph: FakeGraph) -> None:
    async with WhatsAppConnector(config(graph.base)) as wa:
        await wa.send(outbound())
    assert graph.sent[0]["type"] == "text"


async def test_buttons_become_interactive_buttons_or_a_list(graph: FakeGraph) -> None:
    async with WhatsAppConnector(config(graph.base)) as wa:
        await wa.send(outbound("هل تم حل طلبك؟", buttons='["نعم", "لا"]'))
        await wa.send(outbound("قيّم الخدمة من 1 إلى 5", buttons="1|2|3|4|5"))
    yes_no, csat = graph.sent
    assert yes_no["interactive"]["type"] == "button"
    assert [b["reply"]["title"] for b in yes_no["interactive"]["action"]["buttons"]] == [
        "نعم",
        "لا",
    ]
    assert csat["interactive"]["type"] == "list"
    rows = csat["interactive"]["action"]["sections"][0]["rows"]
    assert [r["id"] for r in rows] == ["1", "2", "3", "4", "5"]


async def test_outside_window_sends_the_template_and_says_so(graph: FakeGraph) -> None:
    cfg = config(graph.base, template={"name": "service_followup", "language": "ar"})
    async with WhatsAppConnector(cfg) as wa:
        receipt = await wa.send(outbound(last_customer_at=hours_ago(30)))
    sent = graph.sent[0]
    assert sent["type"] == "template"
    assert sent["template"] == {"name": "service_followup", "language": {"code": "ar"}}
    assert receipt.status == "sent" and "outside the 24-hour window" in receipt.detail
    assert "service_followup" in receipt.detail


async def test_an_agents_reply_outside_the_window_fills_the_template_from_the_desk(
    prefix: str, tmp_path: Path, graph: FakeGraph
) -> None:
    """The desk's reply carries the template's values (the customer's and the agent's names,
    the ticket, the queue's public title) and when the customer last wrote: 30 hours ago,
    so the template goes, filled, instead of free text WhatsApp would refuse."""
    from tests.agentkit import make

    runtime, service, outbox = make(prefix, tmp_path)
    at = int(time.time()) - 30 * 3600
    raw = wa_raw(wa_message("wamid.OLD1", "text", {"body": "متى يصدر الترخيص"}, at))
    (opened,) = runtime.process([raw]).results
    assert opened.outcome == "opened"
    service.desk.reply(service.agent("amal"), opened.ticket_id, "تم إصدار الترخيص")
    (reply,) = outbox.sent
    template = {
        "name": "service_followup",
        "parameters": ["customer_name", "agent_name", "ticket_id", "queue"],
    }
    async with WhatsAppConnector(config(graph.base, template=template)) as wa:
        receipt = await wa.send(reply)
    (sent,) = graph.sent
    assert sent["type"] == "template" and "outside the 24-hour window" in receipt.detail
    texts = [p["text"] for p in sent["template"]["components"][0]["parameters"]]
    assert texts == ["فهد", "Amal", opened.ticket_id, "خدمة العملاء"]  # no public_title: neutral


async def test_a_parameter_with_no_value_takes_its_fallback(graph: FakeGraph) -> None:
    """A customer with no profile name, a ticket with no SLA time: the configured fallback
    goes instead, and the send does not fail."""
    template = {
        "name": "ticket_received",
        "parameters": [
            {"name": "customer_name", "fallback": "عميلنا العزيز"},
            "ticket_id",
            {"name": "first_response_due", "fallback": "قريبًا"},
        ],
    }
    values = json.dumps({"customer_name": " ", "first_response_due": ""})
    async with WhatsAppConnector(config(graph.base, template=template)) as wa:
        await wa.send(outbound(last_customer_at=hours_ago(30), template_values=values))
    texts = [p["text"] for p in graph.sent[0]["template"]["components"][0]["parameters"]]
    assert texts == ["عميلنا العزيز", "OD-1", "قريبًا"]


async def test_outside_window_without_template_is_refused_with_the_reason(
    graph: FakeGraph,
) -> None:
    async with WhatsAppConnector(config(graph.base)) as wa:
        with pytest.raises(PermanentError, match=r"outside the 24-hour window.*template"):
            await wa.send(outbound(last_customer_at=str(int(time.time()) - 25 * 3600)))
    assert graph.sent == []


async def test_graph_errors_are_typed(graph: FakeGraph) -> None:
    throttled = {
        "error": {"message": "(#130429) Rate limit hit", "type": "OAuthException", "code": 130429}
    }
    expired = {
        "error": {"message": "Error validating access token", "type": "OAuthException", "code": 190}
    }
    invalid = {
        "error": {
            "message": "(#100) Invalid parameter",
            "code": 100,
            "error_data": {"details": "Parameter 'to' is not a valid phone number"},
        }
    }
    async with WhatsAppConnector(config(graph.base)) as wa:
        graph.answer = (429, throttled, {"Retry-After": "7"})
        with pytest.raises(TransientError) as caught:
            await wa.send(outbound())
        assert caught.value.retry_after == 7 and "Rate limit hit" in str(caught.value)
        graph.answer = (503, {}, {})
        with pytest.raises(TransientError):
            await wa.send(outbound())
        graph.answer = (401, expired, {})
        with pytest.raises(AuthError, match="access token"):
            await wa.send(outbound())
        graph.answer = (400, invalid, {})
        with pytest.raises(PermanentError, match="not a valid phone number") as caught:
            await wa.send(outbound())
        assert not isinstance(caught.value, AuthError)


async def test_recipient_from_identity_when_meta_lacks_it(graph: FakeGraph) -> None:
    reply = outbound()
    reply.meta.pop("wa_id")
    reply.to = [Identity(kind=IdentityKind.PHONE, value="+966501234567")]
    async with WhatsAppConnector(config(graph.base)) as wa:
        await wa.send(reply)
    assert graph.sent[0]["to"] == WA_ID


async def test_missing_secret_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TEST_WA_SECRET")
    with pytest.raises(ConfigError, match="TEST_WA_SECRET"):
        await WhatsAppConnector(config()).initialize()


def test_config_rejects_unknown_keys() -> None:
    with pytest.raises(ValueError, match="reply_window"):
        validate_entry(
            {
                "name": "w",
                "kind": "whatsapp",
                "phone_number_id": "1",
                "verify_token_env": "A",
                "app_secret_env": "B",
                "access_token_env": "C",
                "reply_window": 24,
            }
        )


# ---------------------------------------------------------------- end to end


async def test_end_to_end_signed_webhook_becomes_a_ticket(runtime) -> None:
    async def sink(items: list[RawPayload]) -> None:
        await asyncio.to_thread(runtime.process, items)

    async with webhook_for(sink) as hook:
        body = (FIXTURES / "text.json").read_bytes()
        assert (await hook.post(body, sign(body))).status == 200
        forged = body.replace("متى".encode(), "كيف".encode())
        assert (await hook.post(forged, sign(body))).status == 401
    tickets = runtime.store.list_tickets()
    assert len(tickets) == 1
    ticket = tickets[0]
    assert ticket.channel == Channel.WHATSAPP
    messages = runtime.store.ticket_messages(ticket.id)
    assert len(messages) == 1 and "متى يصدر الترخيص" in messages[0].text


# ---------------------------------------------------------------- edits, orders, calls, errors


def wa_body(*messages: dict[str, Any]) -> dict[str, Any]:
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "966920000000", "phone_number_id": PHONE_ID},
        "contacts": [{"profile": {"name": "فهد"}, "wa_id": WA_ID}],
        "messages": list(messages),
    }
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": "1", "changes": [{"field": "messages", "value": value}]}],
    }


def wa_message(wamid: str, kind: str, content: dict[str, Any], at: int = 1714550400) -> dict:
    return {"from": WA_ID, "id": wamid, "timestamp": str(at), "type": kind, kind: content}


def wa_raw(*messages: dict[str, Any]) -> RawPayload:
    return RawPayload(
        channel=Channel.WHATSAPP,
        account="wa",
        payload=json.dumps(wa_body(*messages), ensure_ascii=False).encode(),
        received_at=datetime.now(UTC),
        source="test:whatsapp",
    )


def edit(wamid: str, original: str, text: str) -> dict[str, Any]:
    inner = {"type": "text", "text": {"body": text}}
    return wa_message(
        wamid, "edit", {"original_message_id": original, "message": inner}, 1714550460
    )


def test_an_edit_updates_the_original_message_in_its_ticket(runtime) -> None:
    first = runtime.process([wa_raw(wa_message("wamid.E1", "text", {"body": "متى يصدر الترخيص"}))])
    assert first.outcomes["opened"] == 1
    second = runtime.process(
        [wa_raw(edit("wamid.E1-edit", "wamid.E1", "متى يصدر الترخيص التجاري؟"))]
    )
    assert second.outcomes["edited"] == 1
    [ticket] = runtime.store.list_tickets()
    [message] = runtime.store.ticket_messages(ticket.id)
    assert message.external_id == "wamid.E1" and message.text == "متى يصدر الترخيص التجاري؟"
    again = runtime.process(
        [wa_raw(edit("wamid.E1-edit", "wamid.E1", "متى يصدر الترخيص التجاري؟"))]
    )
    assert again.outcomes["duplicate"] == 1  # the same edit delivered twice changes nothing


def test_an_edit_of_a_message_not_held_joins_the_customers_ticket(runtime) -> None:
    """The original came before Omnidesk held it (or was let go): the edit is not lost and
    not a new ticket, it is added to the customer's open one with its new text."""
    runtime.process([wa_raw(wa_message("wamid.E2", "text", {"body": "السلام عليكم"}))])
    report = runtime.process([wa_raw(edit("wamid.E3-edit", "wamid.E3", "رقم الطلب 55123"))])
    assert report.outcomes["appended"] == 1
    [ticket] = runtime.store.list_tickets()
    texts = [m.text for m in runtime.store.ticket_messages(ticket.id)]
    assert texts == ["السلام عليكم", "رقم الطلب 55123"]


def test_call_permission_and_errored_messages_open_nothing_and_quarantine_nothing(
    runtime,
) -> None:
    call = wa_message(
        "wamid.CP",
        "interactive",
        {"type": "call_permission_reply",
         "call_permission_reply": {"response": "accept", "response_source": "user_action"}},
    )  # fmt: skip
    errored = {"from": WA_ID, "id": "wamid.ER", "timestamp": "1714550400", "type": "interactive",
               "errors": [{"code": 131051, "title": "Message type unknown"}]}  # fmt: skip
    order = wa_message(
        "wamid.OR",
        "order",
        {"catalog_id": "77", "product_items": [
            {"product_retailer_id": "SKU-9", "quantity": 2, "item_price": 12.5, "currency": "SAR"}
        ]},
    )  # fmt: skip
    report = runtime.process([wa_raw(call, errored, order)])
    assert report.quarantined == []
    stats = runtime.store.counts()["stats"]
    assert stats.get("skipped:call_permission_reply") == 1
    assert stats.get("skipped:unsupported:interactive") == 1
    [ticket] = runtime.store.list_tickets()
    [message] = runtime.store.ticket_messages(ticket.id)
    assert message.external_id == "wamid.OR"
    assert message.text.splitlines() == [
        "طلب / Order (77)", "2 × SKU-9 @ 12.5 SAR", "المجموع / Total: 25.0 SAR"
    ]  # fmt: skip


_PRICES = st.decimals(min_value=0, max_value=100_000, places=2, allow_nan=False)
_ITEMS = st.lists(
    st.tuples(
        st.from_regex(r"[A-Z0-9][A-Z0-9\-]{0,15}", fullmatch=True),
        st.integers(min_value=1, max_value=500),
        _PRICES,
        st.sampled_from(["SAR", "USD", "AED"]),
        st.booleans(),  # sent as strings, as the docs show them, or as JSON numbers
    ),
    min_size=1,
    max_size=6,
)


@settings(max_examples=100, deadline=None)
@given(items=_ITEMS, note=st.sampled_from(["", "أرجو التوصيل", "Please deliver by Sunday"]))
def test_an_order_lists_every_item_and_the_totals(items: list, note: str) -> None:
    product_items = [
        {"product_retailer_id": sku, "quantity": str(qty) if as_text else qty,
         "item_price": str(price) if as_text else float(price), "currency": cur}
        for sku, qty, price, cur, as_text in items
    ]  # fmt: skip
    content: dict[str, Any] = {"catalog_id": "C1", "product_items": product_items}
    if note:
        content["text"] = note
    [inbound] = normalize(wa_body(wa_message("wamid.P", "order", content)))
    assert isinstance(inbound, Inbound)
    lines = inbound.text.splitlines()
    if note:
        assert lines.pop(0) == note
    assert lines.pop(0) == "طلب / Order (C1)"
    totals: dict[str, Decimal] = {}
    for (sku, qty, price, cur, _), line in zip(items, lines, strict=False):
        count, rest = line.split(" × ", 1)
        shown_sku, priced = rest.split(" @ ", 1)
        shown_price, shown_cur = priced.rsplit(" ", 1)
        assert (int(count), shown_sku, shown_cur) == (qty, sku, cur)
        assert Decimal(shown_price) == price
        totals[cur] = totals.get(cur, Decimal(0)) + qty * price
    total_lines = lines[len(items) :]
    assert len(total_lines) == len(totals)
    for line in total_lines:
        label, amount = line.split(": ", 1)
        shown_total, cur = amount.rsplit(" ", 1)
        assert label == "المجموع / Total" and Decimal(shown_total) == totals[cur]
    assert "cr_number" not in inbound.hints  # product ids are not the customer's words


@settings(max_examples=100, deadline=None)
@given(code=st.integers(min_value=1, max_value=10**6), kind=st.sampled_from(
    ["interactive", "unsupported", "button", "image", "order"]))  # fmt: skip
def test_a_message_whatsapp_marks_with_errors_is_skipped_not_refused(code: int, kind: str) -> None:
    """Whatever its type, a message that carries `errors` and nothing readable is skipped
    with the errors kept on the result; the next message of the body is still read."""
    errored = {"from": WA_ID, "id": "wamid.X", "timestamp": "1714550400", "type": kind,
               "errors": [{"code": code, "title": "Message type unknown"}]}  # fmt: skip
    ok = wa_message("wamid.Y", "text", {"body": "مرحبا"})
    skipped, inbound = normalize(wa_body(errored, ok))
    assert isinstance(skipped, Skipped) and skipped.reason == f"unsupported:{kind}"
    assert skipped.receipt == {"errors": [{"code": code, "title": "Message type unknown"}]}
    assert isinstance(inbound, Inbound) and inbound.text == "مرحبا"


# ---------------------------------------------------------------- statuses of what we sent


def wa_statuses(*statuses: dict[str, Any]) -> bytes:
    """A status webhook as the Cloud API sends it (its `statuses` for messages we sent)."""
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "966920000000", "phone_number_id": PHONE_ID},
        "statuses": list(statuses),
    }
    body = {
        "object": "whatsapp_business_account",
        "entry": [{"id": "1", "changes": [{"field": "messages", "value": value}]}],
    }
    return json.dumps(body, ensure_ascii=False).encode()


def wa_status(wamid: str, status: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": wamid,
        "status": status,
        "timestamp": str(int(time.time())),
        "recipient_id": WA_ID,
        **extra,
    }


async def test_status_webhooks_move_a_reply_to_delivered_and_read_and_record_a_failure(
    runtime, pipeline, worker, graph: FakeGraph, pg_url: str
) -> None:
    """Issue 15: a reply sent through the Graph stand-in by the real `deliver` actor, then
    WhatsApp's signed status webhooks for its wamid: delivered, then read, on the message
    and in PostgreSQL; a `delivered` arriving after the `read` does not take it back; a
    `failed` status records WhatsApp's error; a status for a wamid not ours stays skipped."""
    from omnidesk.db.writer import RecordWriter
    from omnidesk.outbound import outbound_for
    from omnidesk.pipeline import unregister_sender
    from omnidesk.senders import register_connector_sender
    from tests.test_db_writer import rows

    store = runtime.store

    async def sink(items: list[RawPayload]) -> None:
        await asyncio.to_thread(runtime.process, items)

    async def post(body: bytes) -> None:  # taken in before the answer (the sink above)
        assert (await hook.post(body, sign(body))).status == 200

    def delivery(message_id: str) -> str | None:
        message = store.get_message(message_id)
        return message.delivery if message else None

    async with webhook_for(sink, graph.base) as hook:
        now = int(time.time())  # inside the 24-hour window: free text goes
        await post(
            json.dumps(wa_body(wa_message("wamid.IN1", "text", {"body": "متى"}, now))).encode()
        )
        (ticket,) = store.list_tickets()
        assert register_connector_sender(hook.connector, asyncio.get_running_loop())
        try:
            replies = []
            for n, text in enumerate(["تم إصدار الترخيص", "هل من خدمة أخرى؟"], 1):
                out = outbound_for(store, ticket, text)
                replies.append(await asyncio.to_thread(store.add_outbound_message, out, "amal"))
                pipeline.send_reply(out)  # one at a time: the n-th send gets wamid.OUT<n>
                assert await eventually(lambda mid=out.id: delivery(mid) == "sent"), graph.sent
                assert graph.sent[n - 1]["text"]["body"] == text
        finally:
            unregister_sender(Channel.WHATSAPP, hook.connector.name)
        first, second = (r.id for r in replies)
        await post(wa_statuses(wa_status("wamid.OUT1", "sent")))
        assert delivery(first) == "sent"
        await post(wa_statuses(wa_status("wamid.OUT1", "delivered")))
        assert delivery(first) == "delivered"
        await post(wa_statuses(wa_status("wamid.OUT1", "read")))
        assert delivery(first) == "read"
        await post(wa_statuses(wa_status("wamid.OUT1", "delivered")))  # late: out of order
        assert delivery(first) == "read"
        error = {"code": 131026, "title": "Message undeliverable"}
        await post(wa_statuses(wa_status("wamid.OUT2", "failed", errors=[error])))
        assert delivery(second) == "failed: Message undeliverable (131026)"
        await post(wa_statuses(wa_status("wamid.SOMEONE-ELSES", "read")))
        await post(wa_statuses(wa_status("wamid.OUT1", "read")))  # retried by Meta: no news
        assert delivery(first) == "read"
    stats = store.counts()["stats"]
    assert stats.get("skipped:delivery_status") == 2  # the `sent` and the stranger's
    mine = [
        e["delivery"]
        for _, e in store.events()
        if e["type"] == "delivery" and e["message"] == first
    ]
    assert mine == ["sent", "delivered", "read"]
    await RecordWriter(store, pg_url).drain()
    sql = "SELECT id, delivery FROM messages WHERE direction = 'out'"
    got = await asyncio.to_thread(rows, pg_url, sql)
    assert sorted(got) == sorted(
        [(first, "read"), (second, "failed: Message undeliverable (131026)")]
    )


def test_a_status_that_comes_before_its_send_is_noted_is_applied_after_it(
    runtime, pipeline
) -> None:
    """A batch of replies is sent in turn and its wamids noted together after the last one,
    so a fast `delivered` for the first can come before its wamid is known: it is held
    (Store.hold_early) and applied once the send is noted, after its `sent`."""
    from omnidesk.outbound import outbound_for

    store = runtime.store
    runtime.process([wa_raw(wa_message("wamid.IN9", "text", {"body": "سؤال"}, int(time.time())))])
    (ticket,) = store.list_tickets()
    out = outbound_for(store, ticket, "تم")
    reply = store.add_outbound_message(out, "amal")

    early = RawPayload(channel=Channel.WHATSAPP, account="wa", received_at=datetime.now(UTC),
                       payload=wa_statuses(wa_status("wamid.FAST", "delivered")))  # fmt: skip
    runtime.process([early])  # before the send is noted: nothing to apply it to yet
    assert store.get_message(reply.id).delivery == "queued"

    pipeline._record(
        [(reply.id, "sent")],
        [(out, Receipt(outbound_id=out.id, status="sent", external_id="wamid.FAST"))],
    )
    assert store.get_message(reply.id).delivery == "delivered"
    mine = [
        e["delivery"]
        for _, e in store.events()
        if e.get("delivery") and e.get("message") == reply.id
    ]
    assert mine == ["sent", "delivered"]
    assert not store.r.exists(store.keys.early("whatsapp", "wamid.FAST"))  # taken once
