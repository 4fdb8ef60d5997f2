"""Track my request in a chat or by e-mail (issue 14). Telegram end to end: the real
connector polls the Bot API stand-in (tests/botapi.py), the ingest actor answers a message
that is only a ticket number with the ticket's status, and `deliver` sends it back to the
same chat; no ticket is opened. Another sender, an unknown ticket, a redelivery and a sender
past the limit get nothing. By e-mail, a subject that is only the ticket tag and status/حالة
is answered to its sender; anything else is mail as before."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from connectors.state import CursorStore
from connectors.telegram.connector import TelegramConnector
from omnidesk.db.records import Records
from omnidesk.model import Channel, Direction, Outbound, RawPayload
from omnidesk.pipeline import Pipeline, make_broker, register_sender, unregister_sender
from omnidesk.runtime import Runtime
from omnidesk.status_replies import EVENT
from tests.botapi import GOOD_TOKEN, BotApi, botapi, update  # noqa: F401
from tests.storekit import REDIS_URL, config_for, email, telegram, web
from tests.test_telegram import TOKEN_ENV, make_config

ARABIC_DIGITS = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")


def make_runtime(prefix: str, tmp_path: Path, pg_url: str, per_sender: int = 10) -> Runtime:
    loaded = config_for(prefix, tmp_path / "state")
    service = loaded.data.service
    web_form = service.web_form.model_copy(update={"status_replies_per_sender": per_sender})
    data = loaded.data.model_copy(
        update={"service": service.model_copy(update={"web_form": web_form})}
    )
    return Runtime.for_service(replace(loaded, data=data), records=Records(pg_url))


def stats(runtime: Runtime) -> dict[str, Any]:
    return runtime.store.counts()["stats"]


async def test_a_ticket_number_on_telegram_gets_the_status_back_and_opens_nothing(
    botapi: BotApi,
    prefix: str,
    tmp_path: Path,
    pg_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(TOKEN_ENV, GOOD_TOKEN)
    runtime = make_runtime(prefix, tmp_path, pg_url, per_sender=2)
    store = runtime.store
    broker = make_broker(REDIS_URL, prefix)
    pipeline = Pipeline(runtime, broker)
    worker = pipeline.start_worker(threads=1)
    client = aioredis.Redis.from_url(REDIS_URL)
    cursors = CursorStore(client, f"odtest:{uuid.uuid4().hex[:12]}")
    try:
        async with TelegramConnector(make_config(botapi), cursors) as conn:
            loop = asyncio.get_running_loop()
            register_sender(Channel.TELEGRAM, conn.account, conn.send, loop=loop)

            async def poll_until(predicate: Any) -> bool:
                deadline = loop.time() + 20
                while loop.time() < deadline:
                    await conn.run_once(pipeline.handover)
                    if predicate():
                        return True
                    await asyncio.sleep(0.05)
                return bool(predicate())

            botapi.push(update(1, "أريد تجديد السجل التجاري", chat_id=5150, message_id=11))
            assert await poll_until(lambda: store.ticket_count() == 1)
            (ticket,) = store.list_tickets()

            # the number alone, in Arabic-Indic digits and lower case
            asked = ticket.id.lower().translate(ARABIC_DIGITS)
            botapi.push(update(2, asked, chat_id=5150, message_id=12))
            assert await poll_until(lambda: len(botapi.sent) == 1)
            sent = botapi.sent[0]
            assert sent["chat_id"] == "5150"
            assert ticket.id in sent["text"] and "تم الاستلام" in sent["text"]
            assert "بتوقيت الرياض" in sent["text"] and "Received" in sent["text"]
            assert sent["text"].index("تم الاستلام") < sent["text"].index("Received")
            assert store.ticket_count() == 1  # no ticket for the question
            answers = [m for m in store.ticket_messages(ticket.id) if m.direction == Direction.OUT]
            assert [(m.author, m.channel) for m in answers] == [("omnidesk", Channel.TELEGRAM)]
            assert await poll_until(lambda: store.get_message(answers[0].id).delivery == "sent")
            kinds = [f["type"] for _, f in store.events() if f.get("ticket") == ticket.id]
            assert EVENT in kinds and "replied" not in kinds  # no agent's reply: no clock stops

            # someone else asks for it, and someone asks for a ticket that does not exist
            botapi.push(update(3, ticket.id, chat_id=6160, message_id=13))
            botapi.push(update(4, "OD-2020-000999", chat_id=5150, message_id=14))
            assert await poll_until(lambda: stats(runtime).get("status_requests:unanswered") == 2)
            # a third answer to the same sender within the window is over the limit
            botapi.push(update(5, ticket.id, chat_id=5150, message_id=15))
            assert await poll_until(lambda: stats(runtime).get("status_requests:rate_limited") == 1)
            assert len(botapi.sent) == 1 and store.ticket_count() == 1
    finally:
        unregister_sender(Channel.TELEGRAM, "bot")
        await asyncio.to_thread(worker.stop, 5_000)
        broker.close()
        await client.delete(cursors.key("bot"))
        await client.aclose()


@pytest.fixture
def answered(prefix: str, tmp_path: Path, pg_url: str) -> Iterator[tuple[Runtime, list]]:
    """A worker's runtime whose hand-off to `deliver` is recorded (what would be sent)."""
    runtime = make_runtime(prefix, tmp_path, pg_url)
    sent: list[Outbound] = []
    runtime.send_replies = sent.extend
    yield runtime, sent
    runtime.records.close()


def test_a_redelivered_question_is_answered_once(answered: tuple[Runtime, list]) -> None:
    runtime, sent = answered
    (opened,) = runtime.process([telegram(1, 4242, 7, "سؤال عن الخدمات")]).results
    question = telegram(2, 4242, 8, f"#{opened.ticket_id}")
    (kept,) = runtime.process([question]).results  # their own open ticket: kept there too
    (again,) = runtime.process([question]).results  # the batch ran again
    assert (kept.outcome, kept.ticket_id) == ("appended", opened.ticket_id)
    assert (again.outcome, again.ticket_id) == ("duplicate", opened.ticket_id)
    assert len(sent) == 1 and sent[0].meta["chat_id"] == "4242"
    assert sent[0].in_reply_to == "4242:8"  # under the question
    assert stats(runtime)["status_requests:repeated"] == 1


def test_an_email_whose_subject_asks_for_the_status_is_answered_to_its_sender(
    answered: tuple[Runtime, list],
) -> None:
    runtime, sent = answered
    first = runtime.process([email("m1@example.sa", "السجل التجاري", sender="Huda@Example.sa")])
    tid = first.results[0].ticket_id
    assert tid is not None
    # e-mail status of a web-form ticket of the same customer works as well
    form = runtime.process([web("طلب عبر الموقع", email="huda@example.sa")]).results[0].ticket_id
    for n, (subject, ticket) in enumerate(
        [(f"[#{tid}] حالة", tid), (f"Status [#{form}]", form)], start=2
    ):
        taken = runtime.process([email(f"m{n}@example.sa", "", sender="huda@example.sa",
                                       subject=subject)])  # fmt: skip
        assert taken.results == [] and taken.quarantined == []
        out = sent[-1]
        assert out.ticket_id == ticket and out.channel == Channel.EMAIL
        assert [i.key for i in out.to] == ["email:huda@example.sa"]
        assert out.subject == f"Re: {subject}" and out.in_reply_to == f"<m{n}@example.sa>"
        assert out.meta["auto"] == "1"  # Auto-Submitted: no robot answers it
    assert sent[0].text.index("الطلب") < sent[0].text.index("Request")  # حالة: Arabic first
    assert sent[1].text.index("Request") < sent[1].text.index("الطلب")  # status: English
    assert runtime.store.ticket_count() == 2

    # not a status request: a reply, more words, another sender's mail, an auto-reply
    before = len(sent)
    follow = runtime.process(
        [
            email(
                "m9@example.sa", "any news?", sender="huda@example.sa", subject=f"Re: [#{tid}] حالة"
            )
        ]
    ).results[0]
    assert follow.outcome == "appended" and follow.ticket_id == tid
    longer = runtime.process(
        [email("m10@example.sa", "x", sender="huda@example.sa", subject=f"[#{tid}] status please")]
    ).results[0]
    assert longer.ticket_id == tid and longer.outcome == "appended"
    stranger = runtime.process(
        [email("m11@example.sa", "", sender="other@example.sa", subject=f"[#{tid}] status")]
    )
    assert stranger.results == []  # a question, but not theirs: no answer, no ticket
    robot = runtime.process(
        [email("m12@example.sa", "away", sender="huda@example.sa", subject=f"[#{tid}] status",
               headers={"Auto-Submitted": "auto-replied"})]
    )  # fmt: skip
    assert robot.results == [] or robot.results[0].outcome != "opened"
    assert len(sent) == before and runtime.store.ticket_count() == 2


def test_a_ticket_number_on_whatsapp_from_the_phone_on_a_web_ticket_is_answered_there(
    answered: tuple[Runtime, list],
) -> None:
    from tests.test_receipts import whatsapp_webhook

    runtime, sent = answered
    tid = runtime.process([web("شكوى", phone="055 123 4567")]).results[0].ticket_id
    assert tid is not None

    def ask(wa_id: str) -> RawPayload:
        return RawPayload(
            channel=Channel.WHATSAPP,
            account="mci_wa",
            payload=whatsapp_webhook(wa_id, time.time(), f"  {tid}  "),
            received_at=datetime.now(UTC),
        )

    (kept,) = runtime.process([ask("966551234567")]).results
    assert (kept.outcome, kept.ticket_id) == ("appended", tid)  # the agent sees it too
    (out,) = sent
    assert out.channel == Channel.WHATSAPP and out.ticket_id == tid
    assert out.meta["wa_id"] == "966551234567" and out.meta["last_customer_at"]
    assert [i.key for i in out.to] == ["whatsapp:966551234567"]
    assert tid in out.text and "تم الاستلام" in out.text
    assert runtime.process([ask("966559999999")]).results == []  # another number: silence
    assert len(sent) == 1 and runtime.store.ticket_count() == 1


def test_a_number_answering_an_agent_in_chat_reaches_the_ticket(
    answered: tuple[Runtime, list],
) -> None:
    """The agent asks "what is your reference?" and the customer answers with the number
    alone: the agent's ticket gets the message (and is open again); the sender also gets
    the status. A number for a closed or someone else's ticket still opens nothing."""
    from omnidesk.model import Status

    runtime, sent = answered
    store = runtime.store
    (first,) = runtime.process([telegram(1, 7070, 7, "لدي طلب سابق لم يُحل")]).results
    (older,) = runtime.process([telegram(2, 8080, 7, "طلب قديم")]).results
    tid = first.ticket_id or ""
    store.set_status(tid, "pending_customer", actor="amal")  # waiting for their answer
    (kept,) = runtime.process([telegram(3, 7070, 8, tid)]).results
    assert (kept.outcome, kept.ticket_id) == ("appended", tid)
    texts = [m.text for m in store.ticket_messages(tid) if m.direction == Direction.IN]
    assert texts[-1] == tid
    assert store.get_ticket(tid).status == Status.OPEN  # type: ignore[union-attr]
    assert len(sent) == 1 and sent[0].ticket_id == tid
    # someone else's ticket: silence, nothing kept; a closed one of their own: the same
    assert runtime.process([telegram(4, 7070, 9, older.ticket_id or "")]).results == []
    store.set_status(tid, "closed", actor="amal")
    assert runtime.process([telegram(5, 7070, 10, tid)]).results == []
    assert store.ticket_count() == 2


def test_a_mail_with_a_status_subject_and_something_to_say_is_a_message(
    answered: tuple[Runtime, list],
) -> None:
    runtime, sent = answered
    first = runtime.process([email("s1@example.sa", "السجل التجاري", sender="nora@example.sa")])
    tid = first.results[0].ticket_id
    assert tid is not None
    complaint = "ما زالت المشكلة قائمة، وقد دفعت الرسوم مرتين. أرجو الإفادة."
    (kept,) = runtime.process(
        [email("s2@example.sa", complaint, sender="nora@example.sa", subject=f"[#{tid}] status")]
    ).results
    assert (kept.outcome, kept.ticket_id) == ("appended", tid)
    assert runtime.store.get_message(kept.message_id or "").text == complaint  # type: ignore[union-attr]
    assert sent == []
    # the word alone, or nothing but the quoted history and a signature: a question
    quoted = f"حالة\n\nOn Sun, 6 Dec 2026 at 10:00, Omnidesk <care@mc.gov.sa> wrote:\n> {tid}\n"
    for n, body in enumerate(["Status", quoted, f"{tid} حالة\n--\nNora\n0551234567"], start=3):
        taken = runtime.process(
            [email(f"s{n}@example.sa", body, sender="nora@example.sa", subject=f"حالة [#{tid}]")]
        )
        assert taken.results == [], body
    assert len(sent) == 3 and all(o.ticket_id == tid for o in sent)


def test_the_per_sender_limit_applies_to_email_status_requests(
    prefix: str, tmp_path: Path, pg_url: str
) -> None:
    """service.web_form.status_replies_per_sender counts e-mail answers too: past it within
    the window, a sender's status mail is counted and opens nothing, with no answer. The
    sender is the address whatever its case; another customer still gets theirs."""
    runtime = make_runtime(prefix, tmp_path, pg_url, per_sender=2)
    sent: list[Outbound] = []
    runtime.send_replies = sent.extend
    try:
        mine = runtime.process([email("r1@example.sa", "السجل التجاري", sender="huda@example.sa")])
        theirs = runtime.process([email("r2@example.sa", "شكوى", sender="omar@example.sa")])
        tid, other = mine.results[0].ticket_id, theirs.results[0].ticket_id
        assert tid is not None and other is not None
        senders = ["huda@example.sa", "Huda@Example.SA", "huda@example.sa"]
        for n, sender in enumerate(senders, start=3):
            asked = email(f"r{n}@example.sa", "", sender=sender, subject=f"[#{tid}] status")
            taken = runtime.process([asked])
            assert taken.results == [] and taken.quarantined == []
        assert [o.ticket_id for o in sent] == [tid, tid]  # the third is over the limit
        assert all(o.channel == Channel.EMAIL for o in sent)
        assert stats(runtime)["status_requests:answered"] == 2
        assert stats(runtime)["status_requests:rate_limited"] == 1
        # the limit is the sender's: another customer asking about their own ticket is answered
        runtime.process(
            [email("r9@example.sa", "", sender="omar@example.sa", subject=f"حالة [#{other}]")]
        )
        assert [o.ticket_id for o in sent] == [tid, tid, other]
        assert [i.key for i in sent[-1].to] == ["email:omar@example.sa"]
        assert runtime.store.ticket_count() == 2
    finally:
        runtime.records.close()
