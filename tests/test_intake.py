"""Intake against the real Redis, through the real normalizers and router: idempotency
(twice, threads, two OS processes), threading by email and Telegram chat, reopen, edits,
auto-replies, customer linking, and the store reads the daemon uses."""

from __future__ import annotations

import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest
import redis
from msgspec.structs import replace

from omnidesk.model import Direction, Outbound, Status, utcnow
from omnidesk.runtime import Runtime
from omnidesk.store import ms, raise_item_error
from tests.storekit import config_for, email, telegram, web

ROOT = Path(__file__).resolve().parent.parent


def test_same_payload_twice_is_one_ticket(runtime: Runtime) -> None:
    raw = web("أرغب في تجديد السجل التجاري", email="ali@example.sa", name="علي")
    first = runtime.process([raw]).results
    second = runtime.process([raw, raw]).results
    assert [r.outcome for r in first] == ["opened"]
    assert [r.outcome for r in second] == ["duplicate", "duplicate"]
    assert second[0].ticket_id == first[0].ticket_id
    tickets = runtime.store.list_tickets()
    assert len(tickets) == 1
    ticket = tickets[0]
    assert ticket.id.startswith("OD-") and ticket.id.endswith("-000001")
    assert ticket.queue == "cr" and ticket.rule == "cr" and ticket.status == Status.NEW
    assert runtime.store.waiting("cr") == [ticket.id]
    assert runtime.store.counts()["stats"]["duplicates"] == 2
    kinds = [e["type"] for _, e in runtime.store.events()]
    assert kinds == ["ticket_opened", "routed"]


def test_an_opened_result_carries_the_ticket_and_message_the_store_holds(
    runtime: Runtime,
) -> None:
    """What follows intake in the batch (SLA hooks, receipts) takes an opened ticket and
    its first message from the result, not from Redis: they must be what Redis holds, for
    a new customer and for one intake found (whose id the script, not the draft, knows)."""
    runtime.process([email("k1@example.com", "First question", sender="known@example.com")])
    batch = [
        web("أرغب في تجديد السجل التجاري رقم 4030123456", email="new@example.sa", name="علي"),
        email("k2@example.com", "Another question", sender="known@example.com"),
        telegram(7, 70, 1, "عندي شكوى"),
    ]
    results = runtime.process(batch).results
    assert [r.outcome for r in results] == ["opened"] * 3
    for result in results:
        assert result.ticket is not None and result.message is not None
        assert result.ticket == runtime.store.get_ticket(result.ticket.id)
        assert result.message == runtime.store.get_message(result.message.id)
    follow = runtime.process([email("k3@example.com", "More", in_reply_to="k2@example.com",
                                    sender="known@example.com")]).results  # fmt: skip
    assert follow[0].outcome == "appended" and follow[0].ticket is None


def test_threads_hammering_one_payload_make_one_ticket(runtime: Runtime) -> None:
    raws = [web(f"شكوى رقم {i}", phone="0501234567") for i in range(5)]
    errors: list[BaseException] = []

    def hammer() -> None:
        try:
            for _ in range(10):
                runtime.process(raws)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=hammer) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    tickets = runtime.store.list_tickets(limit=100)
    assert len(tickets) == 5
    assert all(len(t.message_ids) == 1 for t in tickets)
    assert len({t.customer_id for t in tickets}) == 1  # one phone, one customer
    assert runtime.store.counts()["stats"]["opened"] == 5


_HAMMER = """
import sys
from pathlib import Path
from omnidesk.runtime import Runtime
from tests.storekit import config_for, web
rt = Runtime.from_config(config_for(sys.argv[1], Path(sys.argv[2])))
raws = [web(f"complaint number {i}", email="same@example.com") for i in range(20)]
for _ in range(15):
    rt.process(raws)
"""


def test_two_processes_hammering_make_one_ticket_each(prefix: str, tmp_path: Path) -> None:
    args = [sys.executable, "-c", _HAMMER, prefix, str(tmp_path / "state")]
    procs = [subprocess.Popen(args, cwd=ROOT) for _ in range(2)]
    assert [p.wait(timeout=60) for p in procs] == [0, 0]
    rt = Runtime.from_config(config_for(prefix, tmp_path / "state"))
    tickets = rt.store.list_tickets(limit=100)
    assert len(tickets) == 20
    assert len({t.id for t in tickets}) == 20
    assert rt.store.counts()["stats"]["duplicates"] == 2 * 15 * 20 - 20
    assert sorted(rt.store.queue_depths().items()) == [("complaints", 20)]


def test_email_reply_threads_and_reopens_a_resolved_ticket(runtime: Runtime) -> None:
    store = runtime.store
    opened = runtime.process([email("a1@example.com", "My commercial registration expired")])
    tid = opened.results[0].ticket_id
    reply = runtime.process([email("a2@example.com", "Any news?", in_reply_to="a1@example.com")])
    assert reply.results[0].outcome == "appended" and reply.results[0].ticket_id == tid
    assert store.set_status(tid, Status.RESOLVED, actor="agent:1") == "new"
    assert store.waiting("cr") == []
    again = runtime.process([email("a3@example.com", "Still broken", in_reply_to="a2@example.com")])
    assert again.results[0].outcome == "appended" and again.results[0].reopened
    ticket = store.get_ticket(tid)
    assert ticket is not None and ticket.status == Status.OPEN
    assert len(ticket.message_ids) == 3
    assert [m.text.strip() for m in store.ticket_messages(tid)][1:] == ["Any news?", "Still broken"]
    assert store.waiting("cr") == [tid]
    changes = [e for _, e in store.events() if e["type"] == "status_changed"]
    assert [(e["from"], e["to"]) for e in changes] == [("new", "resolved"), ("resolved", "open")]
    assert len(store.list_tickets()) == 1


def test_reply_to_a_ticket_resolved_long_ago_opens_a_new_one(runtime: Runtime) -> None:
    runtime.intake.reopen_window = timedelta(0)
    first = runtime.process([email("b1@example.com", "commercial registration question")])
    tid = first.results[0].ticket_id
    runtime.store.set_status(tid, Status.RESOLVED)
    later = runtime.process([email("b2@example.com", "new question", in_reply_to="b1@example.com")])
    assert later.results[0].outcome == "opened" and later.results[0].ticket_id != tid
    # the same customer, found by the e-mail address
    customer_id = first.results[0].customer_id
    assert customer_id is not None and later.results[0].customer_id == customer_id
    assert len(runtime.store.customer_tickets(customer_id)) == 2


def test_telegram_chat_threads_and_an_edit_updates_the_text(runtime: Runtime) -> None:
    store = runtime.store
    r1 = runtime.process([telegram(1, 555, 10, "عندي شكوى على متجر")]).results[0]
    r2 = runtime.process([telegram(2, 555, 11, "رقم الطلب 991")]).results[0]
    assert r1.outcome == "opened" and r2.outcome == "appended" and r2.ticket_id == r1.ticket_id
    edit = telegram(3, 555, 11, "رقم الطلب 992", edit_date=1_780_000_100)
    r3 = runtime.process([edit]).results[0]
    assert r3.outcome == "edited" and r3.message_id == r2.message_id
    texts = [m.text for m in store.ticket_messages(r1.ticket_id)]  # type: ignore[arg-type]
    assert texts == ["عندي شكوى على متجر", "رقم الطلب 992"]
    other = runtime.process([telegram(4, 777, 10, "مرحبا")]).results[0]
    assert other.outcome == "opened" and other.ticket_id != r1.ticket_id
    assert store.get_ticket(r1.ticket_id).queue == "complaints"  # type: ignore[arg-type,union-attr]


def test_auto_reply_opens_no_ticket_but_attaches_to_its_thread(runtime: Runtime) -> None:
    store = runtime.store
    ooo = {"Auto-Submitted": "auto-replied"}
    lone = runtime.process([email("c1@example.com", "I am out of office", headers=ooo)])
    assert lone.results[0].outcome == "auto_ignored"
    assert store.ticket_count() == 0
    assert store.counts()["stats"]["auto_ignored"] == 1
    assert runtime.process([email("c1@example.com", "x", headers=ooo)]).results[0].outcome == (
        "duplicate"
    )
    tid = runtime.process([email("c2@example.com", "complaint")]).results[0].ticket_id
    store.set_status(tid, Status.RESOLVED)  # type: ignore[arg-type]
    auto = email("c3@example.com", "Out of office", in_reply_to="c2@example.com", headers=ooo)
    attached = runtime.process([auto]).results[0]
    assert attached.outcome == "auto_attached" and attached.ticket_id == tid
    ticket = store.get_ticket(tid)  # type: ignore[arg-type]
    assert ticket is not None and ticket.status == Status.RESOLVED and len(ticket.message_ids) == 2
    assert store.ticket_count() == 1


def test_identities_link_one_customer_across_channels(runtime: Runtime) -> None:
    store = runtime.store
    a = runtime.process([web("first", email="noor@example.sa")]).results[0]
    b = runtime.process([web("second", phone="0551112222")]).results[0]
    assert a.customer_id != b.customer_id
    # a form giving both: the first identity's customer wins; the phone keeps its own
    c = runtime.process([web("third", email="noor@example.sa", phone="0551112222")]).results[0]
    assert c.customer_id == a.customer_id
    # a new phone typed beside a known e-mail is not linked to that customer: anyone can
    # type anyone's e-mail into a form (the ticket keeps both as its contacts)
    d = runtime.process([web("fourth", email="noor@example.sa", phone="0509998888")]).results[0]
    assert d.customer_id == a.customer_id
    customer = store.get_customer(a.customer_id)  # type: ignore[arg-type]
    assert customer is not None
    assert sorted(i.key for i in customer.identities) == ["email:noor@example.sa"]
    assert store.get_ticket(d.ticket_id or "").contacts == [  # type: ignore[union-attr]
        "email:noor@example.sa",
        "phone:+966509998888",
    ]
    assert store.r.hget(store.key("identity"), "phone:+966509998888") is None
    assert len(store.customer_tickets(a.customer_id)) == 3  # type: ignore[arg-type]
    # a form with a new e-mail and a known phone: a customer of its own, the phone not moved
    e = runtime.process([web("fifth", email="other@example.sa", phone="0551112222")]).results[0]
    assert e.customer_id not in (a.customer_id, b.customer_id)
    assert store.r.hget(store.key("identity"), "phone:+966551112222") == b.customer_id
    # a phone alone finds the phone's customer
    f = runtime.process([web("sixth", phone="0551112222")]).results[0]
    assert f.customer_id == b.customer_id


def test_outbound_message_and_delivery_status(runtime: Runtime) -> None:
    store = runtime.store
    tid = runtime.process([web("hello", email="x@example.com")]).results[0].ticket_id
    assert tid is not None
    out = Outbound(id="out-1", ticket_id=tid, channel="web", account="site", text="مرحبا بك")
    msg = store.add_outbound_message(out, author="agent:7")
    assert msg.direction == Direction.OUT and msg.delivery == "queued"
    store.set_delivery("out-1", "failed: mailbox full")
    messages = store.ticket_messages(tid)
    assert [m.direction for m in messages] == [Direction.IN, Direction.OUT]
    assert messages[1].delivery == "failed: mailbox full"
    kinds = [e["type"] for _, e in store.events()]
    assert kinds[-2:] == ["replied", "delivery"]
    assert store.counts()["stats"]["delivery:failed"] == 1


def test_a_delivery_status_never_moves_back(runtime: Runtime) -> None:
    """A channel's statuses may arrive out of order, and a batch's `retrying` may be
    written after its retry's `sent`: neither takes the message back, and neither is an
    event; a final failure stays; a status word we do not rank is recorded as it comes."""
    from concurrent.futures import ThreadPoolExecutor

    store = runtime.store
    tid = runtime.process([web("hello", email="x@example.com")]).results[0].ticket_id
    assert tid is not None
    for n in range(3):
        out = Outbound(id=f"o{n}", ticket_id=tid, channel="web", account="site", text="رد")
        store.add_outbound_message(out, author="agent:7")

    def delivery(mid: str) -> str | None:
        return store.get_message(mid).delivery  # type: ignore[union-attr]

    store.set_deliveries([("o0", "retrying: timed out (attempt 1 of 8)")])
    store.set_deliveries([("o0", "sent")])
    store.set_deliveries([("o0", "retrying: timed out (attempt 1 of 8)")])
    assert delivery("o0") == "sent"
    store.set_deliveries([("o0", "read"), ("o0", "delivered"), ("o1", "failed: gone")])
    assert (delivery("o0"), delivery("o1")) == ("read", "failed: gone")
    store.set_deliveries([("o1", "delivered"), ("o1", "retrying: x (attempt 2 of 8)")])
    assert delivery("o1") == "failed: gone"
    store.set_deliveries([("o2", "outbox")])  # a channel's own word
    assert delivery("o2") == "outbox"
    mine = [e["delivery"] for _, e in store.events() if e["type"] == "delivery"]
    assert mine == [
        "retrying: timed out (attempt 1 of 8)", "sent", "read", "failed: gone", "outbox"
    ]  # fmt: skip
    assert store.set_deliveries([("gone", "sent"), ("o2", "sent")]) == ["gone"]
    assert delivery("o2") == "sent"
    # written at once from many threads, the highest still wins (one script, not last-writer)
    out = Outbound(id="o3", ticket_id=tid, channel="web", account="site", text="رد")
    store.add_outbound_message(out, author="agent:7")
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda s: store.set_deliveries([("o3", s)]), ["read", *["delivered"] * 20]))
    assert delivery("o3") == "read"


def test_list_tickets_filters_and_events_since(runtime: Runtime) -> None:
    store = runtime.store
    results = runtime.process(
        [
            web("السجل التجاري 1", email="a@x.sa"),
            web("complaint 2", email="b@x.sa"),
            web("hi", email="c@x.sa"),
        ]
    ).results
    ids = [r.ticket_id for r in results]
    assert [t.id for t in store.list_tickets()] == ids[::-1]
    assert [t.id for t in store.list_tickets(queue="complaints")] == [ids[1]]
    store.set_status(ids[2], Status.PENDING_CUSTOMER)  # type: ignore[arg-type]
    assert [t.id for t in store.list_tickets(status="pending_customer")] == [ids[2]]
    assert store.list_tickets(queue="general", status="new") == []
    last = store.events()[-1][0]
    assert store.events(since=last) == []
    store.assign(ids[0], "agent:1")  # type: ignore[arg-type]
    assert store.events(since=last)[0][1]["type"] == "assigned"
    assert store.queue_depths() == {"complaints": 1, "cr": 0, "general": 0}


def test_receive_time_not_the_senders_date_is_the_tickets_time(prefix: str, tmp_path: Path):
    """A Date: header decades off, either way, and a web form's own submitted_at: the
    tickets' created time and SLA start are when the payloads reached us; the sender's
    times stay visible on the messages as sent_at."""
    runtime = Runtime.for_service(config_for(prefix, tmp_path / "state"))
    received = datetime.now(UTC) - timedelta(minutes=3)  # the hand-over stamped it
    past = email("old@example.com", "registration")
    future = email("new@example.com", "registration again", sender="other@example.com")
    form = web("commercial registration", email="w@example.com", submitted_at="1999-01-01")
    dates = {"old@example.com": "Mon, 01 Jan 1990 08:00:00 +0000",
             "new@example.com": "Fri, 01 Jan 2100 08:00:00 +0000"}  # fmt: skip
    for raw, message_id in ((past, "old@example.com"), (future, "new@example.com")):
        raw.payload = _redate(raw.payload, dates[message_id])
    payloads = [replace(p, received_at=received) for p in (past, future, form)]
    before = datetime.now(UTC)
    results = runtime.process(payloads).results
    after = datetime.now(UTC)
    assert [r.outcome for r in results] == ["opened"] * 3
    sent = [
        datetime(1990, 1, 1, 8, tzinfo=UTC),
        datetime(2100, 1, 1, 8, tzinfo=UTC),
        datetime(1999, 1, 1, tzinfo=UTC),
    ]
    for result, sent_at in zip(results, sent, strict=True):
        assert result.ticket_id is not None
        ticket = runtime.store.get_ticket(result.ticket_id)
        assert ticket is not None
        assert abs(ticket.created_at - received) < timedelta(milliseconds=1)
        [message] = runtime.store.ticket_messages(ticket.id)
        assert abs(message.created_at - received) < timedelta(milliseconds=1)
        assert message.sent_at == sent_at  # the sender's claim, kept as a fact
        state = runtime.clocks.state(ticket.id)
        assert state is not None
        started = state.clocks["first_response"].started_at
        assert before <= started <= after  # started on intake, not at the sender's date


def test_a_receive_time_in_the_future_is_taken_as_now(runtime: Runtime) -> None:
    """Neither a Date: header nor a drop-folder file touched into the future dates a
    ticket there."""
    raw = email("touched@example.com", "registration")
    raw = replace(raw, payload=_redate(raw.payload, "Fri, 01 Jan 2100 08:00:00 +0000"),
                  received_at=datetime.now(UTC) + timedelta(days=400))  # fmt: skip
    before = datetime.now(UTC)
    result = runtime.process([raw]).results[0]
    ticket = runtime.store.get_ticket(result.ticket_id or "")
    assert ticket is not None and before <= ticket.created_at <= datetime.now(UTC)


def _redate(payload: bytes, date: str) -> bytes:
    head, sep, body = payload.partition(b"\n\n")
    lines = [line for line in head.split(b"\n") if not line.startswith(b"Date:")]
    return b"\n".join([*lines, f"Date: {date}".encode()]) + sep + body


def test_the_same_web_form_again_dedupes_while_open_then_reopens_or_opens_anew(
    runtime: Runtime,
) -> None:
    """A form without submission_id is known by its content. Sent again while its ticket is
    open it is a duplicate of it; after a resolve it reopens that ticket (within the reopen
    window); after a close, or past the window, it opens a new one."""
    store = runtime.store
    raw = web("السجل التجاري لا يعمل", email="repeat@example.sa")
    posts = iter(range(1000))

    def send() -> tuple[str, str | None, bool]:
        """The same form in a new POST (a redelivery of the same one is another test's)."""
        post = replace(raw, received_at=raw.received_at - timedelta(seconds=next(posts)))
        (result,) = runtime.process([post]).results
        return result.outcome, result.ticket_id, result.reopened

    outcome, first, _ = send()
    assert outcome == "opened" and first is not None
    assert send() == ("duplicate", first, False)  # a double click while it is open
    store.set_status(first, Status.RESOLVED, actor="agent:1")
    assert send() == ("appended", first, True)  # still broken: the resolved ticket reopens
    ticket = store.get_ticket(first)
    assert ticket is not None and ticket.status == Status.OPEN and len(ticket.message_ids) == 2
    assert send() == ("duplicate", first, False)
    store.set_status(first, Status.CLOSED, actor="agent:1")
    outcome, second, _ = send()
    assert outcome == "opened" and second not in (None, first)
    assert send() == ("duplicate", second, False)  # repeats now go to the new ticket
    store.set_status(second or "", Status.RESOLVED, actor="agent:1")
    long_ago = datetime.now(UTC) - runtime.intake.reopen_window - timedelta(days=1)
    store.r.hset(store.key("ticket", second or ""), "resolved_ms", ms(long_ago))
    outcome, third, _ = send()  # resolved before the reopen window: a new ticket
    assert outcome == "opened" and third not in (None, first, second)
    customers = {t.customer_id for t in store.list_tickets()}
    assert len(customers) == 1 and len(store.list_tickets()) == 3


def test_a_redelivered_form_post_stays_a_duplicate_after_its_ticket_is_resolved(
    runtime: Runtime,
) -> None:
    """A batch retried after an agent resolved its ticket (an outage, a worker killed
    before its ack) carries the same POSTs: duplicates still, not a reopen. A new POST of
    the same content after the resolve is the customer again, and reopens it."""
    store = runtime.store
    post = web("البوابة لا تقبل الدفع", email="retry@example.sa")
    # received a moment ago: a receive time still in the future when normalized is taken
    # as "now", and would differ on the redelivery
    post = replace(post, received_at=post.received_at - timedelta(seconds=1))
    double_click = replace(post, received_at=post.received_at + timedelta(milliseconds=5))
    first = runtime.process([post, double_click]).results
    assert [r.outcome for r in first] == ["opened", "duplicate"]
    ticket_id = first[0].ticket_id or ""
    store.set_status(ticket_id, Status.RESOLVED, actor="agent:1")
    again = runtime.process([post, double_click]).results  # the same batch, redelivered
    assert [(r.outcome, r.ticket_id, r.reopened) for r in again] == [
        ("duplicate", ticket_id, False)
    ] * 2
    ticket = store.get_ticket(ticket_id)
    assert ticket is not None and ticket.status == Status.RESOLVED
    assert len(ticket.message_ids) == 1 and len(store.list_tickets()) == 1
    later = replace(post, received_at=post.received_at + timedelta(seconds=30))
    (new_post,) = runtime.process([later]).results
    assert (new_post.outcome, new_post.ticket_id, new_post.reopened) == (
        "appended", ticket_id, True,
    )  # fmt: skip


def test_a_form_posted_again_and_again_keeps_a_bounded_trail(runtime: Runtime) -> None:
    """Each POST of a content-known form leaves a key for its redeliveries; a stuck button
    or a script posting the same form must not grow Redis without bound."""
    store = runtime.store
    post = web("الرجاء الرد", email="stuck@example.sa")
    posts = [replace(post, received_at=post.received_at - timedelta(seconds=i)) for i in range(130)]
    results = runtime.process(posts).results
    assert [r.outcome for r in results].count("opened") == 1
    ticket_id = results[0].ticket_id or ""
    assert store.r.llen(store.key("ticket", ticket_id, "posts")) == 100
    assert store.r.hlen(store.key("seen")) <= 101  # the content's key and the last 100 POSTs
    (again,) = runtime.process([posts[-1]]).results  # a recent one redelivered: still known
    assert (again.outcome, again.ticket_id) == ("duplicate", ticket_id)


def test_a_form_with_its_own_submission_id_stays_one_submission(runtime: Runtime) -> None:
    """The sender's own id names one submission: sent again it is a retry, even later."""
    raw = web("registration renewal", email="id@example.sa", submission_id="form-42")
    (opened,) = runtime.process([raw]).results
    runtime.store.set_status(opened.ticket_id or "", Status.CLOSED)
    (again,) = runtime.process([raw]).results
    assert (again.outcome, again.ticket_id) == ("duplicate", opened.ticket_id)


def test_a_customer_mail_relayed_by_a_group_opens_a_ticket(runtime: Runtime) -> None:
    """A group or list that relays a customer's own mail adds `Precedence: bulk`: alone it
    says "sent to many", not "sent by a machine", so the mail opens a ticket (flagged bulk
    for rules) instead of being dropped as an auto-reply. An explicit auto-reply header
    still opens nothing."""
    relayed = email(
        "group-1@example.com",
        "أرجو متابعة شكواي ضد المحل",
        sender="huda@example.sa",
        headers={"Precedence": "bulk"},
    )
    result = runtime.process([relayed]).results[0]
    assert result.outcome == "opened"
    ticket = runtime.store.get_ticket(result.ticket_id)
    assert ticket is not None and ticket.status == Status.NEW
    machine = email(
        "ooo-1@example.com",
        "I am away",
        sender="away@example.sa",
        headers={"Precedence": "bulk", "Auto-Submitted": "auto-replied"},
    )
    assert runtime.process([machine]).results[0].outcome == "auto_ignored"


def test_one_item_that_fails_in_the_batch_script_fails_the_batch_not_the_items_after_it(
    runtime: Runtime,
) -> None:
    """The batch is one script call: an item that raises a Lua error comes back as its error,
    the items after it are still taken in, and the batch fails with that error (it runs again,
    and intake is idempotent)."""
    store, intake = runtime.store, runtime.intake
    items = [p for raw in (web("first", email="f1@x.sa"), web("second", email="f2@x.sa"))
             for p in runtime.prepare(raw) or []]  # fmt: skip
    now = utcnow()
    prepared = [intake._prepare(inbound, decision, now)[0] for inbound, decision in items]
    prepared[0]["message"] = 7  # unpack() of a number: a Lua error in the first item
    replies = store.script("intake")(keys=[store.prefix], args=[msgspec.json.encode(prepared)])
    assert replies[0][0] == "error" and "unpack" in replies[0][1]
    assert replies[1][0] == "opened" and store.get_ticket(replies[1][1]) is not None
    with pytest.raises(redis.ResponseError, match="unpack"):
        raise_item_error(replies)
