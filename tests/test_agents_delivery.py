"""A reply goes out through the real `deliver` actor (dramatiq on the real Redis) and its
delivery status comes back onto the message, including a refusal; a Telegram reply and the
CSAT buttons reach a local Bot API stand-in through python-telegram-bot.

The imap branch's SMTP sender has not landed on main yet, so the e-mail sender registered
here is the test's own: it turns the Outbound into a message and sends it with aiosmtplib
to a real aiosmtpd server, which is what the threading headers are checked on.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from email import message_from_bytes
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any

import aiosmtplib
import pytest
from aiohttp import web
from aiosmtpd.controller import Controller

from omnidesk.model import Channel, Outbound, Receipt
from omnidesk.pipeline import Pipeline, make_broker, register_sender, unregister_sender
from tests.agentkit import make
from tests.storekit import REDIS_URL, email, telegram
from tests.storekit import web as web_form
from tests.test_daemon import free_port


class Inbox:
    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope.content)
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


def wait_for(check: Any, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return False


def test_email_reply_arrives_threaded_and_a_refusal_shows_on_the_message(
    prefix: str, tmp_path: Path, smtp: tuple[Inbox, int]
) -> None:
    inbox, port = smtp
    broker = make_broker(REDIS_URL, prefix)
    runtime, service, _ = make(prefix, tmp_path)
    pipeline = Pipeline(runtime, broker)
    service.desk.send_reply = pipeline.send_reply
    service.surveys.send_reply = pipeline.send_reply

    async def send_email(out: Outbound) -> Receipt:
        msg = EmailMessage()
        msg["From"] = "care@mc.gov.sa"
        msg["To"] = ", ".join(i.value for i in out.to)
        msg["Subject"] = out.subject
        msg["Message-ID"] = make_msgid(domain="mc.gov.sa")
        if out.in_reply_to:
            msg["In-Reply-To"] = out.in_reply_to
        if out.references:
            msg["References"] = " ".join(out.references)
        msg.set_content(out.text)
        await aiosmtplib.send(msg, hostname="127.0.0.1", port=port)
        return Receipt(outbound_id=out.id, status="sent", external_id=msg["Message-ID"])

    async def refuse(out: Outbound) -> Receipt:
        return Receipt(
            outbound_id=out.id, status="refused", detail="outside the 24-hour customer window"
        )

    register_sender(Channel.EMAIL, "care", send_email)
    register_sender(Channel.WEB, "*", refuse)  # as WhatsApp does outside its window
    worker = pipeline.start_worker(threads=2)
    try:
        first = email("m1@customer.example", "My registration number is wrong", subject="CR")
        (opened,) = runtime.process([first]).results
        follow = email(
            "m2@customer.example",
            "Any news?",
            subject=f"Re: CR [{opened.ticket_id}]",
            in_reply_to="m1@customer.example",
        )
        (appended,) = runtime.process([follow]).results
        assert appended.ticket_id == opened.ticket_id
        amal = service.agent("amal")
        message = service.desk.reply(amal, opened.ticket_id, "تم تصحيح الرقم. Fixed.")
        assert wait_for(lambda: inbox.messages), "nothing reached the SMTP server"
        got = message_from_bytes(inbox.messages[0])
        assert got["In-Reply-To"] == "<m2@customer.example>"
        assert got["References"].split() == ["<m1@customer.example>", "<m2@customer.example>"]
        assert got["Subject"] == f"Re: CR [{opened.ticket_id}]"
        assert got["To"] == "customer@example.com"
        assert "تم تصحيح الرقم" in got.get_payload(decode=True).decode()
        assert wait_for(lambda: service.store.get_message(message.id).delivery == "sent")

        web_ticket = runtime.process([web_form("hello there", email="w@example.sa")]).results[0]
        refused = service.desk.reply(amal, web_ticket.ticket_id, "hello")
        assert wait_for(
            lambda: (service.store.get_message(refused.id).delivery or "").startswith("refused")
        )
        view = service.desk.view(amal, web_ticket.ticket_id)
        out = next(m for m in view["messages"] if m["direction"] == "out")
        assert out["delivery"] == "refused: outside the 24-hour customer window"
        assert any(e["type"] == "delivery" for e in view["history"])
    finally:
        worker.stop(timeout=5_000)
        unregister_sender(Channel.EMAIL, "care")
        unregister_sender(Channel.WEB, "*")
        broker.close()


class BotApi:
    """A local stand-in for api.telegram.org speaking the Bot API's JSON for the methods a
    sender uses; records what arrived."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    async def handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        if request.content_type == "application/json":
            params = await request.json()
        else:
            params = dict(await request.post())
        self.calls.append((method, params))
        if method == "getMe":
            result: dict[str, Any] = {
                "id": 1,
                "is_bot": True,
                "first_name": "Omnidesk",
                "username": "omnidesk_bot",
            }
        elif method == "sendMessage":
            result = {
                "message_id": 500 + len(self.calls),
                "date": 1_780_000_500,
                "chat": {"id": int(params["chat_id"]), "type": "private"},
                "text": params["text"],
            }
        else:
            return web.json_response({"ok": False, "error_code": 404, "description": "Not Found"})
        return web.json_response({"ok": True, "result": result})


def test_telegram_reply_and_survey_buttons_reach_the_bot_api_stand_in(
    prefix: str, tmp_path: Path
) -> None:
    """The telegram branch's sender has not landed on main: the sender here is the test's
    own, built on python-telegram-bot pointed at a local Bot API (its `base_url`)."""
    import threading

    from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup

    api = BotApi()
    app = web.Application()
    app.router.add_post("/bot{token}/{method}", api.handle)
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app)
    port = free_port()
    loop.run_until_complete(runner.setup())
    loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def send_telegram(out: Outbound) -> Receipt:
        markup = None
        if "buttons" in out.meta:
            rows = [
                [InlineKeyboardButton(label, callback_data=data)]
                for label, data in json.loads(out.meta["buttons"])
            ]
            markup = InlineKeyboardMarkup(rows)
        async with Bot("123:TEST", base_url=f"http://127.0.0.1:{port}/bot") as bot:
            sent = await bot.send_message(
                chat_id=int(out.meta["chat_id"]), text=out.text, reply_markup=markup
            )
        return Receipt(outbound_id=out.id, status="sent", external_id=str(sent.message_id))

    broker = make_broker(REDIS_URL, prefix)
    runtime, service, _ = make(prefix, tmp_path)
    pipeline = Pipeline(runtime, broker)
    service.desk.send_reply = pipeline.send_reply
    service.surveys.send_reply = pipeline.send_reply
    register_sender(Channel.TELEGRAM, "bot", send_telegram)
    worker = pipeline.start_worker(threads=2)
    try:
        (opened,) = runtime.process([telegram(1, 4242, 7, "عندي سؤال عن الخدمات")]).results
        amal = service.agent("amal")
        reply = service.desk.reply(amal, opened.ticket_id, "أهلًا، كيف نخدمك؟")
        service.desk.resolve(amal, opened.ticket_id)

        def sends() -> list[dict[str, Any]]:
            return [p for m, p in api.calls if m == "sendMessage"]

        assert wait_for(lambda: len(sends()) == 2), api.calls
        # two worker threads: the reply and the survey may go out in either order
        (first,) = [p for p in sends() if "reply_markup" not in p]
        (survey,) = [p for p in sends() if "reply_markup" in p]
        assert (str(first["chat_id"]), first["text"]) == ("4242", "أهلًا، كيف نخدمك؟")
        keyboard = json.loads(survey["reply_markup"])["inline_keyboard"]
        assert [row[0]["callback_data"].split(":")[2] for row in keyboard] == list("12345")
        assert wait_for(lambda: service.store.get_message(reply.id).delivery == "sent")
    finally:
        worker.stop(timeout=5_000)
        unregister_sender(Channel.TELEGRAM, "bot")
        broker.close()
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.run_until_complete(runner.cleanup())
        loop.close()
