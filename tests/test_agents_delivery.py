"""A reply goes out through the real `deliver` actor (dramatiq on the real Redis) and its
delivery status comes back onto the message, including a refusal; a Telegram reply and the
CSAT buttons reach a local Bot API stand-in through python-telegram-bot.

The e-mail reply goes through the real IMAP connector's `send` (its SmtpSender), registered
the way the daemon registers it, to a real aiosmtpd server where the threading headers and
the subject's ticket reference are checked.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from connectors.catalog import build
from omnidesk.model import Channel, Outbound, Receipt
from omnidesk.pipeline import Pipeline, make_broker, register_sender, unregister_sender
from omnidesk.service import register_connector_sender
from tests.agentkit import make
from tests.services import SmtpSink, eventually, free_port, wait_for
from tests.storekit import REDIS_URL, email, telegram
from tests.storekit import web as web_form


async def test_email_reply_goes_out_through_the_imap_connector_threaded_and_a_refusal_shows(
    prefix: str, tmp_path: Path, smtp_server: SmtpSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = f"OD_TEST_IMAP_PW_{uuid.uuid4().hex[:8].upper()}"
    monkeypatch.setenv(env, "unused: this test only sends")
    connector = build(  # the daemon's way: the catalog from a `connectors:` entry
        {
            "kind": "imap",
            "name": "care",  # the account the customer wrote to (storekit.email)
            "host": "127.0.0.1",
            "security": "none",
            "username": "care@mc.gov.sa",
            "password_env": env,
            "smtp": {
                "host": smtp_server.host,
                "port": smtp_server.port,
                "security": "none",
                "from_address": "care@mc.gov.sa",
            },
        }
    )
    await connector.initialize()
    broker = make_broker(REDIS_URL, prefix)
    runtime, service, _ = make(prefix, tmp_path)
    pipeline = Pipeline(runtime, broker)
    service.desk.send_reply = pipeline.send_reply
    service.surveys.send_reply = pipeline.send_reply

    async def refuse(out: Outbound) -> Receipt:
        return Receipt(
            outbound_id=out.id, status="refused", detail="outside the 24-hour customer window"
        )

    # sends run on this loop, as on the daemon's: the worker thread hands each one over
    assert register_connector_sender(connector, asyncio.get_running_loop())
    register_sender(Channel.WEB, "*", refuse)  # as WhatsApp does outside its window
    worker = pipeline.start_worker(threads=2)
    try:
        first = email("m1@customer.example", "My registration number is wrong", subject="CR")
        (opened,) = (await asyncio.to_thread(runtime.process, [first])).results
        follow = email(
            "m2@customer.example",
            "Any news?",
            subject=f"Re: CR [#{opened.ticket_id}]",
            in_reply_to="m1@customer.example",
        )
        (appended,) = (await asyncio.to_thread(runtime.process, [follow])).results
        assert appended.ticket_id == opened.ticket_id
        amal = service.agent("amal")
        message = await asyncio.to_thread(
            service.desk.reply, amal, opened.ticket_id, "تم تصحيح الرقم. Fixed."
        )
        assert await eventually(lambda: smtp_server.envelopes, 20), "nothing reached SMTP"
        (got,) = smtp_server.messages
        assert got["In-Reply-To"] == "<m2@customer.example>"
        assert got["References"].split() == ["<m1@customer.example>", "<m2@customer.example>"]
        assert got["Subject"] == f"Re: CR [#{opened.ticket_id}]"  # the reference, once
        assert got["To"] == "customer@example.com" and got["From"] == "care@mc.gov.sa"
        assert smtp_server.envelopes[0].rcpt_tos == ["customer@example.com"]
        assert "تم تصحيح الرقم" in got.get_body(("plain",)).get_content()
        assert await eventually(lambda: service.store.get_message(message.id).delivery == "sent")

        (web_ticket,) = (
            await asyncio.to_thread(runtime.process, [web_form("hello", email="w@example.sa")])
        ).results
        refused = await asyncio.to_thread(service.desk.reply, amal, web_ticket.ticket_id, "hi")
        assert await eventually(
            lambda: (service.store.get_message(refused.id).delivery or "").startswith("refused")
        )
        view = service.desk.view(amal, web_ticket.ticket_id)
        out = next(m for m in view["messages"] if m["direction"] == "out")
        assert out["delivery"] == "refused: outside the 24-hour customer window"
        assert any(e["type"] == "delivery" for e in view["history"])
    finally:
        await asyncio.to_thread(worker.stop, 5_000)
        unregister_sender(Channel.EMAIL, "care")
        unregister_sender(Channel.WEB, "*")
        broker.close()
        await connector.shutdown()


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
