"""Replies out through a real aiosmtpd server, checked header by header."""

from __future__ import annotations

import uuid
from email import message_from_bytes
from email.header import decode_header, make_header
from email.policy import compat32

import pytest

from connectors.email.config import EmailAccount
from connectors.email.imap import ImapConnector
from connectors.email.smtp import SmtpSender, build_reply, reply_subject
from omnidesk.errors import AuthError, ConfigError, PermanentError, TransientError
from omnidesk.model import Channel, Identity, IdentityKind, Outbound


def account(smtp_server, **smtp) -> EmailAccount:
    return EmailAccount.model_validate(
        {
            "name": "support",
            "host": "127.0.0.1",
            "username": "support@example.test",
            "password_env": "OD_TEST_UNUSED",
            "smtp": {
                "host": smtp_server.host,
                "port": smtp_server.port,
                "security": "none",
                "from_address": "support@moc.example.test",
            }
            | smtp,
        }
    )


def outbound(**overrides) -> Outbound:
    fields = {
        "id": uuid.uuid4().hex,
        "ticket_id": "OD-2026-000123",
        "channel": Channel.EMAIL,
        "account": "support",
        "text": "شكراً لتواصلكم، تم تسجيل طلبكم.\nThank you, your request is registered.",
        "subject": "استفسار عن السجل التجاري",
        "to": [Identity(IdentityKind.EMAIL, "customer@example.test")],
        "in_reply_to": "<abc123@customer.test>",
        "references": ["<root1@customer.test>", "abc123@customer.test"],
    } | overrides
    return Outbound(**fields)


async def test_reply_headers_one_by_one(smtp_server):
    sender = SmtpSender(account(smtp_server))
    sender.initialize()
    reply = outbound(html="<p dir='rtl'>شكراً لتواصلكم</p>")
    receipt = await sender.send(reply)
    assert receipt.status == "sent" and receipt.outbound_id == reply.id
    [envelope] = smtp_server.envelopes
    assert envelope.mail_from == "support@moc.example.test"
    assert envelope.rcpt_tos == ["customer@example.test"]
    [msg] = smtp_server.messages
    assert msg["From"] == "support@moc.example.test"
    assert msg["To"] == "customer@example.test"
    # Arabic subject travels RFC 2047-encoded and decodes back, with the ticket reference.
    raw_subject = message_from_bytes(envelope.content, policy=compat32)["Subject"]
    assert raw_subject.isascii() and "=?utf-8?" in raw_subject
    subject = str(make_header(decode_header(raw_subject)))
    assert subject == "Re: استفسار عن السجل التجاري [#OD-2026-000123]"
    assert msg["In-Reply-To"] == "<abc123@customer.test>"
    assert msg["References"] == "<root1@customer.test> <abc123@customer.test>"
    assert msg["Message-ID"] == receipt.external_id
    assert receipt.external_id.startswith("<") and receipt.external_id.endswith(
        "@moc.example.test>"
    )
    assert msg.get_content_type() == "multipart/alternative"
    plain, html = msg.get_payload()
    assert plain.get_content_type() == "text/plain" and "شكراً" in plain.get_content()
    assert html.get_content_type() == "text/html" and "rtl" in html.get_content()


async def test_plain_only_and_fresh_message_ids(smtp_server):
    sender = SmtpSender(account(smtp_server))
    first = await sender.send(outbound(in_reply_to=None, references=[]))
    second = await sender.send(outbound(in_reply_to=None, references=[]))
    assert first.external_id != second.external_id
    msg = smtp_server.messages[0]
    assert msg.get_content_type() == "text/plain"
    assert msg["In-Reply-To"] is None and msg["References"] is None


def test_subject_is_not_stacked():
    assert reply_subject("Re: order [#OD-2026-000001]", "OD-2026-000001") == (
        "Re: order [#OD-2026-000001]"
    )
    assert reply_subject("", "OD-2026-000001") == "Re: [#OD-2026-000001]"


def test_no_email_recipient_is_permanent():
    with pytest.raises(PermanentError, match="no email address"):
        build_reply(outbound(to=[Identity(IdentityKind.PHONE, "+966500000000")]), "a@b.test")


@pytest.mark.parametrize(
    ("reply", "error"),
    [("450 4.2.1 mailbox busy", TransientError), ("550 5.1.1 no such user", PermanentError)],
)
async def test_refusals_map_to_transient_and_permanent(smtp_server, reply, error):
    smtp_server.reply_rcpt = reply
    sender = SmtpSender(account(smtp_server))
    with pytest.raises(error, match=reply.split()[0]):
        await sender.send(outbound())
    assert smtp_server.envelopes == []


async def test_login_and_bad_credentials(smtp_server, monkeypatch):
    monkeypatch.setenv("OD_TEST_SMTP_PW", "s3cret")
    good = SmtpSender(account(smtp_server, username="agent", password_env="OD_TEST_SMTP_PW"))
    good.initialize()
    await good.check()
    assert (await good.send(outbound())).status == "sent"
    monkeypatch.setenv("OD_TEST_SMTP_PW", "wrong")
    bad = SmtpSender(account(smtp_server, username="agent", password_env="OD_TEST_SMTP_PW"))
    bad.initialize()
    with pytest.raises(AuthError, match=r"smtp\.password_env"):
        await bad.send(outbound())
    with pytest.raises(AuthError):
        await bad.check()


async def test_unreachable_server_is_transient(smtp_server):
    from tests.services import free_port

    sender = SmtpSender(account(smtp_server, port=free_port(), timeout=2))
    with pytest.raises(TransientError, match=r"smtp\.host"):
        await sender.send(outbound())


async def test_missing_smtp_password_variable_names_it(smtp_server, monkeypatch):
    monkeypatch.delenv("OD_TEST_SMTP_MISSING", raising=False)
    sender = SmtpSender(account(smtp_server, username="a", password_env="OD_TEST_SMTP_MISSING"))
    with pytest.raises(ConfigError, match="OD_TEST_SMTP_MISSING"):
        sender.initialize()


async def test_the_connector_sends_through_its_account(smtp_server):
    connector = ImapConnector(account(smtp_server), cursors=None)  # type: ignore[arg-type]
    receipt = await connector.send(outbound())
    assert receipt.external_id == smtp_server.messages[0]["Message-ID"]
