"""A web form's e-mail and phone are what anyone typed: they find a customer but never join
one that exists, and a ticket's status and replies go to the contacts it came in with only
(real Redis and PostgreSQL)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

from omnidesk.db.evict import Eviction
from omnidesk.db.records import Records
from omnidesk.db.writer import RecordWriter
from omnidesk.model import Identity, IdentityKind
from omnidesk.outbound import outbound_for
from omnidesk.runtime import Runtime
from omnidesk.ticket_status import TicketStatus
from tests.storekit import config_for, web

VICTIM, ATTACKER, PHONE = "victim@example.sa", "attacker@evil.example", "0551234567"


def test_a_strangers_email_beside_a_victims_phone_gets_nothing_of_the_victims(
    prefix: str, tmp_path: Path, pg_url: str
) -> None:
    loaded = config_for(prefix, tmp_path / "state")
    records = Records(pg_url)
    runtime = Runtime.for_service(loaded, records=records)
    store = runtime.store
    lookup = TicketStatus(store, dict(loaded.data.queues), records)
    try:
        victim = runtime.process([web("سجلي التجاري موقوف", email=VICTIM, phone=PHONE)])
        attack = runtime.process([web("أين طلبي؟", email=ATTACKER, phone=PHONE)])
        (v,), (a,) = victim.results, attack.results
        assert v.ticket_id and a.ticket_id and v.customer_id

        # the attacker's e-mail joined nobody: its own customer, the victim's untouched
        assert a.customer_id != v.customer_id
        owner = store.get_customer(v.customer_id)
        assert owner is not None
        assert {i.key for i in owner.identities} == {f"email:{VICTIM}", "phone:+966551234567"}
        assert store.r.hget(store.key("identity"), f"email:{ATTACKER}") == a.customer_id

        # status: the victim's own contacts only
        assert lookup.for_contact(v.ticket_id, ATTACKER) is None
        assert lookup.for_contact(v.ticket_id, VICTIM) is not None
        assert lookup.for_contact(v.ticket_id, "+966 55 123 4567") is not None
        # replies, receipts and status answers: to the e-mail the ticket came in with
        victim_ticket = store.get_ticket(v.ticket_id)
        assert victim_ticket is not None
        assert outbound_for(store, victim_ticket, "ردنا").to == [
            Identity(kind=IdentityKind.EMAIL, value=VICTIM)
        ]

        # a phone alone finds the victim's customer, and still adds nothing to it
        alone = runtime.process([web("استفسار", phone=PHONE)]).results[0]
        assert alone.customer_id == v.customer_id
        assert lookup.for_contact(v.ticket_id, ATTACKER) is None
        alone_ticket = store.get_ticket(alone.ticket_id or "")
        assert alone_ticket is not None and outbound_for(store, alone_ticket, "x").to == []

        # a channel that vouches for its sender still links: the same customer next time
        again = runtime.process([web("متابعة", email=VICTIM)]).results[0]
        assert again.customer_id == v.customer_id

        # PostgreSQL keeps each ticket's contacts; once only it holds the ticket, the same
        store.set_status(v.ticket_id, "resolved", actor="amal")
        asyncio.run(RecordWriter(store, pg_url).drain())
        with psycopg.connect(pg_url) as conn:
            (contacts,) = conn.execute(
                "SELECT data->'contacts' FROM tickets WHERE id = %s", (v.ticket_id,)
            ).fetchone()
            (owned,) = conn.execute(
                "SELECT count(*) FROM identities WHERE value = %s AND customer_id = %s",
                (ATTACKER, v.customer_id),
            ).fetchone()
        assert contacts == [f"email:{VICTIM}", "phone:+966551234567"] and owned == 0
        eviction = Eviction(
            store, records, reopen_window=timedelta(seconds=1), customer_grace=timedelta(0)
        )
        assert v.ticket_id in eviction.run(datetime.now(UTC) + timedelta(seconds=5)).evicted
        assert store.get_ticket(v.ticket_id) is None
        assert lookup.for_contact(v.ticket_id, ATTACKER) is None
        assert lookup.for_contact(v.ticket_id, VICTIM) is not None
    finally:
        records.close()


def test_a_reply_goes_to_the_identity_the_ticket_came_in_on(prefix: str, tmp_path: Path) -> None:
    """A customer with two e-mail addresses (linked by a merge, say): the reply to the
    ticket one of them opened goes to that one only."""
    runtime = Runtime.for_service(config_for(prefix, tmp_path / "state"))
    store = runtime.store
    first = runtime.process([web("question", email="one@example.sa")]).results[0]
    cid = first.customer_id or ""
    store.r.hset(store.key("identity"), "email:two@example.sa", cid)
    store.r.sadd(store.key("customer", cid, "ids"), "email:two@example.sa")
    customer = store.get_customer(cid)
    assert customer is not None and len(customer.identities) == 2
    ticket = store.get_ticket(first.ticket_id or "")
    assert ticket is not None
    assert [i.value for i in outbound_for(store, ticket, "reply").to] == ["one@example.sa"]
