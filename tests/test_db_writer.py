"""The outbox writer on the real Redis and PostgreSQL: what intake and the desk did reaches
PostgreSQL once, whatever is written twice, whoever dies; PostgreSQL away loses nothing;
the stream stays bounded while the writer keeps up."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from omnidesk.db.connect import RecordsUnavailable
from omnidesk.db.migrate import upgrade
from omnidesk.db.writer import GROUP, RecordWriter
from omnidesk.events import EventType
from omnidesk.model import Direction, Outbound, Status, Ticket
from omnidesk.outbound import SYSTEM_AUTHOR
from omnidesk.runtime import Runtime
from omnidesk.sla.engine import SlaClocks
from omnidesk.sla.ticket import earliest_due
from omnidesk.store import ms, urgency_score
from tests.clikit import omnidesk
from tests.services import eventually
from tests.storekit import email, telegram, web, write_config


def rows(url: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql, params).fetchall()


def drain(writer: RecordWriter, **kw: Any) -> int:
    return asyncio.run(writer.drain(**kw))


def test_intake_and_desk_reach_postgresql(runtime: Runtime, pg_url: str) -> None:
    store = runtime.store
    opened = runtime.process(
        [
            web("أرغب في تجديد السجل التجاري رقم 4030123456", email="ali@example.sa", name="علي"),
            email("m1@example.com", "My trademark application is stuck"),
            telegram(1, 77, 1, "مرحبا، عندي شكوى على محل"),
        ]
    ).results
    assert [r.outcome for r in opened] == ["opened"] * 3
    tid = opened[1].ticket_id
    follow = runtime.process([email("m2@example.com", "Any news?", in_reply_to="m1@example.com")])
    assert follow.results[0].ticket_id == tid
    store.add_outbound_message(
        Outbound(id="M-reply-1", ticket_id=tid, channel="email", account="care", text="On it"),
        author="agent1",
    )
    store.set_status(tid, Status.RESOLVED, actor="agent1")
    writer = RecordWriter(store, pg_url)
    added = store.r.xlen(store.key("events"))
    assert drain(writer) == added == 9
    assert rows(pg_url, "SELECT count(*) FROM tickets") == [(3,)]
    ticket = rows(
        pg_url,
        "SELECT status, queue, customer_id, resolved_at IS NOT NULL,"
        " first_response_at IS NOT NULL, hot FROM tickets WHERE id = %s",
        tid,
    )
    head = store.get_ticket(tid)
    assert head is not None
    assert ticket == [("resolved", head.queue, head.customer_id, True, True, True)]
    bodies = rows(
        pg_url, "SELECT direction, body FROM messages WHERE ticket_id = %s ORDER BY created_at", tid
    )
    assert [b for _, b in bodies][:2] == ["My trademark application is stuck", "Any news?"]
    assert ("out", "On it") in bodies
    assert rows(pg_url, "SELECT cr_number FROM tickets WHERE id = %s", opened[0].ticket_id) == [
        ("4030123456",)
    ]
    idents = rows(pg_url, "SELECT kind, value FROM identities ORDER BY kind, value")
    assert ("email", "ali@example.sa") in idents and ("email", "customer@example.com") in idents
    kinds = rows(pg_url, "SELECT type, count(*) FROM events GROUP BY type")
    assert dict(kinds)["ticket_opened"] == 3 and dict(kinds)["replied"] == 1
    # monthly partitions, not the default one
    assert rows(pg_url, "SELECT count(*) FROM events_default") == [(0,)]
    # everything was acknowledged and the stream trimmed behind the writer
    assert store.r.xlen(store.key("events")) <= 1
    # Arabic text is searchable after the fold
    found = rows(
        pg_url,
        "SELECT ticket_id FROM messages WHERE search @@ to_tsquery('simple', %s)",
        "شكوي",
    )
    assert found == [(opened[2].ticket_id,)]


def test_the_csat_survey_is_no_first_response_in_the_records(runtime: Runtime, pg_url: str) -> None:
    """The survey goes out as a `replied` by "csat" (a system actor): the ticket's
    first_response_at waits for a person's reply, as the reports' figures do."""
    store = runtime.store
    (opened,) = runtime.process([email("s1@example.com", "Where is my refund?")]).results
    tid = opened.ticket_id
    survey = Outbound(id="M-survey-1", ticket_id=tid, channel="email", account="care", text="1-5?")
    store.add_outbound_message(survey, author="csat")
    writer = RecordWriter(store, pg_url)
    drain(writer)
    first = "SELECT first_response_at IS NOT NULL FROM tickets WHERE id = %s"
    assert rows(pg_url, first, tid) == [(False,)]
    reply = Outbound(id="M-reply-2", ticket_id=tid, channel="email", account="care", text="Done")
    store.add_outbound_message(reply, author="agent1")
    drain(writer)
    assert rows(pg_url, first, tid) == [(True,)]


def test_what_the_system_sends_is_recorded_but_not_indexed(runtime: Runtime, pg_url: str) -> None:
    """A receipt's template is on every ticket: indexed, it would match every search. An
    agent's reply is indexed like the customer's words. Statuses rewrite message rows, so
    the table leaves room on each page for a HOT update."""
    store = runtime.store
    (opened,) = runtime.process([email("ix1@example.com", "Where is my licence?")]).results
    # a form with no name: its author is "" (a system actor's name), its words still count
    (nameless,) = runtime.process([web("شكوى quokkasearch", email="ix2@example.sa")]).results
    nameless_message = store.get_message(str(nameless.message_id))
    assert nameless_message is not None and nameless_message.author == ""
    tid = opened.ticket_id
    for mid, author, text in (
        ("M-auto-1", SYSTEM_AUTHOR, "تم استلام طلبك zebracrossing"),
        ("M-agent-1", "agent1", "نراجع طلبك okapiherd"),
    ):
        out = Outbound(id=mid, ticket_id=tid, channel="email", account="care", text=text)
        store.add_outbound_message(out, author=author)
    drain(RecordWriter(store, pg_url))
    bodies = rows(pg_url, "SELECT id, body FROM messages WHERE ticket_id = %s", tid)
    assert ("M-auto-1", "تم استلام طلبك zebracrossing") in bodies
    found = "SELECT id FROM messages WHERE search @@ to_tsquery('simple', %s)"
    assert rows(pg_url, found, "okapiherd") == [("M-agent-1",)]
    assert rows(pg_url, found, "zebracrossing") == []
    assert rows(pg_url, found, "licence") == [(opened.message_id,)]
    assert rows(pg_url, found, "quokkasearch") == [(nameless.message_id,)]
    options = "SELECT reloptions FROM pg_class WHERE relname = 'messages'"
    assert rows(pg_url, options) == [(["fillfactor=85"],)]


def test_writing_twice_changes_nothing(runtime: Runtime, pg_url: str) -> None:
    store = runtime.store
    runtime.process([web(f"طلب رقم {i}", email=f"c{i}@example.sa") for i in range(20)])
    entries = store.r.xrange(store.key("events"))
    first = RecordWriter(store, pg_url)
    drain(first, trim=False)
    before = rows(pg_url, "SELECT count(*), sum(synced_pos) FROM tickets")
    # a second group member gets the very same entries again (as after a lost XACK)
    store.r.xgroup_setid(store.key("events"), GROUP, "0")
    second = RecordWriter(store, pg_url)
    assert drain(second, trim=False) == len(entries)
    assert rows(pg_url, "SELECT count(*), sum(synced_pos) FROM tickets") == before
    assert rows(pg_url, "SELECT count(*) FROM events") == [(len(entries),)]
    assert rows(pg_url, "SELECT count(*) FROM messages") == [(20,)]


def test_a_batch_is_one_statement_per_table(runtime: Runtime, pg_url: str) -> None:
    """Rows go in by COPY and one INSERT ... SELECT per table (omnidesk.db.staging), so the
    events' statement trigger runs once per batch, not once per event."""
    store = runtime.store
    runtime.process([web(f"طلب رقم {i}", email=f"s{i}@example.sa") for i in range(20)])
    upgrade(pg_url)  # the schema, before the counting triggers go on its tables
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE statements (tbl text PRIMARY KEY, n int NOT NULL)")
        conn.execute(
            "CREATE FUNCTION count_statement() RETURNS trigger LANGUAGE plpgsql AS $$"
            " BEGIN INSERT INTO statements VALUES (TG_TABLE_NAME, 1) ON CONFLICT (tbl)"
            " DO UPDATE SET n = statements.n + 1; RETURN NULL; END $$"
        )
        for table in ("events", "tickets", "messages", "customers"):
            conn.execute(
                f"CREATE TRIGGER count_{table} AFTER INSERT ON {table}"
                " FOR EACH STATEMENT EXECUTE FUNCTION count_statement()"
            )
    entries = store.r.xlen(store.key("events"))
    assert drain(RecordWriter(store, pg_url)) == entries >= 40
    assert rows(pg_url, "SELECT count(*) FROM events") == [(entries,)]
    assert rows(pg_url, "SELECT count(*) FROM tickets") == [(20,)]
    assert dict(rows(pg_url, "SELECT tbl, n FROM statements")) == {
        "events": 1,
        "tickets": 1,
        "messages": 1,
        "customers": 1,
    }


def test_an_older_snapshot_never_overwrites_a_newer_one(runtime: Runtime, pg_url: str) -> None:
    store = runtime.store
    tid = runtime.process([web("شكوى", email="a@example.sa")]).results[0].ticket_id
    assert tid is not None
    writer = RecordWriter(store, pg_url)
    drain(writer, trim=False)
    store.set_status(tid, Status.RESOLVED)
    drain(writer, trim=False)
    assert rows(pg_url, "SELECT status FROM tickets WHERE id = %s", tid) == [("resolved",)]
    # replaying the first events (an old snapshot position) with today's Redis state:
    # the row keeps its newer position
    pos = rows(pg_url, "SELECT synced_pos FROM tickets WHERE id = %s", tid)[0][0]
    store.r.xgroup_setid(store.key("events"), GROUP, "0")
    drain(RecordWriter(store, pg_url), trim=False)
    assert rows(pg_url, "SELECT synced_pos FROM tickets WHERE id = %s", tid) == [(pos,)]


def send_receipt(runtime: Runtime, tid: str, message_id: str) -> None:
    """What a receipt leaves in the stream: `acknowledged`, then its `delivery`."""
    text = f"Received: {tid}"
    receipt = Outbound(id=message_id, ticket_id=tid, channel="email", account="care", text=text)
    runtime.store.add_outbound_messages([receipt], SYSTEM_AUTHOR, event=EventType.ACKNOWLEDGED)
    runtime.store.set_delivery(message_id, "sent")


def test_a_receipt_rewrites_its_message_alone(runtime: Runtime, pg_url: str) -> None:
    """A receipt and its delivery change nothing of the ticket or the customer: their rows
    are not written again (each batch a ticket is in would rewrite them, three in a burst)."""
    (opened,) = runtime.process([email("r1@example.com", "Where is my licence?")]).results
    tid = opened.ticket_id
    assert tid is not None
    writer = RecordWriter(runtime.store, pg_url)
    drain(writer, trim=False)
    versions = (
        "SELECT t.xmin::text, c.xmin::text FROM tickets t JOIN customers c"
        " ON c.id = t.customer_id WHERE t.id = %s"
    )
    before = rows(pg_url, versions, tid)
    send_receipt(runtime, tid, "M-receipt-1")
    assert drain(writer, trim=False) == 2
    assert rows(pg_url, versions, tid) == before
    assert rows(pg_url, "SELECT ticket_id, delivery FROM messages WHERE id = 'M-receipt-1'") == [
        (tid, "sent")
    ]
    assert rows(pg_url, "SELECT count(*) FROM events WHERE ticket_id = %s", tid)[0][0] >= 4


def test_a_new_tickets_first_due_time_is_in_its_row_from_its_first_batch(
    runtime: Runtime, pg_url: str
) -> None:
    """Intake stores a ticket with the first due time its clocks start with, so the batch of
    its opening writes it, for a web form too (no receipt, no later event): no due_changed
    follows, and the queue order is the due time's."""
    assert runtime.config is not None
    clocks = SlaClocks(runtime.store, runtime.config.data)
    hooks = runtime.intake.hooks = clocks.intake_hooks()  # as Runtime.for_service sets them
    start_clocks = hooks.on_opened_many
    assert start_clocks is not None
    before_clocks: list[str | None] = []

    def opened_many(tickets: list[Ticket], opened_at: Mapping[str, datetime]) -> None:
        """What the ticket hash held when the script was done: a writer may read it then."""
        before_clocks.extend(runtime.store.r.hget(runtime.store.key("ticket", t.id), "due_at")
                             for t in tickets)  # fmt: skip
        start_clocks(tickets, opened_at)

    hooks.on_opened_many = opened_many
    (opened,) = runtime.process([web("أرغب في تجديد الرخصة", email="d1@example.sa")]).results
    tid = opened.ticket_id
    assert tid is not None
    state = clocks.state(tid)
    assert state is not None
    due = earliest_due(state)
    assert due is not None
    assert before_clocks == [due.isoformat()]
    ticket_key = runtime.store.key("ticket", tid)
    assert runtime.store.r.hget(ticket_key, "due_at") == due.isoformat()
    head = runtime.store.get_ticket(tid)
    assert head is not None
    assert runtime.store.r.hget(ticket_key, "score") == str(urgency_score(head.priority, ms(due)))
    types = [f["type"] for _, f in runtime.store.r.xrange(runtime.store.key("events"))]
    assert EventType.DUE_CHANGED not in types, types
    drain(RecordWriter(runtime.store, pg_url), trim=False)
    assert rows(pg_url, "SELECT due_at FROM tickets WHERE id = %s", tid) == [(due,)]


def test_a_due_time_that_moves_reaches_postgresql(runtime: Runtime, pg_url: str) -> None:
    """The SLA hooks move a due time after the event of the change that moved it (an agent's
    reply, a follow-up): their own due_changed event carries it to the row, even beside a
    receipt's message-only events. Setting the same due time again writes nothing."""
    (opened,) = runtime.process([email("r3@example.com", "My permit renewal")]).results
    tid = opened.ticket_id
    assert tid is not None
    writer = RecordWriter(runtime.store, pg_url)
    drain(writer, trim=False)
    due = datetime(2027, 1, 5, 9, 30, tzinfo=UTC)
    runtime.store.set_due_many([(tid, due)])
    send_receipt(runtime, tid, "M-receipt-3")
    assert drain(writer, trim=False) == 3
    assert rows(pg_url, "SELECT due_at FROM tickets WHERE id = %s", tid) == [(due,)]
    moved = "SELECT data->>'due_at' FROM events WHERE ticket_id = %s AND type = 'due_changed'"
    assert rows(pg_url, moved, tid) == [(due.isoformat(),)]
    assert runtime.store.set_due_many([(tid, due)]) == 0
    assert drain(writer, trim=False) == 0
    # a ticket gone meanwhile (evicted, erased) is not made again as a hash of a due time
    gone = "OD-2026-999999"
    assert runtime.store.set_due_many([(gone, due)]) == 0
    assert not runtime.store.r.exists(runtime.store.key("ticket", gone))


def test_a_receipt_for_a_ticket_not_yet_recorded_writes_the_ticket_too(
    runtime: Runtime, pg_url: str
) -> None:
    """Another consumer may still be writing the batch that opened the ticket when this one
    takes its receipt: at a drain (nothing held back) the ticket and its customer are written
    whole, so the message lands."""
    (opened,) = runtime.process([telegram(5, 55, 1, "عندي استفسار عن رخصة")]).results
    tid = opened.ticket_id
    assert tid is not None
    upgrade(pg_url)
    writer = RecordWriter(runtime.store, pg_url)
    writer.ensure_group()
    stream = runtime.store.key("events")
    # the opening entries went to someone else
    runtime.store.r.xgroup_setid(stream, GROUP, runtime.store.r.xrevrange(stream, count=1)[0][0])
    send_receipt(runtime, tid, "M-receipt-2")
    assert drain(writer, trim=False) == 2
    head = runtime.store.get_ticket(tid)
    assert head is not None
    recorded = "SELECT t.queue, c.id FROM tickets t JOIN customers c ON c.id = t.customer_id"
    assert rows(pg_url, recorded + " WHERE t.id = %s", tid) == [(head.queue, head.customer_id)]
    assert rows(pg_url, "SELECT ticket_id, delivery FROM messages WHERE id = 'M-receipt-2'") == [
        (tid, "sent")
    ]
    # written for its message's sake, at position 1: the opening batch's row replaces it
    position = "SELECT synced_pos FROM tickets WHERE id = %s"
    assert rows(pg_url, position, tid) == [(1,)]
    runtime.store.r.xgroup_setid(stream, GROUP, "0")
    drain(RecordWriter(runtime.store, pg_url), trim=False)
    assert rows(pg_url, position, tid)[0][0] > 1


def test_a_receipts_writer_that_finds_the_ticket_written_meanwhile_leaves_it(
    runtime: Runtime, pg_url: str
) -> None:
    """The receipt's writer found the ticket not yet recorded, and the opening batch's
    writer committed before it: the ticket and customer rows stay as that one wrote them."""
    (opened,) = runtime.process([email("race1@example.com", "Any news on my licence?")]).results
    tid = opened.ticket_id
    assert tid is not None
    upgrade(pg_url)
    writer = RecordWriter(runtime.store, pg_url)
    writer.ensure_group()
    opening = writer.read()
    send_receipt(runtime, tid, "M-receipt-3")
    receipt = writer.read()
    assert {f["type"] for _, f in receipt} == {"acknowledged", "delivery"}
    snap = writer.snapshot(receipt)  # before the opening is recorded: the ticket is in it
    assert tid in snap.tickets

    async def write(entries: list[tuple[str, dict[str, str]]], snap: Any = None) -> None:
        async with await psycopg.AsyncConnection.connect(pg_url) as conn:
            if snap is None:
                await writer._write_entries(conn, entries, defer=False)
            else:
                await writer.write(conn, entries, snap)

    asyncio.run(write(opening))
    versions = (
        "SELECT t.xmin::text, c.xmin::text, t.synced_pos FROM tickets t JOIN customers c"
        " ON c.id = t.customer_id WHERE t.id = %s"
    )
    before = rows(pg_url, versions, tid)
    asyncio.run(write(receipt, snap))
    assert rows(pg_url, versions, tid) == before
    assert rows(pg_url, "SELECT delivery FROM messages WHERE id = 'M-receipt-3'") == [("sent",)]


def write_once(writer: RecordWriter, pg_url: str) -> int:
    async def once() -> int:
        async with await psycopg.AsyncConnection.connect(pg_url) as conn:
            return await writer.write_once(conn)

    return asyncio.run(once())


def test_a_receipt_waits_for_the_consumer_writing_its_ticket(runtime: Runtime, pg_url: str):
    """The receipt's consumer holds its entries back while another consumer still writes the
    batch that opened the ticket (writing the ticket and customer too would wait on that
    transaction's locks), then writes the message alone: the ticket's row stays as the
    opening batch wrote it."""
    (opened,) = runtime.process([email("wait1@example.com", "Is my licence ready?")]).results
    tid = opened.ticket_id
    assert tid is not None
    upgrade(pg_url)
    opener = RecordWriter(runtime.store, pg_url, consumer="opener")
    opener.ensure_group()
    opening = opener.read()
    assert {f["type"] for _, f in opening} == {"ticket_opened", "routed"}
    send_receipt(runtime, tid, "M-receipt-4")
    receipts = RecordWriter(runtime.store, pg_url, consumer="receipts", defer_s=60)
    assert write_once(receipts, pg_url) == 0  # held back: the opening is not recorded yet
    assert rows(pg_url, "SELECT count(*) FROM tickets") == [(0,)]
    assert rows(pg_url, "SELECT count(*) FROM messages") == [(0,)]
    stream = runtime.store.key("events")
    held = runtime.store.r.xpending_range(stream, GROUP, "-", "+", 10, consumername="receipts")
    assert len(held) == 2  # still pending to it: a crash here loses nothing

    async def write_opening() -> None:
        async with await psycopg.AsyncConnection.connect(pg_url) as conn:
            await opener._write_entries(conn, opening, defer=True)

    asyncio.run(write_opening())
    opener.acknowledge([eid for eid, _ in opening])
    versions = (
        "SELECT t.xmin::text, c.xmin::text, t.synced_pos FROM tickets t JOIN customers c"
        " ON c.id = t.customer_id WHERE t.id = %s"
    )
    before = rows(pg_url, versions, tid)
    assert before[0][2] > 1
    assert write_once(receipts, pg_url) == 2
    assert rows(pg_url, versions, tid) == before
    assert rows(pg_url, "SELECT delivery FROM messages WHERE id = 'M-receipt-4'") == [("sent",)]
    assert runtime.store.r.xpending(stream, GROUP)["pending"] == 0


def test_a_receipt_whose_ticket_never_comes_is_written_whole_in_time(
    runtime: Runtime, pg_url: str
) -> None:
    """Held back no longer than `defer_s`: a ticket whose opening batch is not recorded by
    then (set aside, say) is written whole with the message, at position 1."""
    (opened,) = runtime.process([telegram(6, 66, 1, "متى تصدر الرخصة؟")]).results
    tid = opened.ticket_id
    assert tid is not None
    upgrade(pg_url)
    opener = RecordWriter(runtime.store, pg_url, consumer="opener")
    opener.ensure_group()
    assert len(opener.read()) == 2  # and never written
    send_receipt(runtime, tid, "M-receipt-5")
    receipts = RecordWriter(runtime.store, pg_url, consumer="receipts", defer_s=0.3)
    assert write_once(receipts, pg_url) == 0
    time.sleep(0.35)
    assert write_once(receipts, pg_url) == 2
    assert rows(pg_url, "SELECT synced_pos FROM tickets WHERE id = %s", tid) == [(1,)]
    assert rows(pg_url, "SELECT delivery FROM messages WHERE id = 'M-receipt-5'") == [("sent",)]


def test_a_delivery_status_waits_for_the_consumer_writing_its_message(
    runtime: Runtime, pg_url: str
) -> None:
    """A receipt's `acknowledged` and its `delivery` in two consumers' batches: the status's
    consumer holds it back until the message is recorded, instead of inserting the same
    message row beside the other's open transaction and waiting on its lock."""
    (opened,) = runtime.process([email("wait2@example.com", "Is my permit ready?")]).results
    tid = opened.ticket_id
    assert tid is not None
    drain(RecordWriter(runtime.store, pg_url), trim=False)
    send_receipt(runtime, tid, "M-receipt-6")
    adder = RecordWriter(runtime.store, pg_url, consumer="adder", batch=1)
    adding = adder.read()
    assert [f["type"] for _, f in adding] == ["acknowledged"]
    statuses = RecordWriter(runtime.store, pg_url, consumer="statuses", defer_s=60)
    assert write_once(statuses, pg_url) == 0  # held back: the message is not recorded yet
    assert rows(pg_url, "SELECT count(*) FROM messages WHERE id = 'M-receipt-6'") == [(0,)]

    async def write_adding() -> None:
        async with await psycopg.AsyncConnection.connect(pg_url) as conn:
            await adder._write_entries(conn, adding, defer=True)

    asyncio.run(write_adding())
    adder.acknowledge([eid for eid, _ in adding])
    assert write_once(statuses, pg_url) == 1
    assert rows(pg_url, "SELECT delivery FROM messages WHERE id = 'M-receipt-6'") == [("sent",)]


async def test_entries_held_back_are_no_reason_to_idle(runtime: Runtime, pg_url: str) -> None:
    """A round whose entries were all held back, with more in the stream, is followed at
    once by the next: the writer idles only once it has read the stream to its end."""
    (first,) = runtime.process([email("idle1@example.com", "First request")]).results
    assert first.ticket_id is not None
    upgrade(pg_url)
    opener = RecordWriter(runtime.store, pg_url, consumer="opener")
    opener.ensure_group()
    assert len(opener.read()) == 2  # the first ticket's opening, never written here
    send_receipt(runtime, first.ticket_id, "M-receipt-7")  # two entries, held back
    (second,) = runtime.process([email("idle2@example.com", "Second request")]).results
    writer = RecordWriter(runtime.store, pg_url, consumer="writer", batch=2, defer_s=60)
    stop = asyncio.Event()
    task = asyncio.create_task(writer.run(stop, idle_s=60))
    try:
        recorded = "SELECT count(*) FROM tickets WHERE id = %s"
        assert await eventually(lambda: rows(pg_url, recorded, second.ticket_id) == [(1,)])
        assert rows(pg_url, recorded, first.ticket_id) == [(0,)]  # still held back
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
    # on the way out, what was held back is written whole
    assert rows(pg_url, "SELECT synced_pos FROM tickets WHERE id = %s", first.ticket_id) == [(1,)]


def held_back_receipt(runtime: Runtime, pg_url: str, email_address: str) -> RecordWriter:
    """A writer holding back a receipt's two entries: the ticket's opening went to another
    consumer, which has not written it."""
    (opened,) = runtime.process([email(email_address, "Where is my licence?")]).results
    assert opened.ticket_id is not None
    upgrade(pg_url)
    opener = RecordWriter(runtime.store, pg_url, consumer="opener")
    opener.ensure_group()
    assert len(opener.read()) == 2
    send_receipt(runtime, opened.ticket_id, f"M-{email_address}")
    writer = RecordWriter(runtime.store, pg_url, consumer="writer", defer_s=60)
    assert write_once(writer, pg_url) == 0
    return writer


def test_a_drain_writes_what_was_held_back_and_ends(runtime: Runtime, pg_url: str) -> None:
    writer = held_back_receipt(runtime, pg_url, "drain1@example.com")
    assert drain(writer, trim=False) == 2
    assert drain(writer, trim=False) == 0
    assert (
        runtime.store.r.xpending_range(
            runtime.store.key("events"), GROUP, "-", "+", 10, consumername="writer"
        )
        == []
    )


def test_entries_held_back_do_not_stop_a_reread_after_an_outage(
    runtime: Runtime, pg_url: str
) -> None:
    """After an outage a writer reads its own pending entries first; the held-back ones
    are among them, and must not keep it from reading on."""
    writer = held_back_receipt(runtime, pg_url, "reread1@example.com")
    (later,) = runtime.process([email("reread2@example.com", "Another request")]).results
    writer._own_pending = True  # what an outage leaves
    assert write_once(writer, pg_url) == 2  # the later ticket's opening
    assert rows(pg_url, "SELECT count(*) FROM tickets WHERE id = %s", later.ticket_id) == [(1,)]
    assert len(writer._deferred) == 2  # the receipt still waits for its ticket


def test_a_dead_consumers_entries_are_claimed(runtime: Runtime, pg_url: str) -> None:
    store = runtime.store
    runtime.process([web(f"رسالة {i}", email=f"d{i}@example.sa") for i in range(5)])
    dead = RecordWriter(store, pg_url, consumer="dead")
    dead.ensure_group()
    taken = dead.read()  # delivered to "dead", which then dies before writing
    assert len(taken) == 10
    alive = RecordWriter(store, pg_url, consumer="alive", claim_idle_ms=0)
    assert drain(alive) == 10
    assert rows(pg_url, "SELECT count(*) FROM tickets") == [(5,)]
    assert store.r.xpending(store.key("events"), GROUP)["pending"] == 0


def test_dead_consumers_are_looked_for_every_few_seconds_not_at_every_read(
    runtime: Runtime, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The look (XAUTOCLAIM) checks every pending entry of the group against the stream: at
    every read it was 11 % of Redis's time in a burst. It now runs every `CLAIM_EVERY_S`
    (5 s) at most, goes on from where the last look stopped, and still claims every entry
    idle for `claim_idle_ms`."""
    store = runtime.store
    runtime.process([web(f"رسالة {i}", email=f"k{i}@example.sa") for i in range(5)])
    dead = RecordWriter(store, pg_url, consumer="dead")
    dead.ensure_group()
    taken = dead.read()  # delivered to "dead", which then dies before writing
    assert len(taken) == 10
    alive = RecordWriter(store, pg_url, consumer="alive", batch=4)
    looks: list[str] = []
    claim = store.r.xautoclaim

    def counted(*args: Any, **kwargs: Any) -> Any:
        looks.append(args[4])  # where the look starts
        return claim(*args, **kwargs)

    store.r.xautoclaim = counted  # type: ignore[method-assign]
    assert alive.read() == [] and alive.read() == [] and alive.read() == []
    assert looks == ["0-0"]  # not idle long enough yet; one look, not one per read
    # a minute on: the entries have been idle that long, and the next look is due
    store.r.xclaim(store.key("events"), GROUP, "dead", 0, [e for e, _ in taken], idle=60_000)
    later = time.monotonic() + 60
    monkeypatch.setattr(time, "monotonic", lambda: later)
    claimed = [alive.read(), alive.read(), alive.read(), alive.read()]
    assert [len(batch) for batch in claimed] == [4, 4, 2, 0]
    assert sorted(e for batch in claimed for e, _ in batch) == sorted(e for e, _ in taken)
    assert looks[1] == "0-0" and len(looks) == 4  # the fourth read looked no more
    assert looks[2:] == [claimed[1][0][0], claimed[2][0][0]]  # each from where one stopped


def test_postgresql_away_loses_nothing(runtime: Runtime, pg_url: str) -> None:
    """Nothing is acknowledged or trimmed while PostgreSQL is away; the backlog shows it."""
    store = runtime.store
    runtime.process([web(f"طلب {i}", email=f"p{i}@example.sa") for i in range(10)])
    down = RecordWriter(store, "postgresql://postgres@127.0.0.1:1/omnidesk")

    async def one_round() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(down.run(stop, idle_s=0.05))
        assert await eventually(lambda: down.state.up is False, 10)  # a round has failed
        stop.set()
        await task

    down.ensure_group()
    asyncio.run(one_round())
    assert down.state.up is False and "postgresql unavailable" in down.state.error
    assert down.backlog() == 20
    assert down.trim() == 0
    assert store.r.xlen(store.key("events")) == 20
    back = RecordWriter(store, pg_url)
    assert drain(back) == 20
    assert rows(pg_url, "SELECT count(*) FROM tickets") == [(10,)]
    assert back.backlog() == 0


def test_the_stream_stays_bounded_while_the_writer_keeps_up(runtime: Runtime, pg_url: str) -> None:
    store = runtime.store
    writer = RecordWriter(store, pg_url, batch=200)
    lengths = []

    async def run() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(writer.run(stop, idle_s=0.02, trim_s=0.0))
        for round_ in range(10):
            batch = [
                web(f"طلب {round_}-{i}", email=f"s{round_}-{i}@example.sa") for i in range(100)
            ]
            await asyncio.to_thread(runtime.process, batch)
            await asyncio.sleep(0.3)
            lengths.append(store.r.xlen(store.key("events")))
        stop.set()
        await task

    asyncio.run(run())
    assert writer.state.written >= 1800
    # 2,000 events went through; the stream never held more than a few batches
    assert max(lengths) < 600, lengths
    assert rows(pg_url, "SELECT count(*) FROM tickets") == [(1000,)]


def test_the_trim_follows_the_writer_alone(runtime: Runtime, pg_url: str) -> None:
    """Reports keep nothing in Redis, so nothing but consumer groups holds the stream back:
    an older version's rollup cursor left behind is ignored, and what the writer has
    written goes."""
    store = runtime.store
    runtime.process([web("طلب", email="r@example.sa")])
    store.r.set(store.key("ru", "last"), "0-1")  # an older version's rollups' cursor
    writer = RecordWriter(store, pg_url)
    drain(writer)
    writer.trim()
    assert store.r.xlen(store.key("events")) == 0


@pytest.mark.parametrize("direction", [Direction.NOTE])
def test_notes_are_recorded(runtime: Runtime, pg_url: str, direction: Direction) -> None:
    store = runtime.store
    tid = runtime.process([web("شكوى", email="n@example.sa")]).results[0].ticket_id
    assert tid is not None
    store.add_outbound_message(
        Outbound(id="M-note-1", ticket_id=tid, channel="web", account="site", text="call back"),
        author="agent1",
        direction=direction,
    )
    drain(RecordWriter(store, pg_url))
    assert rows(pg_url, "SELECT direction, author FROM messages WHERE id = 'M-note-1'") == [
        ("note", "agent1")
    ]


def test_a_form_known_by_its_content_is_recorded_each_time_it_opens_a_ticket(
    runtime: Runtime, pg_url: str
) -> None:
    """A web form without a submission id is known by its content hash: the same content
    after a close is a new message, and PostgreSQL must keep both."""
    store = runtime.store
    form = web("نفس الشكوى مرة أخرى", email="same@example.sa")
    first = runtime.process([form]).results[0]
    store.set_status(first.ticket_id, Status.CLOSED)
    again = web("نفس الشكوى مرة أخرى", email="same@example.sa")
    second = runtime.process([again]).results[0]
    assert second.outcome == "opened" and second.ticket_id != first.ticket_id
    drain(RecordWriter(store, pg_url))
    held = rows(pg_url, "SELECT ticket_id, external_id FROM messages ORDER BY created_at")
    assert [t for t, _ in held] == [first.ticket_id, second.ticket_id]
    assert held[0][1] != held[1][1] and held[0][1].split("@")[0] == held[1][1].split("@")[0]


def test_a_month_made_in_a_failed_batch_is_made_again(runtime: Runtime, pg_url: str) -> None:
    """A partition created in a transaction that then failed (here as a server shutting
    down would make it, so the writer waits and retries the batch) was rolled back with it: the
    writer must not remember it as made, or the month's events land in events_default (and
    the partition can never be created afterwards: the default one holds rows of its range)."""
    store = runtime.store
    runtime.process([web("طلب تجديد", email="month@example.sa")])
    with psycopg.connect(pg_url, autocommit=True) as conn:  # a real failure inside the batch
        conn.execute(
            "CREATE FUNCTION od_refuse() RETURNS trigger LANGUAGE plpgsql"
            " AS $$ BEGIN RAISE EXCEPTION 'refused for the test' USING ERRCODE = '57P01'; END $$"
        )
        conn.execute(
            "CREATE TRIGGER od_refuse BEFORE INSERT ON messages"
            " FOR EACH ROW EXECUTE FUNCTION od_refuse()"
        )
    writer = RecordWriter(store, pg_url)
    with pytest.raises(RecordsUnavailable, match="refused for the test"):
        drain(writer)
    assert rows(pg_url, "SELECT count(*) FROM events") == [(0,)]
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("DROP TRIGGER od_refuse ON messages")
    assert drain(writer) == 2
    assert rows(pg_url, "SELECT count(*) FROM events") == [(2,)]
    assert rows(pg_url, "SELECT count(*) FROM events_default") == [(0,)]


def test_a_dead_consumer_is_forgotten_once_it_holds_nothing(runtime: Runtime, pg_url: str):
    """Each daemon start joins the group under a name of its own; a dead one's name is
    dropped once its entries were claimed and written, never while it still holds some."""
    store = runtime.store
    runtime.process([web(f"رسالة {i}", email=f"g{i}@example.sa") for i in range(3)])
    stream = store.key("events")
    dead = RecordWriter(store, pg_url, consumer="dead")
    dead.ensure_group()
    assert len(dead.read()) == 6  # delivered to "dead", which dies before writing
    alive = RecordWriter(store, pg_url, consumer="alive", claim_idle_ms=0)
    assert alive.prune() == 0  # "dead" still holds six entries
    assert [c["name"] for c in store.r.xinfo_consumers(stream, GROUP)] == ["dead"]
    assert drain(alive) == 6  # claimed, written; the trim round then forgets "dead"
    assert [c["name"] for c in store.r.xinfo_consumers(stream, GROUP)] == ["alive"]
    assert rows(pg_url, "SELECT count(*) FROM tickets") == [(3,)]


def test_a_record_that_cannot_be_written_is_set_aside_and_the_rest_goes_on(
    runtime: Runtime, pg_url: str
) -> None:
    """A batch that fails for a reason other than PostgreSQL being away (here a ticket whose
    created_at is not a date) is written one entry at a time: the bad entries are kept in
    Redis with their error and acknowledged, everything else is written, and the writer
    stays up instead of retrying the same batch forever."""
    store = runtime.store
    batch = [web(f"طلب {i}", email=f"bad{i}@example.sa") for i in range(3)]
    results = runtime.process(batch).results
    bad = results[1].ticket_id
    assert bad is not None
    store.r.hset(store.key("ticket", bad), "created_at", "not a date")
    writer = RecordWriter(store, pg_url)

    async def scenario() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(writer.run(stop, idle_s=0.05))
        for _ in range(100):
            if writer.state.written >= 6:
                break
            await asyncio.sleep(0.1)
        stop.set()
        await task

    asyncio.run(scenario())
    assert writer.state.up is True and writer.state.failed == 2
    written = {t for (t,) in rows(pg_url, "SELECT id FROM tickets")}
    assert written == {results[0].ticket_id, results[2].ticket_id}
    failed = store.r.hgetall(store.key("records", "failed"))
    kinds = sorted(json.loads(v)["fields"]["type"] for v in failed.values())
    assert kinds == ["routed", "ticket_opened"]
    assert all("not a date" in json.loads(v)["error"] for v in failed.values())
    assert store.r.hget(store.key("stats"), "records_failed") == "2"
    assert writer.backlog() == 0


def test_the_trim_waits_for_every_consumer_group(runtime: Runtime, pg_url: str) -> None:
    """A group an operator or a tool attached to the stream loses nothing to the trim."""
    store = runtime.store
    stream = store.key("events")
    store.r.xgroup_create(stream, "audit-tool", id="0", mkstream=True)
    runtime.process([web("طلب", email="g@example.sa")])
    writer = RecordWriter(store, pg_url)
    drain(writer)
    assert store.r.xlen(stream) == 2  # written, but the tool has read nothing yet
    store.r.xreadgroup("audit-tool", "t", {stream: ">"}, count=1)  # takes one, pending
    assert writer.trim() == 0
    (first,) = store.r.xrange(stream, count=1)
    store.r.xack(stream, "audit-tool", first[0])
    assert writer.trim() == 1 and store.r.xlen(stream) == 1


def test_a_snapshot_never_puts_old_customer_tags_back(runtime: Runtime, pg_url: str) -> None:
    """The CRM writes tags to PostgreSQL (the truth) and to Redis's copy; a writer snapshot
    read before that must not restore the old ones (they route live traffic)."""
    store = runtime.store
    result = runtime.process([web("طلب", email="tag@example.sa")]).results[0]
    drain(RecordWriter(store, pg_url))
    with psycopg.connect(pg_url) as conn:
        conn.execute("UPDATE customers SET tags = '{vip}' WHERE id = %s", (result.customer_id,))
    store.set_status(result.ticket_id, Status.OPEN)  # a later event re-reads the customer
    drain(RecordWriter(store, pg_url))
    assert rows(pg_url, "SELECT tags FROM customers WHERE id = %s", result.customer_id) == [
        (["vip"],)
    ]


def test_a_statement_refused_for_its_content_is_set_aside_not_waited_on(
    runtime: Runtime, pg_url: str
) -> None:
    """psycopg calls 'program limit exceeded' (a text too long for a tsvector) an
    OperationalError; it is not an outage, and waiting would hold every record behind it."""
    store = runtime.store
    runtime.process([web("عادي", email="ok@example.sa"), web("ضخم جدا", email="big@example.sa")])
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(
            "CREATE FUNCTION od_limit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
            " IF NEW.body = 'ضخم جدا' THEN RAISE EXCEPTION 'too long' USING ERRCODE = '54000';"
            " END IF; RETURN NEW; END $$"
        )
        conn.execute(
            "CREATE TRIGGER od_limit BEFORE INSERT ON messages"
            " FOR EACH ROW EXECUTE FUNCTION od_limit()"
        )
    writer = RecordWriter(store, pg_url)
    assert drain(writer) == 4
    assert rows(pg_url, "SELECT body FROM messages") == [("عادي",)]
    # the entry naming the refused message is kept in Redis; the rest was written
    assert writer.state.failed == 1 and writer.backlog() == 0
    (kept,) = store.r.hvals(store.key("records", "failed"))
    assert json.loads(kept)["fields"]["type"] == "ticket_opened" and "too long" in kept


def test_set_aside_entries_are_listed_retried_and_dropped(runtime: Runtime, pg_url: str) -> None:
    store = runtime.store
    bad = runtime.process([web("طلب", email="retry@example.sa")]).results[0].ticket_id
    good = store.r.hget(store.key("ticket", bad), "created_at")
    store.r.hset(store.key("ticket", bad), "created_at", "not a date")
    writer = RecordWriter(store, pg_url)
    drain(writer)
    failed = writer.failed_entries()
    assert len(failed) == 2 and writer.backlog() == 0 and writer.state.failed == 2
    store.r.hset(store.key("ticket", bad), "created_at", good)  # the cause fixed
    first, second = failed
    assert writer.retry_failed([first, "0-1"]) == [first]
    assert writer.drop_failed([second]) == 1
    drain(writer)
    assert writer.failed_entries() == {} and writer.backlog() == 0 and writer.state.failed == 0
    assert rows(pg_url, "SELECT id FROM tickets") == [(bad,)]


def test_the_failed_command_lists_set_aside_entries(
    runtime: Runtime, pg_url: str, prefix: str, tmp_path: Path
) -> None:
    store = runtime.store
    bad = runtime.process([web("طلب", email="cli@example.sa")]).results[0].ticket_id
    store.r.hset(store.key("ticket", bad), "created_at", "not a date")
    drain(RecordWriter(store, pg_url))
    config = write_config(prefix, tmp_path / "state", tmp_path / "config.yaml")
    env = {"OMNIDESK_DATABASE_URL": pg_url}
    cmd = ["db", "failed", "--config", str(config)]
    out = omnidesk(*cmd, env=env)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 2 and all(bad in line and "isoformat" in line for line in lines)
    first = lines[0].split()[0]
    out = omnidesk(*cmd, "--drop", first, env=env)
    assert out.stdout.strip() == "dropped 1 of 1"
