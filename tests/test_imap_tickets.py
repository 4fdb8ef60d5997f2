"""The IMAP connector against a real Dovecot, with the real runtime as its sink: what counts
is tickets in Redis, not payloads handed over. A UIDVALIDITY change, a broken message and a
restart each leave exactly one ticket per customer message."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import pytest

from omnidesk.model import RawPayload
from omnidesk.runtime import Runtime
from tests.imapkit import mail, more_polls
from tests.services import eventually
from tests.storekit import config_for

pytestmark = pytest.mark.imap


class RuntimeSink:
    """The connector's sink is the ingest actor's body, run off the event loop as the
    dramatiq worker would; it counts the intake outcomes it saw."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.outcomes: Counter[str] = Counter()
        self.quarantined: list[str] = []
        self.handed: list[RawPayload] = []

    async def __call__(self, batch: list[RawPayload]) -> None:
        report = await asyncio.to_thread(self.runtime.process, batch)
        self.handed += batch
        self.outcomes.update(report.outcomes)
        self.quarantined += report.quarantined


def subjects(runtime: Runtime) -> list[str]:
    return sorted(t.subject for t in runtime.store.list_tickets(limit=100))


async def test_uidvalidity_change_duplicates_no_ticket(dovecot, account_factory, run, runtime):
    user = dovecot.new_user()
    folder = "Support"
    conn = dovecot.client(user)
    conn.create(folder)
    conn.logout()
    raws = [mail(f"resync {i}")[0] for i in range(2)]
    for raw in raws:
        dovecot.append(user, raw, folder)
    account = account_factory(user, folders=[folder])
    first = RuntimeSink(runtime)
    connector = await run(account, first)
    assert await eventually(lambda: first.outcomes["opened"] == 2, 5)
    before = (await run.cursors.get(connector.name))["folders"][folder]["uidvalidity"]
    await run.stop(connector)

    conn = dovecot.client(user)  # a new folder: new UIDVALIDITY, UIDs from 1 again
    conn.delete(folder)
    conn.create(folder)
    conn.logout()
    for raw in raws:
        dovecot.append(user, raw, folder)
    again = RuntimeSink(runtime)
    connector = await run(account, again)
    assert await eventually(lambda: len(again.handed) == 2, 5)
    after = (await run.cursors.get(connector.name))["folders"][folder]["uidvalidity"]
    assert after != before
    assert again.outcomes == Counter({"duplicate": 2})
    assert runtime.store.ticket_count() == 2
    assert subjects(runtime) == ["resync 0", "resync 1"]


async def test_a_broken_message_is_quarantined_and_the_next_becomes_a_ticket(
    dovecot, account_factory, run, runtime
):
    user = dovecot.new_user()
    broken = b"\xff\xfe this is not a mail\r\nno headers at all \x00\x01\r\n"
    dovecot.append(user, broken)
    dovecot.append(user, mail("after the broken one")[0])
    sink = RuntimeSink(runtime)
    await run(account_factory(user), sink)
    assert await eventually(lambda: len(sink.handed) == 2, 5)
    assert sink.quarantined == ["imap:INBOX:1"]
    assert sink.outcomes == Counter({"opened": 1})
    assert subjects(runtime) == ["after the broken one"]
    (listed,) = runtime.quarantine.list()
    item = runtime.quarantine.get(listed.id)
    assert item is not None and "no RFC 822 headers" in item.error  # its reason, in a line
    assert item.raw().payload.startswith(b"\xff\xfe this is not a mail")  # kept whole


async def test_a_restart_resumes_from_the_cursor_without_duplicate_tickets(
    dovecot, account_factory, run, runtime
):
    user = dovecot.new_user()
    account = account_factory(user)
    dovecot.append(user, mail("before the restart")[0])
    first = RuntimeSink(runtime)
    connector = await run(account, first)
    assert await eventually(lambda: first.outcomes["opened"] == 1, 5)
    await run.stop(connector)
    dovecot.append(user, mail("while stopped")[0])
    second = RuntimeSink(runtime)
    again = await run(account, second)
    assert await eventually(lambda: second.outcomes["opened"] == 1, 5)
    assert await more_polls(again)  # a few more polls: nothing old comes back
    assert [p.source for p in second.handed] == ["imap:INBOX:2"]
    assert second.outcomes == Counter({"opened": 1})
    assert subjects(runtime) == ["before the restart", "while stopped"]


@pytest.mark.parametrize(
    "date", ["Mon, 01 Jan 1990 08:00:00 +0000", "Fri, 01 Jan 2100 08:00:00 +0000"]
)
async def test_a_mail_dated_decades_off_opens_its_ticket_when_it_arrived(
    dovecot, account_factory, run, prefix, tmp_path, date
):
    """The sender writes Date:. The ticket's created time and SLA start are when the mail
    reached the mailbox (its INTERNALDATE); the Date: header stays on the message."""
    runtime = Runtime.for_service(config_for(prefix, tmp_path / "state"))
    user = dovecot.new_user()
    raw, _ = mail("commercial registration")
    arrived = datetime.now(UTC).replace(microsecond=0)  # INTERNALDATE has whole seconds
    dovecot.append(user, f"Date: {date}\r\n".encode() + raw)
    sink = RuntimeSink(runtime)
    await run(account_factory(user), sink)
    assert await eventually(lambda: sink.outcomes["opened"] == 1, 5)
    done = datetime.now(UTC)
    (ticket,) = runtime.store.list_tickets()
    assert arrived <= ticket.created_at <= done
    (message,) = runtime.store.ticket_messages(ticket.id)
    assert message.sent_at == parsedate_to_datetime(date)
    state = runtime.clocks.state(ticket.id)
    assert state is not None
    assert arrived <= state.clocks["first_response"].started_at <= done
