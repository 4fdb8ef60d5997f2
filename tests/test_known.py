"""The pre-intake step and the customer eviction on the real Redis and PostgreSQL: a
`customer_tag` rule routes live traffic, a customer Redis let go comes back with its id,
PostgreSQL's unique message key keeps a message out twice, and PostgreSQL down never
stops intake.

PostgreSQL is filled by the outbox writer (RecordWriter.drain) where the test follows a
customer's life, and by plain INSERTs where it sets up a state the writer would not make
(merges, erasures, a customer only half recorded)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from omnidesk.configload import LoadedConfig, load_config
from omnidesk.db.connect import RecordsUnavailable
from omnidesk.db.customer_evict import evict_customers
from omnidesk.db.evict import Eviction
from omnidesk.db.records import Records
from omnidesk.db.writer import RecordWriter
from omnidesk.model import RawPayload, Status
from omnidesk.runtime import Runtime
from tests.storekit import REDIS_URL
from tests.storekit import email as storekit_email

CONFIG = Path(__file__).parent / "fixtures" / "config" / "known.yaml"
DOWN_URL = "postgresql://postgres@127.0.0.1:1/omnidesk"


def email(message_id: str, text: str, *, sender: str) -> RawPayload:
    """A new e-mail thread whose words match no keyword rule."""
    return storekit_email(message_id, text, sender=sender, subject="A question")


def config(prefix: str, state_dir: Path) -> LoadedConfig:
    loaded = load_config(CONFIG)
    service = loaded.data.service.model_copy(
        update={"key_prefix": prefix, "state_dir": str(state_dir), "redis_url": REDIS_URL}
    )
    return replace(loaded, data=loaded.data.model_copy(update={"service": service}))


@pytest.fixture
def records(pg_url: str) -> Iterator[Records]:
    rec = Records(pg_url)
    yield rec
    rec.close()


@pytest.fixture
def rt(prefix: str, tmp_path: Path, records: Records) -> Runtime:
    """What the daemon and `omnidesk worker` run: SLA hooks and PostgreSQL behind Redis."""
    return Runtime.for_service(config(prefix, tmp_path / "state"), records=records)


def seed_customer(
    conn: psycopg.Connection[Any],
    cid: str,
    identities: list[str],
    *,
    tags: list[str] = (),  # type: ignore[assignment]
    name: str = "",
    segment: str = "unknown",
    region: str | None = None,
    merged_into: str | None = None,
) -> None:
    conn.execute(
        "INSERT INTO customers (id, name, segment, region, tags, created_at, merged_into)"
        " VALUES (%s, %s, %s, %s, %s, now() - interval '30 days', %s)",
        (cid, name, segment, region, list(tags), merged_into),
    )
    for key in identities:
        kind, _, value = key.partition(":")
        conn.execute(
            "INSERT INTO identities (kind, value, customer_id) VALUES (%s, %s, %s)",
            (kind, value, cid),
        )


def write(rt: Runtime, records: Records) -> None:
    """What the daemon's outbox writer does in the background, done now."""
    assert asyncio.run(RecordWriter(rt.store, records.info).drain()) > 0


def archive(rt: Runtime, tmp_path: Path, ticket_id: str) -> None:
    """The ticket leaves Redis the way the eviction pass takes it out (its dedupe and thread
    keys go with it): closed, written to PostgreSQL, evicted."""
    rt.store.set_status(ticket_id, Status.CLOSED, actor="agent:1")
    asyncio.run(RecordWriter(rt.store, rt.records.info).drain())
    # customers are left be: these tests evict them with evict_customers itself
    eviction = Eviction(rt.store, rt.records, reopen_window=timedelta(days=7), customers=False)
    moved = eviction.run().evicted
    assert ticket_id in moved and rt.store.get_ticket(ticket_id) is None


def one(rt: Runtime, raw: RawPayload) -> tuple[str, str, str]:
    (result,) = rt.process([raw]).results
    assert result.ticket_id is not None
    ticket = rt.store.get_ticket(result.ticket_id)
    return result.outcome, result.ticket_id, ticket.queue if ticket else ""


def test_a_customer_tag_in_postgresql_routes_the_returning_customer_with_its_own_id(
    rt: Runtime, records: Records, tmp_path: Path
) -> None:
    """Sara wrote once; her ticket and then she left Redis; an agent tagged her vip in the
    CRM (PostgreSQL only). Her next message, a new thread, is routed by the vip rule and
    linked to the customer she was, not a new one."""
    store = rt.store
    outcome, first, queue = one(rt, email("m1@example.com", "hello", sender="sara@example.com"))
    assert (outcome, queue) == ("opened", "general")
    ticket = store.get_ticket(first)
    assert ticket is not None
    cid = ticket.customer_id
    write(rt, records)
    assert evict_customers(store, records, [cid], grace=timedelta(0)) == []  # ticket still here
    archive(rt, tmp_path, first)  # (the writer writes her Redis snapshot once more)
    with records.connection() as conn:  # the CRM tags her in PostgreSQL only
        conn.execute("UPDATE customers SET tags = '{vip}', name = 'Sara' WHERE id = %s", (cid,))
    assert evict_customers(store, records, [cid], grace=timedelta(0)) == [cid]
    assert store.get_customer(cid) is None
    assert store.r.hget(store.key("identity"), "email:sara@example.com") is None
    assert store.r.zscore(store.key("customers"), cid) is None

    outcome, second, queue = one(rt, email("m2@example.com", "hi", sender="sara@example.com"))
    assert (outcome, queue) == ("opened", "vip")
    again = store.get_ticket(second)
    assert again is not None and again.customer_id == cid and again.rule == "vip-customer"
    back = store.get_customer(cid)
    assert back is not None and back.tags == ["vip"] and back.name == "Sara"
    assert [i.key for i in back.identities] == ["email:sara@example.com"]
    assert store.r.zscore(store.key("customers"), cid) is not None
    # someone else's message, same words: the default queue, a new customer
    outcome, other, queue = one(rt, email("m3@example.com", "hi", sender="omar@example.com"))
    other_ticket = store.get_ticket(other)
    assert queue == "general" and other_ticket is not None and other_ticket.customer_id != cid


def test_tags_on_a_customer_still_in_redis_route_its_next_message(rt: Runtime) -> None:
    """The CRM writes tags to the Redis customer hash too: no PostgreSQL round trip needed."""
    store = rt.store
    _, first, _ = one(rt, email("a1@example.com", "hello", sender="nora@example.com"))
    ticket = store.get_ticket(first)
    assert ticket is not None
    store.r.hset(store.key("customer", ticket.customer_id), "tags", '["VIP"]')
    outcome, second, queue = one(rt, email("a2@example.com", "again", sender="nora@example.com"))
    assert (outcome, queue) == ("opened", "vip")  # tags fold as the rules' do
    again = store.get_ticket(second)
    assert again is not None and again.customer_id == ticket.customer_id


def test_an_identity_of_a_merged_customer_finds_the_one_it_was_merged_into(
    rt: Runtime, records: Records
) -> None:
    with records.connection() as conn:
        seed_customer(conn, "C-00000900", ["email:keep@example.com"], tags=["vip"])
        seed_customer(conn, "C-00000901", ["phone:+966500000001"], merged_into="C-00000900")
        seed_customer(conn, "C-00000902", ["email:gone@example.com"])
        conn.execute("UPDATE customers SET erased_at = now() WHERE id = 'C-00000902'")
    outcome, tid, queue = one(rt, email("x1@example.com", "hi", sender="keep@example.com"))
    ticket = rt.store.get_ticket(tid)
    assert (outcome, queue) == ("opened", "vip")
    assert ticket is not None and ticket.customer_id == "C-00000900"
    # an erased customer's person starts afresh
    _, tid, queue = one(rt, email("x2@example.com", "hi", sender="gone@example.com"))
    ticket = rt.store.get_ticket(tid)
    assert queue == "general" and ticket is not None and ticket.customer_id != "C-00000902"
    # the merged one: found by its old identity, loaded as the customer it became
    store = rt.store
    known = rt.known.look([_phone_inbound("+966500000001")])
    (customer,) = known.customers.values()
    assert customer.id == "C-00000900" and customer.tags == ["vip"]
    assert store.r.hget(store.key("identity"), "phone:+966500000001") == "C-00000900"


def _phone_inbound(phone: str) -> Any:
    from omnidesk.model import Author, Channel, Identity, IdentityKind, Inbound

    return Inbound(
        channel=Channel.WHATSAPP,
        account="wa",
        external_id="wamid.1",
        received_at=datetime.now(UTC),
        author=Author(identities=[Identity(kind=IdentityKind.PHONE, value=phone)]),
        text="hello",
    )


def test_a_message_postgresql_records_is_not_taken_in_twice(
    rt: Runtime, records: Records, tmp_path: Path
) -> None:
    """Past Redis's dedupe window (the ticket archived, its `seen` entries gone), a
    redelivered message is known by PostgreSQL's unique (channel, account, external_id)."""
    store = rt.store
    raw = email("dup@example.com", "hello", sender="huda@example.com")
    outcome, first, _ = one(rt, raw)
    assert outcome == "opened"
    write(rt, records)
    archive(rt, tmp_path, first)
    assert not store.r.hexists(store.key("seen"), "email:care:<dup@example.com>")
    before = store.counts()["stats"]
    fresh = email("new@example.com", "other", sender="huda@example.com")
    report = rt.process([raw, fresh, raw])
    assert [(r.outcome, r.ticket_id) for r in report.results][::2] == [("duplicate", first)] * 2
    assert report.results[1].outcome == "opened"
    after = store.counts()["stats"]
    assert after["duplicates"] - before.get("duplicates", 0) == 2
    assert after["opened"] - before["opened"] == 1
    assert store.ticket_count() == 1  # only the fresh one is in Redis


def test_with_postgresql_down_intake_goes_on_and_counts_what_it_could_not_check(
    prefix: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    down = Records(DOWN_URL)
    rt = Runtime.for_service(config(prefix, tmp_path / "state"), records=down)
    caplog.set_level(logging.WARNING, logger="omnidesk.known")
    first = rt.process(
        [email("d1@example.com", "hi", sender="a@example.com"),
         email("d2@example.com", "hi", sender="b@example.com")]
    )  # fmt: skip
    second = rt.process([email("d3@example.com", "hi", sender="c@example.com")])
    assert first.outcomes["opened"] == 2 and second.outcomes["opened"] == 1
    stats = rt.store.counts()["stats"]
    assert stats["records_lookup_skipped"] == 3
    warnings = [r for r in caplog.records if "PostgreSQL lookups skipped" in r.getMessage()]
    assert len(warnings) == 1  # one per outage, not one per batch
    # a customer Redis still holds is found all the same
    again = rt.process([email("d4@example.com", "hi", sender="a@example.com")])
    (result,) = again.results
    tickets = {t.customer_id for t in rt.store.list_tickets()}
    assert result.outcome == "opened" and len(tickets) == 3
    with pytest.raises(RecordsUnavailable):
        evict_customers(rt.store, down, ["C-00000001"])
    down.close()


def test_a_runtime_without_records_takes_messages_in_on_redis_alone(runtime: Runtime) -> None:
    """`Runtime.from_config` without records (offline tools, tests): nothing is asked of
    PostgreSQL and nothing is counted as skipped."""
    report = runtime.process([email("r1@example.com", "hi", sender="z@example.com")])
    assert report.outcomes["opened"] == 1
    assert "records_lookup_skipped" not in runtime.store.counts()["stats"]


def test_eviction_keeps_what_postgresql_does_not_fully_hold_or_a_message_just_found(
    rt: Runtime, records: Records, tmp_path: Path
) -> None:
    store = rt.store
    ids = {}
    for name in ("full", "partial", "unrecorded", "recent"):
        _, tid, _ = one(rt, email(f"{name}@m.example", "hi", sender=f"{name}@example.com"))
        ticket = store.get_ticket(tid)
        assert ticket is not None
        ids[name] = ticket.customer_id
        archive(rt, tmp_path, tid)
    # "partial" got a phone in Redis that PostgreSQL has not had yet
    store.r.hset(store.key("identity"), "phone:+966511111111", ids["partial"])
    store.r.sadd(store.key("customer", ids["partial"], "ids"), "phone:+966511111111")
    with records.connection() as conn:  # the writer recorded them all: forget one
        conn.execute("DELETE FROM identities WHERE customer_id = %s", (ids["unrecorded"],))
        conn.execute("DELETE FROM customers WHERE id = %s", (ids["unrecorded"],))
    # a message from "recent" is being taken in: the pre-intake step has just found it
    rt.known.look([_email_inbound("recent@example.com")])
    evicted = evict_customers(store, records, [*ids.values(), "C-99999999"])
    assert evicted == [ids["full"]]
    assert store.get_customer(ids["full"]) is None
    for name in ("partial", "unrecorded", "recent"):
        assert store.get_customer(ids[name]) is not None, name
    assert store.r.hget(store.key("identity"), "email:partial@example.com") == ids["partial"]
    assert store.counts()["stats"]["customers_evicted"] == 1
    # past the grace, the recent one goes too; the others still stay
    later = evict_customers(store, records, ids.values(), grace=timedelta(0))
    assert later == [ids["recent"]]


def _email_inbound(address: str) -> Any:
    from omnidesk.model import Author, Channel, Identity, IdentityKind, Inbound

    return Inbound(
        channel=Channel.EMAIL,
        account="care",
        external_id=f"<look-{address}>",
        received_at=datetime.now(UTC),
        author=Author(identities=[Identity(kind=IdentityKind.EMAIL, value=address)]),
        text="hello",
    )


def test_the_gate_warns_once_per_outage_and_asks_again_once_postgresql_answers(
    records: Records, caplog: pytest.LogCaptureFixture
) -> None:
    from omnidesk.known import RecordsGate

    down = Records(DOWN_URL)
    gate = RecordsGate(down, retry_s=0)
    caplog.set_level(logging.WARNING, logger="omnidesk.known")
    ask = lambda conn: conn.execute("SELECT 1").fetchone()[0]  # noqa: E731
    assert gate.run(ask) == (False, None)
    assert gate.run(ask) == (False, None)
    gate.records = records  # PostgreSQL is back (as when it restarts on the same address)
    assert gate.run(ask) == (True, 1)
    messages = [r.getMessage() for r in caplog.records]
    assert sum("lookups skipped" in m for m in messages) == 1
    assert sum("answers again" in m for m in messages) == 1
    held = RecordsGate(down, retry_s=60)
    assert held.run(ask) == (False, None)
    started = datetime.now(UTC)
    assert held.run(ask) == (False, None)  # within retry_s: not even a probe
    assert datetime.now(UTC) - started < timedelta(milliseconds=50)
    down.close()
