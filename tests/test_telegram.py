"""The Telegram connector driving the real python-telegram-bot against a local Bot API
stand-in (tests/botapi.py): polling with the offset cursor in Redis, restart, RetryAfter,
long replies, buttons, a bad token, the webhook secret, and the whole way through the
pipeline (update -> ticket -> reply via `deliver`)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.catalog import validate_entry
from connectors.state import CursorStore
from connectors.telegram.config import TelegramConfig
from connectors.telegram.connector import TelegramConnector
from connectors.telegram.normalize import normalize
from connectors.telegram.webhook import SECRET_HEADER, webhook_routes
from omnidesk.api import build_app
from omnidesk.errors import AuthError, ConfigError, PayloadError, PermanentError, TransientError
from omnidesk.model import Channel, Outbound, RawPayload, Skipped
from tests.botapi import GOOD_TOKEN, BotApi, botapi, update  # noqa: F401
from tests.storekit import REDIS_URL

pytestmark = pytest.mark.filterwarnings(
    "ignore:.*retry_after.*:telegram.warnings.PTBDeprecationWarning"  # raised inside PTB
)

TOKEN_ENV = "OMNIDESK_TEST_TG_TOKEN"
SECRET_ENV = "OMNIDESK_TEST_TG_SECRET"


def make_config(api: BotApi, **overrides: Any) -> TelegramConfig:
    entry: dict[str, Any] = {
        "name": "bot",
        "kind": "telegram",
        "token_env": TOKEN_ENV,
        "base_url": api.base_url,
        "poll_timeout": 1,
        "request_timeout": 5,
    }
    return TelegramConfig.model_validate(entry | overrides)


@pytest.fixture
def token(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(TOKEN_ENV, GOOD_TOKEN)
    return GOOD_TOKEN


@pytest.fixture
async def cursors() -> AsyncIterator[CursorStore]:
    """Cursors under a prefix of this test's own; only the keys it wrote are deleted (a SCAN
    of the shared Redis would cost seconds)."""
    client = aioredis.Redis.from_url(REDIS_URL)
    store = CursorStore(client, f"odtest:{uuid.uuid4().hex[:12]}")
    try:
        yield store
    finally:
        await client.delete(store.key("bot"))
        await client.aclose()


@pytest.fixture
async def connector(
    botapi: BotApi,
    cursors: CursorStore,
    token: str,
) -> AsyncIterator[TelegramConnector]:
    async with TelegramConnector(make_config(botapi), cursors) as conn:
        yield conn


class RecordingSink:
    """Records batches; fails the first `fail` hand-overs like a broker outage would."""

    def __init__(self, fail: int = 0, retry_after: float | None = None) -> None:
        self.fail = fail
        self.retry_after = retry_after  # the delay a failed hand-over asks for
        self.attempts: list[list[RawPayload]] = []
        self.accepted: list[RawPayload] = []

    async def __call__(self, items: list[RawPayload]) -> None:
        self.attempts.append(items)
        if self.fail > 0:
            self.fail -= 1
            raise TransientError("broker unavailable", retry_after=self.retry_after)
        self.accepted.extend(items)

    def update_ids(self) -> list[int]:
        return [json.loads(item.payload)["update_id"] for item in self.accepted]


async def eventually(predicate: Any, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.02)
    return bool(predicate())


def outbound(text: str, **meta: str) -> Outbound:
    return Outbound(
        id="out-1",
        ticket_id="T-1",
        channel=Channel.TELEGRAM,
        account="bot",
        text=text,
        in_reply_to="777:55",
        meta={"chat_id": "777", **meta},
    )


# ---------------------------------------------------------------- config


def test_config_is_in_the_catalog_and_rejects_unknown_keys() -> None:
    entry = {"name": "bot", "kind": "telegram", "token_env": "TG_TOKEN"}
    assert isinstance(validate_entry(entry), TelegramConfig)
    with pytest.raises(ValueError, match="pol_timeout"):
        validate_entry(entry | {"pol_timeout": 5})
    with pytest.raises(ValueError, match="secret_token_env"):
        validate_entry(entry | {"mode": "webhook"})


async def test_missing_token_variable_is_a_startup_error_naming_it(
    botapi: BotApi,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    with pytest.raises(ConfigError, match=TOKEN_ENV):
        await TelegramConnector(make_config(botapi)).initialize()


# ---------------------------------------------------------------- polling


async def test_offset_advances_only_after_the_sink_accepted_the_batch(
    botapi: BotApi,
    connector: TelegramConnector,
    cursors: CursorStore,
) -> None:
    botapi.push(update(1, "السجل التجاري منتهي"), update(2, "hello"), update(3, "شكوى"))
    sink = RecordingSink(fail=1)
    with pytest.raises(TransientError):
        await connector.run_once(sink)
    assert await cursors.get("bot") is None  # nothing confirmed
    await connector.run_once(sink)
    assert [[json.loads(i.payload)["update_id"] for i in b] for b in sink.attempts] == [
        [1, 2, 3],
        [1, 2, 3],
    ]
    assert sink.update_ids() == [1, 2, 3]
    assert await cursors.get("bot") == {"offset": 4}
    first = sink.accepted[0]
    assert first.channel == Channel.TELEGRAM and first.account == "bot"
    assert first.source == "telegram:update:1"
    assert json.loads(first.payload)["message"]["text"] == "السجل التجاري منتهي"
    assert connector.status.received == 6 and connector.status.handed_over == 3


async def test_restart_resumes_from_the_cursor_without_redelivery(
    botapi: BotApi,
    cursors: CursorStore,
    token: str,
) -> None:
    botapi.push(update(10, "one"), update(11, "two"))
    sink = RecordingSink()
    async with TelegramConnector(make_config(botapi), cursors) as first:
        await first.run_once(sink)
    botapi.push(update(12, "three"))
    async with TelegramConnector(make_config(botapi), cursors) as second:
        await second.run_once(sink)
    assert sink.update_ids() == [10, 11, 12]
    asked = [int(p["offset"]) for m, p in botapi.calls if m == "getUpdates" and "offset" in p]
    assert asked == [12]  # the second instance started from the stored cursor


async def test_the_reconnect_loop_delivers_everything_despite_a_failed_handover(
    botapi: BotApi,
    connector: TelegramConnector,
) -> None:
    botapi.push(*(update(i, f"m{i}") for i in range(20, 25)))
    sink = RecordingSink(fail=1)
    task = asyncio.create_task(connector.start(sink))
    try:
        assert await eventually(lambda: len(sink.accepted) >= 5)
        botapi.push(update(25, "late"))
        assert await eventually(lambda: len(sink.accepted) >= 6)
    finally:
        await connector.stop()
        await asyncio.wait_for(task, 5)
    assert sink.update_ids() == [20, 21, 22, 23, 24, 25]
    assert connector.status.errors == {"transient": 1}
    assert connector.status.state == "stopped"


async def test_bad_token_is_an_auth_error_and_not_retried_in_a_tight_loop(
    botapi: BotApi,
    cursors: CursorStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(TOKEN_ENV, "999:wrong-token")
    async with TelegramConnector(make_config(botapi), cursors) as conn:
        with pytest.raises(AuthError, match=TOKEN_ENV) as caught:
            await conn.check()
        assert "wrong-token" not in str(caught.value)  # the secret is never in a message
        task = asyncio.create_task(conn.start(RecordingSink()))
        try:
            assert await eventually(lambda: conn.status.state == "auth_error")
            await asyncio.sleep(0.5)
            assert botapi.count("getUpdates") == 1
            assert conn.status.last_error_kind == "auth"
        finally:
            await conn.stop()
            await asyncio.wait_for(task, 5)


async def test_check_reads_the_bot_with_getme(connector: TelegramConnector) -> None:
    await connector.check()
    assert connector.bot_username == "desk_bot"


# ---------------------------------------------------------------- sending


async def test_send_replies_to_the_customer_message(
    botapi: BotApi,
    connector: TelegramConnector,
) -> None:
    receipt = await connector.send(outbound("شكراً لتواصلك"))
    assert receipt.status == "sent"
    [sent] = botapi.sent
    assert sent["chat_id"] == "777" and sent["text"] == "شكراً لتواصلك"
    assert json.loads(sent["reply_parameters"])["message_id"] == 55
    assert receipt.external_id == f"777:{botapi._next_message_id}"


async def test_retry_after_is_honoured_on_send_message(
    botapi: BotApi,
    connector: TelegramConnector,
) -> None:
    botapi.flood_once = 1
    started = time.monotonic()
    receipt = await connector.send(outbound("رد"))
    assert time.monotonic() - started >= 1.0
    assert botapi.count("sendMessage") == 2 and len(botapi.sent) == 1
    assert receipt.status == "sent"


async def test_a_long_retry_after_goes_back_to_deliver_with_its_delay(
    botapi: BotApi,
    cursors: CursorStore,
    token: str,
) -> None:
    botapi.flood_once = 30
    async with TelegramConnector(make_config(botapi, max_retry_wait=5), cursors) as conn:
        with pytest.raises(TransientError) as caught:
            await conn.send(outbound("رد"))
    assert caught.value.retry_after == 30
    assert botapi.sent == []


async def test_long_text_is_split_with_reply_on_the_first_and_buttons_on_the_last(
    botapi: BotApi,
    connector: TelegramConnector,
) -> None:
    paragraph = "نشكر تواصلكم مع وزارة التجارة بخصوص السجل التجاري. " * 30
    text = "\n\n".join(f"{i}. {paragraph.strip()}" for i in range(9))  # ~14k characters
    buttons = json.dumps([[str(n), f"csat:T-1:{n}"] for n in range(1, 6)])
    receipt = await connector.send(outbound(text, buttons=buttons))
    assert len(botapi.sent) >= 4
    assert all(len(m["text"]) <= 4096 for m in botapi.sent)
    assert json.loads(botapi.sent[0]["reply_parameters"])["message_id"] == 55
    assert all("reply_parameters" not in m for m in botapi.sent[1:])
    assert all(m["text"][0].isdigit() for m in botapi.sent)  # cut at paragraph breaks
    assert "".join(m["text"] for m in botapi.sent).replace("\n", "") == text.replace("\n", "")
    keyboard = json.loads(botapi.sent[-1]["reply_markup"])["inline_keyboard"]
    assert [b["callback_data"] for b in keyboard[0]] == [f"csat:T-1:{n}" for n in range(1, 6)]
    assert all("reply_markup" not in m for m in botapi.sent[:-1])
    assert receipt.detail.count(",") == len(botapi.sent) - 1


async def test_bad_buttons_and_missing_chat_are_clear_permanent_errors(
    botapi: BotApi,
    connector: TelegramConnector,
) -> None:
    with pytest.raises(PermanentError, match="buttons"):
        await connector.send(outbound("x", buttons="[1, 2"))
    with pytest.raises(PermanentError, match="chat_id"):
        await connector.send(
            Outbound(id="o", ticket_id="T", channel=Channel.TELEGRAM, account="bot", text="x")
        )
    assert botapi.sent == []


# ---------------------------------------------------------------- webhook


class Daemonish:
    """The little the HTTP app needs from the daemon (the webhook itself gets a sink)."""

    async def health(self) -> dict[str, Any]:
        return {"ok": True}

    async def render_metrics(self) -> bytes:
        return b""

    async def handover(self, items: list[RawPayload]) -> None:
        raise AssertionError("the webhook hands over through its own sink")

    def validate_payload(self, channel: Channel, payload: bytes) -> None:
        return None


async def test_webhook_checks_the_secret_token_header(
    botapi: BotApi,
    token: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(SECRET_ENV, "s3cret-value")
    config = make_config(botapi, mode="webhook", secret_token_env=SECRET_ENV)
    sink = RecordingSink()
    async with TelegramConnector(config) as conn:
        app = build_app(Daemonish(), max_body=1 << 20, hooks=[webhook_routes(conn, sink)])
        async with TestClient(TestServer(app)) as client:
            body = json.dumps(update(70, "عبر الويب هوك")).encode()
            path = "/v1/webhooks/telegram/bot"
            wrong = await client.post(path, data=body, headers={SECRET_HEADER: "s3cret-valuX"})
            missing = await client.post(path, data=body)
            right = await client.post(path, data=body, headers={SECRET_HEADER: "s3cret-value"})
            assert (wrong.status, missing.status, right.status) == (401, 401, 200)
            sink.fail, sink.retry_after = 1, 7  # hand-over fails: 503, Telegram sends it again
            again = await client.post(path, data=body, headers={SECRET_HEADER: "s3cret-value"})
            assert again.status == 503
            assert again.headers["Retry-After"] == "7"  # the sink's own word
    assert sink.update_ids() == [70]
    assert sink.accepted[0].source == "telegram:update:70"
    assert conn.status.errors["auth"] == 2


# ---------------------------------------------------------------- through the pipeline


async def test_update_becomes_a_ticket_and_the_reply_reaches_the_bot_api(
    botapi: BotApi,
    cursors: CursorStore,
    token: str,
    runtime: Any,
    prefix: str,
) -> None:
    from omnidesk.pipeline import Pipeline, make_broker, register_sender, unregister_sender

    broker = make_broker(REDIS_URL, prefix)
    pipeline = Pipeline(runtime, broker)
    worker = pipeline.start_worker(threads=1)
    store = runtime.store
    try:
        async with TelegramConnector(make_config(botapi), cursors) as conn:
            register_sender(
                Channel.TELEGRAM, conn.account, conn.send, loop=asyncio.get_running_loop()
            )
            botapi.push(update(90, "أريد تجديد السجل التجاري", chat_id=5150, message_id=321))
            await conn.run_once(pipeline.handover)
            assert await eventually(lambda: store.ticket_count() == 1, timeout=15)
            ticket = store.list_tickets()[0]
            [message] = store.ticket_messages(ticket.id)
            assert message.external_id == "5150:321" and ticket.channel == Channel.TELEGRAM
            reply = Outbound(
                id="reply-1",
                ticket_id=ticket.id,
                channel=Channel.TELEGRAM,
                account=conn.account,
                text="تم استلام طلبك",
                in_reply_to=message.external_id,
                meta={"chat_id": "5150"},
            )
            store.add_outbound_message(reply, author="agent:1")
            await asyncio.to_thread(pipeline.send_reply, reply)
            assert await eventually(lambda: len(botapi.sent) == 1, timeout=15)
            assert await eventually(
                lambda: store.get_message("reply-1").delivery == "sent", timeout=5
            )
    finally:
        unregister_sender(Channel.TELEGRAM, "bot")
        await asyncio.to_thread(worker.stop, 5_000)
        broker.close()
    sent = botapi.sent[0]
    assert sent["chat_id"] == "5150" and sent["text"] == "تم استلام طلبك"
    assert json.loads(sent["reply_parameters"])["message_id"] == 321


async def test_daemon_wires_polling_webhook_and_replies(
    botapi: BotApi,
    token: str,
    prefix: str,
    tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The real daemon wiring (cursors, sender, `add_routes`): a polled update and a webhook
    POST become tickets, and a reply goes out through `deliver`."""
    import aiohttp

    from omnidesk import service
    from omnidesk.pipeline import unregister_sender
    from tests.storekit import write_config

    monkeypatch.setenv(SECRET_ENV, "hook-secret")
    config = write_config(prefix, tmp_path / "state", tmp_path / "queue_config.yaml")
    config.write_text(
        config.read_text("utf-8")
        + "connectors:\n"
        + f"  - {{name: bot, kind: telegram, token_env: {TOKEN_ENV}, base_url: '{botapi.base_url}',"
        + " poll_timeout: 1}\n"
        + f"  - {{name: hook, kind: telegram, token_env: {TOKEN_ENV}, mode: webhook,"
        + f" secret_token_env: {SECRET_ENV}, base_url: '{botapi.base_url}'}}\n",
        "utf-8",
    )
    options = service.DaemonOptions(config=str(config), workers=1, http_port=0, drain_timeout=5)
    try:
        async with service.Daemon(options) as daemon:
            store = daemon.runtime.store
            botapi.push(update(5, "استفسار عن السجل التجاري", chat_id=61, message_id=7))
            assert await eventually(lambda: store.ticket_count() == 1, timeout=15)
            url = f"http://127.0.0.1:{daemon.http_port}/v1/webhooks/telegram/hook"
            body = json.dumps(update(6, "شكوى عبر الويب هوك", chat_id=62)).encode()
            async with aiohttp.ClientSession() as http:
                refused = await http.post(url, data=body, headers={SECRET_HEADER: "nope"})
                taken = await http.post(url, data=body, headers={SECRET_HEADER: "hook-secret"})
                assert (refused.status, taken.status) == (401, 200)
            assert await eventually(lambda: store.ticket_count() == 2, timeout=15)
            ticket = next(t for t in store.list_tickets() if t.account == "bot")
            reply = Outbound(
                id="daemon-reply",
                ticket_id=ticket.id,
                channel=Channel.TELEGRAM,
                account="bot",
                text="أهلاً بك",
                in_reply_to="61:7",
                meta={"chat_id": "61"},
            )
            store.add_outbound_message(reply, author="agent:1")
            await asyncio.to_thread(daemon.pipeline.send_reply, reply)
            assert await eventually(lambda: len(botapi.sent) == 1, timeout=15)
            health = await daemon.health()
            assert {c["name"]: c["state"] for c in health["connectors"]}["bot"] == "running"
            assert await store_cursor(daemon, "bot") == {"offset": 6}
    finally:
        unregister_sender(Channel.TELEGRAM, "bot")
        unregister_sender(Channel.TELEGRAM, "hook")
    assert botapi.sent[0]["chat_id"] == "61"


async def store_cursor(daemon: Any, name: str) -> Any:
    connector = next(c for c in daemon.connectors if c.name == name)
    return await connector.cursors.get(name)


# ---------------------------------------------------------------- update kinds we do not know

# kinds the normalizer reads as a message (or a button press), and the id: not "unknown"
_READ_KINDS = {"message", "edited_message", "business_message", "edited_business_message",
               "callback_query", "update_id"}  # fmt: skip
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=10,
)


@settings(max_examples=200, deadline=None)
@given(
    kind=st.from_regex(r"[a-z][a-z_]{0,30}", fullmatch=True).filter(lambda k: k not in _READ_KINDS),
    value=_JSON,
    update_id=st.integers(min_value=0, max_value=2**40),
)
def test_any_update_kind_we_do_not_read_is_skipped_never_refused(
    kind: str, value: Any, update_id: int
) -> None:
    """The Bot API adds kinds often: whatever the kind and its body, it is skipped with a
    reason naming it (a known kind by its name), so nothing piles up in the quarantine."""
    result = normalize({"update_id": update_id, kind: value})
    assert isinstance(result, Skipped)
    assert result.reason in (kind, f"unknown_update:{kind}")


@settings(max_examples=100, deadline=None)
@given(field=st.sampled_from(["message_id", "chat", "from", "date"]), kind=st.sampled_from(
    ["message", "edited_message", "business_message"]))  # fmt: skip
def test_a_message_missing_a_required_field_is_still_refused(field: str, kind: str) -> None:
    message = dict(update(5, "مرحبا")["message"])
    del message[field]
    try:
        result = normalize({"update_id": 5, kind: message})
    except PayloadError as exc:
        assert exc.reason == "missing_field" and f"{kind}.{field}" in str(exc)
    else:  # an anonymous admin posts without `from`: a skip, said so
        assert field == "from" and isinstance(result, Skipped) and result.reason == "no_sender"


async def test_unknown_update_kind_is_counted_as_skipped_not_quarantined(
    botapi: BotApi,
    cursors: CursorStore,
    token: str,
    runtime: Any,
    prefix: str,
) -> None:
    """Through the real connector and pipeline: the new kind is skipped with its reason,
    the message after it still becomes a ticket, and the quarantine stays empty."""
    from omnidesk.pipeline import Pipeline, make_broker

    broker = make_broker(REDIS_URL, prefix)
    pipeline = Pipeline(runtime, broker)
    worker = pipeline.start_worker(threads=1)
    store = runtime.store
    try:
        async with TelegramConnector(make_config(botapi), cursors) as conn:
            botapi.push({"update_id": 91, "guest_story_reply": {"story_id": 7, "date": 1}})
            botapi.push(update(92, "أريد تجديد السجل التجاري", chat_id=5151, message_id=322))
            await conn.run_once(pipeline.handover)
            assert await eventually(lambda: store.ticket_count() == 1, timeout=15)
            assert await eventually(
                lambda: (
                    store.counts()["stats"].get("skipped:unknown_update:guest_story_reply") == 1
                ),
                timeout=15,
            )
    finally:
        await asyncio.to_thread(worker.stop, 5_000)
        broker.close()
    assert store.counts()["quarantine"] == 0
