"""Receipts on the real services: mail through the real Dovecot and the IMAP connector,
intake by the ingest actor's body (or the actor itself), the receipt through the real
`deliver` actor (dramatiq on Redis) and the connector's SMTP sender to aiosmtpd; WhatsApp
through the connector to the local Graph stand-in."""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from connectors.email.config import EmailAccount
from connectors.whatsapp.connector import WhatsAppConnector
from connectors.whatsapp.messages import template_message
from omnidesk.configload import LoadedConfig, load_config
from omnidesk.errors import PermanentError, StoreUnavailable
from omnidesk.model import Channel, Direction, Message, Outbound, RawPayload
from omnidesk.outbound import Automatic, send_automatic, send_automatic_many
from omnidesk.pipeline import Pipeline, make_broker, unregister_sender
from omnidesk.reports.fold import Context
from omnidesk.reports.recompute import recompute
from omnidesk.runtime import Runtime
from omnidesk.service import register_connector_sender
from omnidesk.templates import due_text, render, template_problem
from tests.services import SmtpSink, eventually
from tests.storekit import REDIS_URL, email
from tests.test_whatsapp import FakeGraph, graph, wa_env  # noqa: F401  (fixtures used here)
from tests.test_whatsapp import config as wa_config

CONFIG = Path(__file__).parent / "fixtures" / "config" / "receipts.yaml"
LIMIT = 3  # service.receipts.max_per_sender_per_hour in that config


def receipts_config(prefix: str, state_dir: Path) -> LoadedConfig:
    loaded = load_config(CONFIG)
    service = loaded.data.service.model_copy(
        update={"key_prefix": prefix, "state_dir": str(state_dir), "redis_url": REDIS_URL}
    )
    return replace(loaded, data=loaded.data.model_copy(update={"service": service}))


@pytest.fixture
def rig(prefix: str, tmp_path: Path) -> Iterator[tuple[Runtime, Pipeline]]:
    """The worker's runtime (SLA clocks on) and its pipeline, with two worker threads."""
    runtime = Runtime.for_service(receipts_config(prefix, tmp_path / "state"))
    broker = make_broker(REDIS_URL, prefix)
    pipeline = Pipeline(runtime, broker)
    worker = pipeline.start_worker(threads=2)
    try:
        yield runtime, pipeline
    finally:
        worker.stop(timeout=5_000)
        broker.close()


def customer_mail(sender: str, subject: str, body: str = "السلام عليكم", **headers: str) -> bytes:
    lines = [
        f"From: Customer <{sender}>",
        "To: care@mc.gov.sa",
        f"Subject: {subject}",
        f"Message-ID: <{uuid.uuid4().hex}@customer.test>",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: 8bit",
        *(f"{name}: {value}" for name, value in headers.items()),
        "",
        body,
        "",
    ]
    return "\r\n".join(lines).encode()


def with_smtp(account: EmailAccount, smtp: SmtpSink) -> EmailAccount:
    fields = account.model_dump(exclude_none=True) | {
        "smtp": {
            "host": smtp.host,
            "port": smtp.port,
            "security": "none",
            "from_address": "care@mc.gov.sa",
        }
    }
    return EmailAccount.model_validate(fields)


def out_messages(runtime: Runtime, ticket_id: str) -> list[Message]:
    return [m for m in runtime.store.ticket_messages(ticket_id) if m.direction == Direction.OUT]


def event_types(runtime: Runtime, ticket_id: str) -> list[str]:
    return [f["type"] for _, f in runtime.store.events() if f.get("ticket") == ticket_id]


class ProcessSink:
    """The connector's sink is the ingest actor's body (`Runtime.process`), run off the loop
    as the worker runs it: when a batch returns, its receipts are decided and recorded."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.outcomes: Counter[str] = Counter()
        self.tickets: list[str] = []

    async def __call__(self, batch: list[RawPayload]) -> None:
        report = await asyncio.to_thread(self.runtime.process, batch)
        self.outcomes.update(report.outcomes)
        self.tickets += [r.ticket_id for r in report.results if r.outcome == "opened"]


# ---------------------------------------------------------------- e-mail, end to end


@pytest.mark.imap
async def test_a_new_mail_gets_one_receipt_with_its_number_and_due_time(
    dovecot, account_factory, run, rig, smtp_server: SmtpSink
) -> None:
    """Dovecot -> IMAP connector -> the ingest actor (the broker) -> receipt -> deliver ->
    SMTP. The receipt is a message on the ticket by the system, and the first-response
    clock still runs after it."""
    runtime, pipeline = rig
    user = dovecot.new_user()
    dovecot.append(user, customer_mail("sara@customer.test", "تجديد السجل"))
    connector = await run(with_smtp(account_factory(user), smtp_server), pipeline)
    assert register_connector_sender(connector, asyncio.get_running_loop())
    try:
        assert await eventually(lambda: smtp_server.envelopes, 20), "no receipt reached SMTP"
        (ticket,) = runtime.store.list_tickets()
        (receipt,) = out_messages(runtime, ticket.id)
        assert await eventually(
            lambda: runtime.store.get_message(receipt.id).delivery == "sent", 10
        )
        (got,) = smtp_server.messages  # exactly one, once its delivery is recorded
        assert smtp_server.envelopes[0].rcpt_tos == ["sara@customer.test"]
        assert got["Subject"] == f"Re: تجديد السجل [#{ticket.id}]"
        assert got["Auto-Submitted"] == "auto-replied"  # RFC 3834: robots do not answer it
        body = got.get_body(("plain",)).get_content()
        assert ticket.id in body and "شكرًا" in body  # the ticket's language: Arabic
        state = runtime.clocks.state(ticket.id)
        first = state.clocks["first_response"]
        assert due_text(first.due_at, "ar") in body
        assert "بتوقيت الرياض" in body
        # on the ticket, by the system; the clock runs on; no agent reply is recorded
        assert receipt.author == "omnidesk"
        assert receipt.text.splitlines() == body.strip().splitlines()
        assert first.state == "running" and first.stopped_at is None
        types = event_types(runtime, ticket.id)
        assert "acknowledged" in types and "replied" not in types
    finally:
        unregister_sender(Channel.EMAIL, connector.name)


@pytest.mark.imap
async def test_an_english_mail_gets_its_receipt_in_english_with_its_number(
    dovecot, account_factory, run, rig, smtp_server: SmtpSink
) -> None:
    """The same path as the Arabic one above, for a customer who writes in English: the
    ticket's language is English, so the receipt is the template's `en` text, with the
    ticket number and the due time as English renders it, and no Arabic in it."""
    runtime, pipeline = rig
    user = dovecot.new_user()
    text = (
        "Hello, I would like to renew my commercial registration before the end of the "
        "month. Could you tell me which documents are needed?"
    )
    dovecot.append(user, customer_mail("john@customer.test", "CR renewal", text))
    connector = await run(with_smtp(account_factory(user), smtp_server), pipeline)
    assert register_connector_sender(connector, asyncio.get_running_loop())
    try:
        assert await eventually(lambda: smtp_server.envelopes, 20), "no receipt reached SMTP"
        (ticket,) = runtime.store.list_tickets()
        assert ticket.language == "en"
        (receipt,) = out_messages(runtime, ticket.id)
        assert await eventually(
            lambda: runtime.store.get_message(receipt.id).delivery == "sent", 10
        )
        (got,) = smtp_server.messages
        assert smtp_server.envelopes[0].rcpt_tos == ["john@customer.test"]
        assert got["Subject"] == f"Re: CR renewal [#{ticket.id}]"
        assert got["Auto-Submitted"] == "auto-replied"
        body = got.get_body(("plain",)).get_content()
        first = runtime.clocks.state(ticket.id).clocks["first_response"]
        assert body.strip().splitlines() == [
            f"Thank you Customer, your message is registered as {ticket.id}.",
            f"You can expect our first response by {due_text(first.due_at, 'en')}.",
        ]
        assert not any("\u0600" <= ch <= "\u06ff" for ch in body)  # no Arabic at all
        assert receipt.author == "omnidesk" and first.state == "running"
    finally:
        unregister_sender(Channel.EMAIL, connector.name)


MACHINE_MAIL = {  # tests/fixtures/email/<name>.eml, one of each kind
    "dsn_bounce_failed": "a DSN bounce (multipart/report; delivery-status)",
    "arf_abuse_report": "an ARF feedback report (multipart/report; feedback-report)",
    "mdn_read_receipt": "an MDN read receipt (multipart/report; disposition-notification)",
    "ooo_auto_submitted": "an out-of-office reply (Auto-Submitted: auto-replied)",
}


@pytest.mark.imap
async def test_machine_mail_of_each_kind_gets_no_receipt(
    dovecot, account_factory, run, rig, smtp_server: SmtpSink
) -> None:
    """Bounce, feedback report, read receipt and auto-reply, read from Dovecot in one mailbox
    with a customer's mail: only the customer gets a receipt through deliver and SMTP."""
    runtime, _ = rig
    user = dovecot.new_user()
    fixtures = Path(__file__).parent / "fixtures" / "email"
    for name in MACHINE_MAIL:  # two fixtures share a Message-ID: each gets its own here
        raw = (fixtures / f"{name}.eml").read_bytes()
        raw = re.sub(
            rb"(?im)^Message-ID:[^\r\n]*", f"Message-ID: <{name}@fixtures.test>".encode(), raw
        )
        dovecot.append(user, raw)
    dovecot.append(user, customer_mail("mona@customer.test", "Fees question", "How much?"))
    sink = ProcessSink(runtime)
    connector = await run(with_smtp(account_factory(user), smtp_server), sink)
    assert register_connector_sender(connector, asyncio.get_running_loop())
    try:
        assert await eventually(lambda: sum(sink.outcomes.values()) == 5, 20), sink.outcomes
        assert sink.outcomes == Counter({"auto_ignored": len(MACHINE_MAIL), "opened": 1})
        (ticket,) = runtime.store.list_tickets()
        (receipt,) = out_messages(runtime, ticket.id)
        assert await eventually(
            lambda: runtime.store.get_message(receipt.id).delivery == "sent", 20
        )
        await asyncio.sleep(0.5)  # room for any stray receipt still in deliver
        assert [e.rcpt_tos for e in smtp_server.envelopes] == [["mona@customer.test"]]
        assert runtime.store.counts()["stats"]["auto_ignored"] == len(MACHINE_MAIL)
        acknowledged = [f for _, f in runtime.store.events() if f["type"] == "acknowledged"]
        assert [f.get("ticket") for f in acknowledged] == [ticket.id]
    finally:
        unregister_sender(Channel.EMAIL, connector.name)


@pytest.mark.imap
async def test_follow_up_out_of_office_and_a_flood_get_no_receipt(
    dovecot, account_factory, run, rig, smtp_server: SmtpSink
) -> None:
    runtime, _ = rig
    user = dovecot.new_user()
    sink = ProcessSink(runtime)
    connector = await run(with_smtp(account_factory(user), smtp_server), sink)
    assert register_connector_sender(connector, asyncio.get_running_loop())
    try:
        dovecot.append(user, customer_mail("ali@customer.test", "CR renewal", "Hello"))
        assert await eventually(lambda: sink.outcomes["opened"] == 1, 10)
        (first,) = sink.tickets
        assert len(out_messages(runtime, first)) == 1

        # a follow-up on the open ticket: appended, no second receipt
        follow = customer_mail("ali@customer.test", f"Re: CR renewal [#{first}]", "Any news?")
        dovecot.append(user, follow)
        assert await eventually(lambda: sink.outcomes["appended"] == 1, 10)
        assert len(out_messages(runtime, first)) == 1
        assert event_types(runtime, first).count("acknowledged") == 1

        # an out-of-office reply: machine mail, no ticket and no receipt
        ooo = customer_mail(
            "away@customer.test",
            "Automatic reply: CR renewal",
            "I am out of the office until Sunday.",
            **{"Auto-Submitted": "auto-replied"},
        )
        dovecot.append(user, ooo)
        assert await eventually(lambda: sum(sink.outcomes.values()) == 3, 10)
        assert sink.outcomes["opened"] == 1  # the auto-reply opened nothing

        # twenty new mails from one sender within a minute: at most LIMIT receipts
        for i in range(20):
            dovecot.append(user, customer_mail("flood@customer.test", f"Question {i}", "Hi"))
        assert await eventually(lambda: sink.outcomes["opened"] == 21, 30)
        flood = [t for t in sink.tickets if t != first]
        acknowledged = [t for t in flood if out_messages(runtime, t)]
        assert len(acknowledged) == LIMIT
        assert runtime.store.counts()["stats"]["receipts_limited"] == 20 - LIMIT

        # what reached SMTP: the first receipt and LIMIT to the flooding sender, no more
        receipts = [m for t in sink.tickets for m in out_messages(runtime, t)]
        assert len(receipts) == 1 + LIMIT
        assert await eventually(
            lambda: all(runtime.store.get_message(m.id).delivery == "sent" for m in receipts),
            20,
        )
        rcpts = Counter(r for e in smtp_server.envelopes for r in e.rcpt_tos)
        assert rcpts == Counter({"ali@customer.test": 1, "flood@customer.test": LIMIT})
    finally:
        unregister_sender(Channel.EMAIL, connector.name)


def test_a_redelivered_batch_sends_no_second_receipt(rig) -> None:
    """The batch runs again (a worker died before its ack): intake calls it a duplicate,
    and the receipt already claimed for the ticket is not sent again."""
    runtime, _ = rig
    queued: list[Outbound] = []
    runtime.send_replies = queued.extend
    batch = [email("once@customer.test", "My CR number is wrong", sender="once@example.sa")]
    (opened,) = runtime.process(batch).results
    (again,) = runtime.process(batch).results
    assert (opened.outcome, again.outcome) == ("opened", "duplicate")
    assert len(out_messages(runtime, opened.ticket_id)) == 1 and len(queued) == 1


def test_a_receipt_answers_the_latest_message_when_the_batch_also_added_to_its_ticket(
    rig,
) -> None:
    """A follow-up in the same batch as the message that opened the ticket: the receipt
    threads under the follow-up, as it would if the ticket were read after the batch (the
    ticket intake opened is not taken as it was opened once the batch added to it)."""
    runtime, _ = rig
    queued: list[Outbound] = []
    runtime.send_replies = queued.extend
    sender = "burst@example.sa"
    batch = [
        email("first@customer.test", "My CR number is wrong", sender=sender),
        email("second@customer.test", "and the address", sender=sender,
              in_reply_to="first@customer.test"),
    ]  # fmt: skip
    results = runtime.process(batch).results
    assert [r.outcome for r in results] == ["opened", "appended"]
    (receipt,) = queued
    assert receipt.in_reply_to == "<second@customer.test>", receipt
    assert receipt.references[-2:] == ["<first@customer.test>", "<second@customer.test>"]


def test_the_web_form_gets_no_receipt_through_deliver(rig) -> None:
    """The config acknowledges web tickets too, but the form's HTTP answer carries the ticket
    number and no connector sends on `web`: a receipt there would only fail in deliver."""
    runtime, _ = rig
    queued: list[Outbound] = []
    runtime.send_replies = queued.extend
    form = (Path(__file__).parent.parent / "examples" / "web" / "complaint.json").read_bytes()
    payload = RawPayload(
        channel=Channel.WEB, account="web", payload=form, received_at=datetime.now(UTC)
    )
    (opened,) = runtime.process([payload]).results
    assert opened.outcome == "opened"
    assert out_messages(runtime, opened.ticket_id) == [] and queued == []


@pytest.mark.parametrize(
    "headers",
    [
        {"Precedence": "bulk"},  # no List-Id: a group or bulk sender
        {"List-Id": "Traders <traders.lists.example.org>"},  # a list that rewrote From
    ],
)
def test_bulk_and_list_mail_opens_a_ticket_without_a_receipt(rig, headers: dict) -> None:
    """RFC 3834 section 2: no automatic answer to mail sent to many; a receipt to a list
    that rewrote From would reach every member. The ticket still opens."""
    runtime, _ = rig
    queued: list[Outbound] = []
    runtime.send_replies = queued.extend
    raw = customer_mail("traders@lists.example.org", "Fees question", "How much?", **headers)
    payload = RawPayload(
        channel=Channel.EMAIL, account="care", payload=raw, received_at=datetime.now(UTC)
    )
    (opened,) = runtime.process([payload]).results
    assert opened.outcome == "opened" and opened.ticket_id
    assert queued == [] and out_messages(runtime, opened.ticket_id) == []
    assert "acknowledged" not in event_types(runtime, opened.ticket_id)
    # the same sender without those headers gets one: it is the headers that decide
    plain = customer_mail("traders@lists.example.org", "Another question", "And this?")
    payload = RawPayload(
        channel=Channel.EMAIL, account="care", payload=plain, received_at=datetime.now(UTC)
    )
    (second,) = runtime.process([payload]).results
    assert [o.ticket_id for o in queued] == [second.ticket_id]


def test_an_automatic_message_is_no_update_on_the_request(rig) -> None:
    """Track my request shows when the ticket last changed: a receipt or a status answer
    the system sent is not that, an agent's reply is."""
    runtime, _ = rig
    runtime.send_replies = lambda outbounds: None
    (opened,) = runtime.process([email("upd@customer.test", "Refund please")]).results
    ticket = runtime.store.get_ticket(opened.ticket_id)
    assert ticket is not None and len(out_messages(runtime, ticket.id)) == 1  # the receipt
    before = ticket.updated_at
    send_automatic(runtime.store, lambda outbounds: None, ticket, "status", event="status_replied")
    after = runtime.store.get_ticket(ticket.id)
    assert after is not None and after.updated_at == before
    reply = Outbound(id="M-upd-1", ticket_id=ticket.id, channel="email", account="care", text="ok")
    runtime.store.add_outbound_message(reply, "agent1")
    replied = runtime.store.get_ticket(ticket.id)
    assert replied is not None and replied.updated_at > before


def test_a_ticket_whose_process_died_before_its_receipt_gets_it_on_redelivery(
    prefix: str, tmp_path: Path
) -> None:
    """Intake stored the ticket, then the worker died (here: a process that cannot send);
    the redelivered batch is a duplicate of the opening message and the receipt goes. A
    redelivered follow-up is a duplicate too, and gets none."""
    runtime = Runtime.for_service(receipts_config(prefix, tmp_path / "state"))
    first = [email("died@customer.test", "Hello", sender="died@example.sa")]
    (opened,) = runtime.process(first).results
    follow = [
        email(
            "died2@customer.test",
            "Any news?",
            sender="died@example.sa",
            subject=f"Re: Commercial registration [#{opened.ticket_id}]",
            in_reply_to="died@customer.test",
        )
    ]
    assert runtime.process(follow).results[0].outcome == "appended"
    assert out_messages(runtime, opened.ticket_id) == []
    queued: list[Outbound] = []
    runtime.send_replies = queued.extend
    assert runtime.process(follow).results[0].outcome == "duplicate"
    assert queued == []
    assert runtime.process(first).results[0].outcome == "duplicate"
    assert [o.ticket_id for o in queued] == [opened.ticket_id]


def test_a_ticket_opened_long_ago_gets_no_late_receipt_when_its_mail_is_read_again(
    prefix: str, tmp_path: Path
) -> None:
    """A ticket from before this rule has no `receipt` field (nor `opened_ms`); its mail read
    again (an IMAP UIDVALIDITY reset, a quarantine retry) is a duplicate of its opening
    message, but the ticket is old: no receipt. Nor for one intake opened two hours ago;
    one opened within the hour still gets its receipt."""
    runtime = Runtime.for_service(receipts_config(prefix, tmp_path / "state"))
    batches = [
        [email(f"{name}@customer.test", "Hello", sender=f"{name}@example.sa")]
        for name in ("legacy", "old", "recent")
    ]
    legacy, old, recent = (runtime.process(b).results[0].ticket_id for b in batches)
    runtime.store.r.hdel(runtime.store.key("ticket", legacy), "opened_ms")  # before deploy
    two_hours_ago = int(time.time() * 1000) - 2 * 3600 * 1000
    runtime.store.r.hset(runtime.store.key("ticket", old), "opened_ms", two_hours_ago)
    queued: list[Outbound] = []
    runtime.send_replies = queued.extend
    for batch in batches:
        assert runtime.process(batch).results[0].outcome == "duplicate"
    assert [o.ticket_id for o in queued] == [recent]
    assert out_messages(runtime, legacy) == [] and out_messages(runtime, old) == []


def test_a_receipt_the_broker_refused_goes_when_the_batch_runs_again(rig) -> None:
    """The broker is away when the receipt is queued: the message says so, the claim is
    given back and the batch fails; its next run queues the receipt."""
    runtime, _ = rig
    batch = [email("broker@customer.test", "Hello", sender="broker@example.sa")]

    def refuse(outbounds: list[Outbound]) -> None:
        raise StoreUnavailable("broker unavailable: connection refused")

    runtime.send_replies = refuse
    with pytest.raises(StoreUnavailable):
        runtime.process(batch)
    (ticket,) = runtime.store.list_tickets()
    (refused,) = out_messages(runtime, ticket.id)
    assert refused.delivery == "failed: not queued: broker unavailable: connection refused"
    queued: list[Outbound] = []
    runtime.send_replies = queued.extend
    assert runtime.process(batch).results[0].outcome == "duplicate"
    assert [o.ticket_id for o in queued] == [ticket.id]
    assert runtime.process(batch).results[0].outcome == "duplicate"
    assert len(queued) == 1


# ---------------------------------------------------------------- WhatsApp outside 24 h


def whatsapp_webhook(wa_id: str, sent_at: float, text: str) -> bytes:
    body = {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "WABA",
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": "966110000000",
                                "phone_number_id": "106540352242922",
                            },
                            "contacts": [{"profile": {"name": "فهد"}, "wa_id": wa_id}],
                            "messages": [
                                {
                                    "from": wa_id,
                                    "id": f"wamid.{uuid.uuid4().hex}",
                                    "timestamp": str(int(sent_at)),
                                    "type": "text",
                                    "text": {"body": text},
                                }
                            ],
                        },
                    }
                ],
            }
        ],
    }
    return json.dumps(body, ensure_ascii=False).encode()


async def test_whatsapp_outside_the_window_gets_the_template_with_its_parameters(
    rig,
    graph: FakeGraph,
) -> None:
    runtime, _ = rig
    template = {"name": "ticket_received", "language": "ar", "parameters": ["ticket_id"]}
    wa = WhatsAppConnector(wa_config(graph.base, template=template))
    await wa.initialize()
    assert register_connector_sender(wa, asyncio.get_running_loop())
    try:
        raw = RawPayload(
            channel=Channel.WHATSAPP,
            account=wa.name,
            payload=whatsapp_webhook("966501234567", time.time() - 30 * 3600, "عندي شكوى"),
            received_at=datetime.now(UTC),
        )
        (opened,) = (await asyncio.to_thread(runtime.process, [raw])).results
        assert opened.outcome == "opened"
        assert await eventually(lambda: graph.sent, 20), "nothing reached the Graph API"
        (sent,) = graph.sent
        assert sent["type"] == "template" and sent["to"] == "966501234567"
        assert sent["template"] == {
            "name": "ticket_received",
            "language": {"code": "ar"},
            "components": [
                {"type": "body", "parameters": [{"type": "text", "text": opened.ticket_id}]}
            ],
        }
        (receipt,) = out_messages(runtime, opened.ticket_id)
        assert await eventually(
            lambda: runtime.store.get_message(receipt.id).delivery == "sent", 10
        )
    finally:
        unregister_sender(Channel.WHATSAPP, wa.name)
        await wa.shutdown()


def test_a_template_parameter_with_no_value_is_refused_naming_it() -> None:
    cfg = wa_config(template={"name": "t", "parameters": ["ticket_id", "first_response_due"]})
    assert cfg.template is not None
    with pytest.raises(PermanentError, match="first_response_due"):
        template_message("966501234567", cfg.template, {"ticket_id": "OD-2026-000001"})
    with pytest.raises(ValueError, match="unknown parameter 'ticket'"):
        wa_config(template={"name": "t", "parameters": ["ticket"]})


# ---------------------------------------------------------------- the template and events


def test_first_response_due_renders_in_riyadh_time_and_its_line_goes_without_one() -> None:
    assert template_problem("by {first_response_due}") is None  # `omnidesk check` takes it
    due = datetime(2026, 12, 6, 7, 0, tzinfo=UTC)  # 10:00 in Riyadh, a Sunday
    assert due_text(due, "en") == "Sunday 6 December 2026, 10:00 Riyadh time"
    assert due_text(due, "ar") == "الأحد 6 ديسمبر 2026، 10:00 بتوقيت الرياض"
    # kept per minute (receipts ask per ticket): seconds never show, a new minute always does
    assert due_text(due + timedelta(seconds=59, microseconds=1), "en") == due_text(due, "en")
    later = due_text(due + timedelta(minutes=1), "en")
    assert later == "Sunday 6 December 2026, 10:01 Riyadh time"
    assert due_text(due + timedelta(hours=12), "ar") == "الأحد 6 ديسمبر 2026، 22:00 بتوقيت الرياض"
    text = "Ref {ticket_id}.\nWe answer by {first_response_due}.\nThank you."
    values = {"ticket_id": "OD-1", "first_response_due": due_text(due, "en")}
    assert render(text, values).splitlines()[1] == (
        "We answer by Sunday 6 December 2026, 10:00 Riyadh time."
    )
    assert render(text, {"ticket_id": "OD-1"}) == "Ref OD-1.\nThank you."


def test_reports_do_not_count_a_receipt_as_a_reply() -> None:
    """The recomputation (the check the SQL is held to): the receipt counts nothing, and the
    agent's later reply is the first response, timed from the opening."""
    ctx = Context()
    day = date(1970, 1, 1)
    opened = {"type": "ticket_opened", "ticket": "OD-1", "queue": "general", "ts": "1000"}
    ack = {"type": "acknowledged", "ticket": "OD-1", "queue": "general", "ts": "2000"}
    reply = {"type": "replied", "ticket": "OD-1", "queue": "general", "ts": "61000",
             "actor": "sara"}  # fmt: skip
    receipt_only = recompute([opened, ack], day, day, {}, ctx)
    assert receipt_only.all["replies"] == 0 and receipt_only.all["frt_n"] == 0
    answered = recompute([opened, ack, reply], day, day, {}, ctx)
    assert answered.all["replies"] == 1 and answered.all["frt_w"] == 60


def test_the_receipt_is_recorded_in_postgresql_and_sets_no_first_response(
    prefix: str, tmp_path: Path, pg_url: str
) -> None:
    """The records writer keeps the receipt as a message by the system; the ticket's
    first_response_at stays empty, and the event is `acknowledged`."""
    import psycopg

    from omnidesk.db.writer import RecordWriter

    runtime = Runtime.for_service(receipts_config(prefix, tmp_path / "state"))
    queued: list[Outbound] = []
    runtime.send_replies = queued.extend  # the broker hand-off, as the pipeline sets it
    (opened,) = runtime.process(
        [email("pg@customer.test", "Hello", sender="pg@example.sa")]
    ).results
    (outbound,) = queued
    assert outbound.ticket_id == opened.ticket_id and outbound.meta["auto"] == "1"
    asyncio.run(RecordWriter(runtime.store, pg_url).drain())
    with psycopg.connect(pg_url) as conn:
        (row,) = conn.execute(
            "SELECT direction, author, delivery, body FROM messages"
            " WHERE ticket_id = %s AND direction = 'out'",
            (opened.ticket_id,),
        ).fetchall()
        first = conn.execute(
            "SELECT first_response_at FROM tickets WHERE id = %s", (opened.ticket_id,)
        ).fetchone()
        types = [
            t
            for (t,) in conn.execute(
                "SELECT type FROM events WHERE ticket_id = %s ORDER BY stream_id",
                (opened.ticket_id,),
            )
        ]
    assert row[:3] == ("out", "omnidesk", "queued") and opened.ticket_id in row[3]
    assert first == (None,)
    assert "acknowledged" in types and "replied" not in types


def test_an_archived_receipt_is_no_first_response_on_import(
    runtime: Runtime, tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`omnidesk db import-archive` takes the first response from the archived messages:
    a message the system sent (send_automatic) is not one, the agent's reply is."""
    import psycopg

    from omnidesk.cli import main
    from omnidesk.outbound import outbound_for, send_automatic
    from tests.test_db_import_archive import old_archive

    store = runtime.store
    (opened,) = runtime.process([email("arc@customer.test", "Hello", sender="a@ex.sa")]).results
    ticket = store.get_ticket(opened.ticket_id)
    assert ticket is not None
    queued: list[Outbound] = []
    auto = send_automatic(store, queued.extend, ticket, "Received", event="acknowledged")
    assert auto.author == "omnidesk" and queued[0].id == auto.id
    reply = store.add_outbound_message(outbound_for(store, ticket, "Answer"), "sara")
    store.set_status(ticket.id, "closed", actor="sara")
    state = tmp_path / "state"
    old_archive(store, state, [ticket.id], datetime.now(UTC))
    monkeypatch.setenv("OMNIDESK_DATABASE_URL", pg_url)
    argv = ["db", "import-archive", "--config", str(runtime.config.path), "--state-dir",
            str(state)]  # fmt: skip
    assert main(argv) == 0
    with psycopg.connect(pg_url) as conn:
        row = conn.execute("SELECT first_response_at FROM tickets WHERE id = %s", (ticket.id,))
        assert row.fetchone()[0] == reply.created_at


def test_agents_see_the_receipt_and_only_their_reply_stops_the_first_response_clock(
    prefix: str, tmp_path: Path
) -> None:
    """The console's ticket view shows the receipt as the system's message and its
    `acknowledged` event; the first-response clock runs on until an agent replies."""
    from omnidesk.agents.service import AgentService
    from omnidesk.receipts import Receipts
    from tests.agentkit import agents_config

    loaded = agents_config(prefix, tmp_path / "state")
    runtime = Runtime.for_service(loaded)
    queued: list[Outbound] = []
    service = AgentService(
        store=runtime.store, config=lambda: loaded.data, send_reply=queued.append,
        sla=runtime.clocks,
    )  # fmt: skip
    (opened,) = runtime.process([email("view@c.test", "Hello", subject="Question")]).results
    ticket = runtime.store.get_ticket(opened.ticket_id)
    assert ticket is not None
    Receipts(runtime.store, loaded.data, queued.extend, runtime.clocks).send(ticket, "thanks")
    amal = service.agent("amal")
    view = service.desk.view(amal, ticket.id)
    (receipt,) = [m for m in view["messages"] if m["direction"] == "out"]
    assert receipt["author"] == "omnidesk" and ticket.id in receipt["text"]
    assert "acknowledged" in [e["type"] for e in view["history"]]
    (first,) = [c for c in view["sla"] if c["target"] == "first_response"]
    assert first["state"] == "running" and not first["met"]

    service.desk.reply(amal, ticket.id, "We are on it")
    (first,) = [c for c in service.desk.view(amal, ticket.id)["sla"]
                if c["target"] == "first_response"]  # fmt: skip
    assert first["state"] == "stopped" and first["met"]


def test_a_batch_of_automatic_messages_skips_a_gone_ticket_and_marks_all_when_not_queued(
    rig,
) -> None:
    """send_automatic_many records a batch in one MULTI and queues it in one hand-off: a
    ticket erased meanwhile is left out (the others still go), and when the broker refuses
    the hand-off every message of it says so."""
    runtime, _ = rig
    runtime.send_replies = None  # no receipts at intake: this test sends them itself
    batch = [email(f"m{i}@customer.test", "Hello", sender=f"m{i}@example.sa") for i in range(3)]
    runtime.process(batch)
    first, gone, third = runtime.store.list_tickets()
    runtime.store.r.delete(runtime.store.key("ticket", gone.id))
    handoffs: list[list[Outbound]] = []
    items = [Automatic(t, f"received {t.id}") for t in (first, gone, third)]
    sent = send_automatic_many(runtime.store, handoffs.append, items, event="acknowledged")
    assert [m is None for m in sent] == [False, True, False]
    assert [[o.ticket_id for o in h] for h in handoffs] == [[first.id, third.id]]
    assert out_messages(runtime, gone.id) == []

    def refuse(outbounds: list[Outbound]) -> None:
        raise StoreUnavailable("broker unavailable: connection refused")

    done: list[str] = []
    with pytest.raises(StoreUnavailable):
        again = [Automatic(first, "again"), Automatic(third, "again")]
        send_automatic_many(runtime.store, refuse, again, event="acknowledged", queued=done)
    assert done == []
    for ticket in (first, third):
        assert [m.delivery for m in out_messages(runtime, ticket.id)] == [
            "queued",
            "failed: not queued: broker unavailable: connection refused",
        ]


def test_a_receipt_that_fails_for_good_leaves_the_batch_in(rig) -> None:
    """A receipt that cannot go (here the hand-off fails for a reason no retry fixes) is
    logged and counted; the batch's tickets are in and the batch does not fail."""
    runtime, _ = rig

    def broken(outbounds: list[Outbound]) -> None:
        raise PermanentError("cannot encode this outbound")

    runtime.send_replies = broken
    batch = [email("bad@customer.test", "Hello", sender="bad@example.sa")]
    (opened,) = runtime.process(batch).results
    assert opened.outcome == "opened"
    assert runtime.store.counts()["stats"]["receipts_failed"] == 1


def test_the_receipts_queue_is_its_public_title_never_its_id(prefix: str, tmp_path: Path) -> None:
    """`{queue}` is what a customer may read: the queue's public_title in the receipt's
    language, or the neutral title; the internal queue id never goes out."""
    from omnidesk.ticket_status import NEUTRAL_TITLE

    loaded = receipts_config(prefix, tmp_path / "state")
    data = loaded.data
    general = data.queues["general"].model_copy(
        update={"public_title": {"ar": "خدمة المراجعين", "en": "Visitor services"}}
    )
    ack = {"ar": "طلبك {ticket_id} لدى {queue}", "en": "Request {ticket_id} is with {queue}"}
    data = data.model_copy(
        update={"queues": {**data.queues, "general": general}, "templates": {"ack": ack}}
    )
    runtime = Runtime.for_service(replace(loaded, data=data))
    queued: list[Outbound] = []
    runtime.send_replies = queued.extend
    runtime.process([email("q1@customer.test", "السجل التجاري لا يظهر", sender="q1@example.sa")])
    runtime.process([email("q2@customer.test", "Hello, my registration number is wrong",
                           sender="q2@example.sa", subject="My request")])  # fmt: skip
    texts = sorted(o.text for o in queued)
    assert len(texts) == 2 and all("general" not in t for t in texts), texts
    assert any(t.endswith("لدى خدمة المراجعين") for t in texts), texts
    assert any(t.endswith("is with Visitor services") for t in texts), texts

    # a queue with no public_title: the neutral title
    bare = data.model_copy(update={"queues": {**data.queues, "general": data.queues["noise"]}})
    runtime = Runtime.for_service(replace(loaded, data=bare))
    queued.clear()
    runtime.send_replies = queued.extend
    runtime.process([email("q3@customer.test", "سؤال", sender="q3@example.sa")])
    (out,) = queued
    assert out.text.endswith(NEUTRAL_TITLE["ar"]) and "general" not in out.text
