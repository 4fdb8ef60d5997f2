"""FETCH answers in any item order: the parser on imaplib2's pieces, and the real connector
against a stand-in server that sends the UID after the body (Dovecot always sends it first).
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime

import pytest

from connectors.email.config import EmailAccount
from connectors.email.fetch import parse_fetch, parse_internal_date
from connectors.email.imap import ImapConnector
from connectors.state import CursorStore
from tests.imapkit import mail
from tests.imapstandin import Mailbox, imap_standin
from tests.services import eventually
from tests.test_imap import Collector

RAW = b"Subject: hi\r\n\r\nbody\r\n"
DATE = b'INTERNALDATE "04-Dec-2026 09:00:00 +0300"'
AT = datetime(2026, 12, 4, 6, 0, tzinfo=UTC)


def test_uid_before_or_after_the_body_reads_the_same():
    first = [(b"1 (UID 5 " + DATE + b" BODY[] {21}", RAW), b")"]
    last = [(b"1 (" + DATE + b" BODY[] {21}", RAW), b" UID 5)"]
    for data in (first, last):
        answer = parse_fetch(data)
        assert answer.problems == []
        assert [(m.uid, m.body, m.internal_date) for m in answer.messages.values()] == [
            (5, RAW, AT)
        ]


def test_several_messages_and_an_unsolicited_flags_response():
    data = [
        (b"1 (BODY[] {21}", RAW),
        b" UID 7)",
        b"2 (FLAGS (\\Seen) UID 8)",  # no body: an unsolicited flag change, not ours
        (b"3 (UID 9 BODY[] {4}", b"abcd"),
        b")",
    ]
    answer = parse_fetch(data)
    assert answer.problems == []
    assert {uid: m.body for uid, m in answer.messages.items()} == {7: RAW, 9: b"abcd"}


def test_a_body_without_uid_and_a_bad_date_are_named():
    no_uid = parse_fetch([(b"4 (BODY[] {21}", RAW), b")"])
    assert no_uid.messages == {}
    assert len(no_uid.problems) == 1 and "no UID" in no_uid.problems[0]
    bad_date = b'5 (UID 3 INTERNALDATE "31-Foo-2026 09:00:00 +0300" BODY[] {4}'
    answer = parse_fetch([(bad_date, b"abcd"), b")"])
    assert answer.messages[3].body == b"abcd" and answer.messages[3].internal_date is None
    assert len(answer.problems) == 1 and "INTERNALDATE" in answer.problems[0]


def test_internal_dates_with_zones_and_a_space_padded_day():
    assert parse_internal_date(" 4-Dec-2026 09:00:00 +0300") == AT
    assert parse_internal_date("04-Dec-2026 01:30:00 -0430") == AT
    assert parse_internal_date("31-Feb-2026 01:30:00 +0000") is None


def _account(port: int, monkeypatch: pytest.MonkeyPatch) -> EmailAccount:
    env = f"OD_TEST_PW_{uuid.uuid4().hex[:8].upper()}"
    monkeypatch.setenv(env, "secret")
    return EmailAccount.model_validate(
        {
            "name": f"standin-{uuid.uuid4().hex[:6]}",
            "host": "127.0.0.1",
            "port": port,
            "security": "none",
            "username": "u@example.test",
            "password_env": env,
            "mode": "poll",
            "poll_interval": 0.2,
            "timeouts": {"idle": 5, "connect": 3, "command": 10},
        }
    )


async def _receive(box: Mailbox, monkeypatch, redis_prefix, count: int) -> Collector:
    client, prefix = redis_prefix
    sink = Collector()
    with imap_standin(box) as port:
        async with ImapConnector(_account(port, monkeypatch), CursorStore(client, prefix)) as c:
            import asyncio

            task = asyncio.create_task(c.start(sink))
            try:
                assert await eventually(lambda: len(sink.payloads) >= count, 10)
                assert await eventually(lambda: box.seen == {u for u, _ in box.messages}, 5)
            finally:
                await c.stop()
                await asyncio.wait_for(task, 10)
    return sink


async def test_a_server_that_sends_the_uid_after_the_body(monkeypatch, redis_prefix):
    raws = [mail(f"uid last {i}") for i in range(3)]
    box = Mailbox(messages=[(5, raws[0][0]), (6, raws[1][0]), (9, raws[2][0])], uid_last=True)
    sink = await _receive(box, monkeypatch, redis_prefix, 3)
    assert sink.message_ids == [mid for _, mid in raws]
    assert [p.source for p in sink.payloads] == ["imap:INBOX:5", "imap:INBOX:6", "imap:INBOX:9"]
    assert {p.received_at for p in sink.payloads} == {AT}  # the server's INTERNALDATE
    assert any("INTERNALDATE" in c.upper() for c in box.commands)


async def test_a_message_whose_uid_cannot_be_read_is_logged(monkeypatch, redis_prefix, caplog):
    raws = [mail("no uid"), mail("fine")]
    box = Mailbox(messages=[(5, raws[0][0]), (6, raws[1][0])], without_uid={5})
    with caplog.at_level(logging.INFO, logger="omnidesk.connectors.imap"):
        sink = await _receive(box, monkeypatch, redis_prefix, 1)
    assert sink.message_ids == [raws[1][1]]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("body but no UID" in w and "INBOX" in w for w in warnings), warnings
    infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert any("[5]" in i for i in infos), infos
