"""Machine mail through the real intake (Redis, normalizer, router): abuse/feedback reports
(ARF) and read receipts (MDN) open no ticket and start no clock, like bounces and
auto-replies; their raw payload is still archived and counted."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

from omnidesk.model import Channel, RawPayload, Status
from omnidesk.runtime import Runtime
from tests.storekit import email

FIXTURES = Path(__file__).parent / "fixtures" / "email"


def _raw(name: str, **replace: bytes) -> RawPayload:
    payload = (FIXTURES / f"{name}.eml").read_bytes()
    for old, new in replace.items():
        payload = payload.replace(old.encode(), new)
    return RawPayload(
        channel=Channel.EMAIL, account="care", payload=payload, received_at=datetime.now(UTC)
    )


def test_abuse_reports_and_read_receipts_open_no_ticket(runtime: Runtime) -> None:
    store = runtime.store
    reports = [_raw("arf_abuse_report"), _raw("mdn_read_receipt")]
    results = runtime.process(reports).results
    assert [r.outcome for r in results] == ["auto_ignored", "auto_ignored"]
    assert store.ticket_count() == 0
    assert store.counts()["stats"]["auto_ignored"] == 2
    assert runtime.archive is not None
    for raw in reports:  # kept as they came, for an operator to read
        assert runtime.archive.get(hashlib.sha256(raw.payload).hexdigest()) == raw.payload
    # the same report again is a duplicate, not a second count
    assert runtime.process([reports[0]]).results[0].outcome == "duplicate"
    assert store.counts()["stats"]["auto_ignored"] == 2


def test_a_read_receipt_for_a_reply_attaches_without_reopening(runtime: Runtime) -> None:
    store = runtime.store
    opened = runtime.process([email("e1@example.sa", "complaint about a shop")]).results[0]
    assert opened.outcome == "opened" and opened.ticket_id
    store.set_status(opened.ticket_id, Status.RESOLVED)
    receipt = _raw(
        "mdn_read_receipt",
        **{
            "Message-ID: <mdn1@mail.example.sa>": b"Message-ID: <mdn-e1@example.sa>\n"
            b"In-Reply-To: <e1@example.sa>"
        },
    )
    attached = runtime.process([receipt]).results[0]
    assert attached.outcome == "auto_attached" and attached.ticket_id == opened.ticket_id
    ticket = store.get_ticket(opened.ticket_id)
    assert ticket is not None and ticket.status == Status.RESOLVED
    assert store.ticket_count() == 1


def test_outlook_mail_and_a_forwarded_bounce_open_tickets_a_real_dsn_does_not(
    runtime: Runtime,
) -> None:
    """People's mail is not machine mail because Outlook adds X-Auto-Response-Suppress or
    because they attach a bounce; a DSN that is itself the message still opens nothing."""
    store = runtime.store
    mails = [_raw("outlook_person_suppress"), _raw("forwarded_bounce_attached")]
    results = runtime.process(mails).results
    assert [r.outcome for r in results] == ["opened", "opened"]
    assert all(r.ticket_id for r in results)
    dsns = [_raw("dsn_bounce_failed"), _raw("dsn_second_part_only")]
    assert [r.outcome for r in runtime.process(dsns).results] == ["auto_ignored"] * 2
    assert store.ticket_count() == 2
