"""A rule's `then.answer_with_guide` end to end on Telegram and WhatsApp: the real
connector polls the Bot API stand-in (tests/botapi.py) or takes a signed webhook POST, the
ingest actor opens the ticket and answers it with the best guide, labelled as an automatic
answer in the customer's language, and `deliver` sends it to the same chat (on WhatsApp, to
the Graph API stand-in). The ticket stays open; the customer's reply comes into it. A
vague message, a redelivered batch and a web form get no answer."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from connectors.state import CursorStore
from connectors.telegram.connector import TelegramConnector
from omnidesk.db.records import Records
from omnidesk.guides.answers import CLAIM_FIELD, EVENT
from omnidesk.model import Channel, Direction, Outbound, RawPayload, Status, Ticket
from omnidesk.pipeline import Pipeline, make_broker, register_sender, unregister_sender
from omnidesk.runtime import Runtime
from omnidesk.senders import register_connector_sender
from omnidesk.store import Store
from tests.botapi import GOOD_TOKEN, BotApi, botapi, update  # noqa: F401
from tests.guidekit import PUBLIC_URL, answering_config
from tests.services import eventually
from tests.storekit import REDIS_URL, telegram
from tests.storekit import web as web_form
from tests.test_receipts import whatsapp_webhook
from tests.test_telegram import TOKEN_ENV, make_config
from tests.test_whatsapp import WA_ID, FakeGraph, graph, sign, wa_env, webhook_for  # noqa: F401

QUESTION = "اشتريت جهاز وتعطل وهو في الضمان والمحل رافض يصلحه، وش حقي؟"
FOLLOW_UP = "ما نفع، المحل ما زال رافض"
Until = Callable[[Callable[[], bool]], Awaitable[bool]]


@pytest.fixture
def answering(prefix: str, tmp_path: Path, pg_url: str) -> Iterator[tuple[Runtime, Pipeline]]:
    """The worker's runtime answering chats with guides (records on PostgreSQL) and its
    pipeline, with one dramatiq worker thread running `ingest` and `deliver`."""
    records = Records(pg_url)
    runtime = Runtime.for_service(answering_config(prefix, tmp_path / "state"), records=records)
    broker = make_broker(REDIS_URL, prefix)
    pipeline = Pipeline(runtime, broker)
    worker = pipeline.start_worker(threads=1)
    try:
        yield runtime, pipeline
    finally:
        worker.stop(timeout=5_000)
        broker.close()
        records.close()


async def assert_answered_and_open(
    store: Store, ticket_id: str, channel: Channel, text: str, until: Until
) -> None:
    """`text` (what reached the customer) is the warranty guide, labelled as an automatic
    answer; it is the ticket's one outbound message, delivered, recorded as a guide answer
    rather than an agent's reply (so the SLA clocks run), and the ticket stays open."""
    assert text.startswith("إجابة تلقائية: ضمان المنتجات والأجهزة")
    assert f"{PUBLIC_URL}/guides/warranty-ar" in text
    assert "وسيتابع معك أحد موظفينا" in text  # a person follows up on a reply
    out = [m for m in store.ticket_messages(ticket_id) if m.direction == Direction.OUT]
    assert [(m.author, m.channel) for m in out] == [("omnidesk", channel)]
    assert await until(lambda: store.get_message(out[0].id).delivery == "sent")
    kinds = [f["type"] for _, f in store.events() if f.get("ticket") == ticket_id]
    assert EVENT in kinds and "replied" not in kinds
    assert store.get_ticket(ticket_id).status not in (Status.RESOLVED, Status.CLOSED)


async def test_a_telegram_question_is_answered_with_a_guide_and_stays_open(
    botapi: BotApi,
    answering: tuple[Runtime, Pipeline],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(TOKEN_ENV, GOOD_TOKEN)
    runtime, pipeline = answering
    store = runtime.store
    client = aioredis.Redis.from_url(REDIS_URL)
    cursors = CursorStore(client, f"odtest:{uuid.uuid4().hex[:12]}")
    try:
        async with TelegramConnector(make_config(botapi), cursors) as conn:
            loop = asyncio.get_running_loop()
            register_sender(Channel.TELEGRAM, conn.account, conn.send, loop=loop)

            async def poll_until(predicate: Callable[[], bool]) -> bool:
                deadline = loop.time() + 20
                while loop.time() < deadline:
                    await conn.run_once(pipeline.handover)
                    if predicate():
                        return True
                    await asyncio.sleep(0.05)
                return bool(predicate())

            botapi.push(update(1, QUESTION, chat_id=5150, message_id=11))
            assert await poll_until(lambda: len(botapi.sent) == 1)
            (ticket,) = store.list_tickets()
            assert botapi.sent[0]["chat_id"] == "5150"
            text = botapi.sent[0]["text"]
            await assert_answered_and_open(store, ticket.id, Channel.TELEGRAM, text, poll_until)

            # the customer replies: the same ticket, still open, for a human; no second answer
            botapi.push(update(2, FOLLOW_UP, chat_id=5150, message_id=12))
            assert await poll_until(lambda: len(store.ticket_messages(ticket.id)) == 3)
            assert store.ticket_count() == 1 and len(botapi.sent) == 1
            assert store.get_ticket(ticket.id).status not in (Status.RESOLVED, Status.CLOSED)
    finally:
        unregister_sender(Channel.TELEGRAM, "bot")
        await client.delete(cursors.key("bot"))
        await client.aclose()


async def test_a_whatsapp_question_is_answered_with_a_guide_and_stays_open(
    graph: FakeGraph, answering: tuple[Runtime, Pipeline]
) -> None:
    """The real connector takes a signed webhook POST on its own aiohttp route, hands it to
    the broker; the guide answer goes out through `deliver` to the Graph API stand-in."""
    runtime, pipeline = answering
    store = runtime.store

    async def until(predicate: Callable[[], bool]) -> bool:
        return await eventually(predicate, 20)

    async with webhook_for(pipeline.handover, graph.base) as hook:
        assert register_connector_sender(hook.connector, asyncio.get_running_loop())
        try:
            body = whatsapp_webhook(WA_ID, time.time(), QUESTION)
            assert (await hook.post(body, sign(body))).status == 200
            assert await until(lambda: len(graph.sent) == 1), "nothing reached the Graph API"
            (ticket,) = store.list_tickets()
            (sent,) = graph.sent
            assert sent["to"] == WA_ID and sent["type"] == "text"
            text = sent["text"]["body"]
            await assert_answered_and_open(store, ticket.id, Channel.WHATSAPP, text, until)

            # the customer replies: the same ticket, still open, for a human; no second answer
            body = whatsapp_webhook(WA_ID, time.time(), FOLLOW_UP)
            assert (await hook.post(body, sign(body))).status == 200
            assert await until(lambda: len(store.ticket_messages(ticket.id)) == 3)
            assert store.ticket_count() == 1 and len(graph.sent) == 1
            assert store.get_ticket(ticket.id).status not in (Status.RESOLVED, Status.CLOSED)
        finally:
            unregister_sender(Channel.WHATSAPP, hook.connector.name)


@pytest.fixture
def answered(prefix: str, tmp_path: Path) -> Iterator[tuple[Runtime, list[Outbound]]]:
    """A worker's runtime (Redis alone) whose hand-off to `deliver` is recorded."""
    runtime = Runtime.from_config(answering_config(prefix, tmp_path / "state"))
    sent: list[Outbound] = []
    runtime.send_replies = sent.extend
    yield runtime, sent


def test_an_english_question_gets_the_english_guide_once(
    answered: tuple[Runtime, list[Outbound]],
) -> None:
    runtime, sent = answered
    batch = [telegram(1, 4242, 7, "How do I reserve a trade name for my new shop?")]
    (opened,) = runtime.process(batch).results
    (again,) = runtime.process(batch).results  # the batch ran again
    assert again.outcome == "duplicate"
    assert len(sent) == 1 and sent[0].meta["chat_id"] == "4242"
    assert sent[0].text.startswith("Automatic answer: Reserving a trade name")
    assert "/guides/trade-name-en" in sent[0].text and "reply here" in sent[0].text
    key = runtime.store.keys.ticket(opened.ticket_id)
    assert runtime.store.r.hget(key, CLAIM_FIELD) == "trade-name-en"
    assert runtime.store.counts()["stats"]["guide_answers"] == 1


def test_a_chat_owed_a_receipt_and_a_guide_gets_both_without_reading_its_ticket_back(
    prefix: str, tmp_path: Path
) -> None:
    """Receipts and guide answers share the batch's tickets (BatchTickets), and a ticket the
    batch opened is intake's own copy: it is not read back from Redis at all."""
    runtime = Runtime.from_config(answering_config(prefix, tmp_path / "state", receipt=True))
    sent: list[Outbound] = []
    runtime.send_replies = sent.extend
    reads: list[list[str]] = []
    get_tickets = runtime.store.get_tickets

    def counted(ticket_ids: list[str]) -> list[Ticket]:
        reads.append(list(ticket_ids))
        return get_tickets(ticket_ids)

    runtime.store.get_tickets = counted  # type: ignore[method-assign]
    (opened,) = runtime.process([telegram(1, 6161, 7, QUESTION)]).results
    assert opened.outcome == "opened"
    receipt, guide = sorted(sent, key=lambda o: "إجابة تلقائية" in o.text)
    assert receipt.text == f"سُجلت رسالتك برقم {opened.ticket_id}."
    assert guide.text.startswith("إجابة تلقائية: ضمان المنتجات والأجهزة")
    assert {o.ticket_id for o in sent} == {opened.ticket_id}
    assert [r for r in reads if opened.ticket_id in r] == []
    kinds = [f["type"] for _, f in runtime.store.events() if f.get("ticket") == opened.ticket_id]
    assert kinds.count("acknowledged") == 1 and kinds.count(EVENT) == 1


def test_vague_messages_and_the_web_form_get_no_answer(
    answered: tuple[Runtime, list[Outbound]],
) -> None:
    runtime, sent = answered
    runtime.process([telegram(1, 5353, 7, "السلام عليكم")])
    runtime.process([web_form("المحل رافض يصلح الجهاز وهو في الضمان", email="w@example.sa")])
    assert store_has(runtime, 2) and sent == []


def store_has(runtime: Runtime, tickets: int) -> bool:
    return runtime.store.ticket_count() == tickets


def test_a_whatsapp_question_is_answered_too(answered: tuple[Runtime, list[Outbound]]) -> None:
    runtime, sent = answered
    raw = RawPayload(
        channel=Channel.WHATSAPP,
        account="wa",
        payload=whatsapp_webhook("966501234567", time.time(), "Do I need a licence to run a sale?"),
        received_at=datetime.now(UTC),
    )
    (opened,) = runtime.process([raw]).results
    assert opened.outcome == "opened" and len(sent) == 1
    assert sent[0].channel == Channel.WHATSAPP and sent[0].ticket_id == opened.ticket_id
    assert sent[0].text.startswith("Automatic answer: Sales and discount licences")
