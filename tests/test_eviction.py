"""Eviction on the real Redis and PostgreSQL: a done ticket that PostgreSQL holds leaves
Redis whole (no key or entry names it or its messages, thread keys included), its row is
marked cold with every message, and a new message on its old thread opens a new ticket; a
ticket whose latest change is not written yet, or that may still reopen, stays."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from omnidesk.cli import main
from omnidesk.db.evict import Eviction
from omnidesk.db.records import Records
from omnidesk.db.writer import RecordWriter
from omnidesk.model import Direction, Outbound
from omnidesk.runtime import Runtime
from omnidesk.sla.engine import SlaClocks
from omnidesk.store import Store, run_script
from tests.storekit import email, telegram, web, write_config

WINDOW = timedelta(seconds=2)


def rows(url: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql, params).fetchall()


def drain(store: Store, url: str) -> None:
    asyncio.run(RecordWriter(store, url).drain())


def later() -> datetime:
    """A moment past the reopen window (tests do not wait it out)."""
    return datetime.now(UTC) + WINDOW + timedelta(seconds=1)


def mentions(store: Store, needles: Iterable[str]) -> list[str]:
    """Every key under the prefix whose name, fields, members or values name a needle."""
    needles = [n for n in needles if n]
    r, found = store.r, []
    for key in r.scan_iter(match=f"{store.prefix}:*", count=1000):
        kind = r.type(key)
        if kind == "hash":
            text = [x for kv in r.hgetall(key).items() for x in kv]
        elif kind == "zset":
            text = r.zrange(key, 0, -1)
        elif kind == "set":
            text = list(r.smembers(key))
        elif kind == "list":
            text = r.lrange(key, 0, -1)
        elif kind == "stream":
            text = [v for _, f in r.xrange(key) for v in f.values()]
        else:
            text = [r.get(key) or ""] if kind == "string" else []
        blob = "\n".join([key, *text])
        found += [f"{key}: {n}" for n in needles if n in blob]
    return found


def test_a_resolved_ticket_leaves_redis_whole_after_its_window(
    runtime: Runtime, pg_url: str
) -> None:
    store = runtime.store
    first = runtime.process([email("m1@example.com", "My trademark application is stuck")])
    tid = first.results[0].ticket_id
    other = runtime.process([web("commercial registration renewal", email="omar@example.sa")])
    kept = other.results[0].ticket_id
    follow = runtime.process([email("m2@example.com", "Any news?", in_reply_to="m1@example.com")])
    assert follow.results[0].ticket_id == tid
    reply = store.add_outbound_message(
        Outbound(id="M-reply-1", ticket_id=tid, channel="email", account="care", text="On it"),
        author="agent1",
    )
    store.set_delivery(reply.id, "sent")
    store.add_outbound_message(
        Outbound(id="M-note-1", ticket_id=tid, channel="email", account="care", text="checked"),
        author="agent1",
        direction=Direction.NOTE,
    )
    ticket = store.get_ticket(tid)
    assert ticket is not None
    mids, cid = ticket.message_ids, ticket.customer_id
    assert len(mids) == 4
    store.set_status(tid, "resolved", actor="agent1")
    # the thread keys the messages added, which forget.lua used to leave behind
    assert store.r.hget(store.key("thread"), "email:<m2@example.com>") == tid
    drain(store, pg_url)
    eviction = Eviction(store, Records(pg_url), reopen_window=WINDOW, customer_grace=timedelta(0))

    assert eviction.run().evicted == []  # within its reopen window: a reply reopens it
    result = eviction.run(later())
    assert result.evicted == [tid]
    assert result.customers == [cid]
    assert mentions(store, [tid, *mids, "m1@example.com", "m2@example.com", cid]) == []
    assert store.get_ticket(kept) is not None  # still open: stays
    assert rows(pg_url, "SELECT hot, status FROM tickets WHERE id = %s", tid) == [
        (False, "resolved")
    ]
    assert rows(pg_url, "SELECT count(*) FROM messages WHERE ticket_id = %s", tid) == [(4,)]
    assert rows(pg_url, "SELECT hot FROM tickets WHERE id = %s", kept) == [(True,)]
    assert eviction.run(later()).evicted == []  # nothing left to do

    again = runtime.process(
        [email("m3@example.com", "Still stuck", in_reply_to="m2@example.com")]
    ).results[0]
    assert again.outcome == "opened" and again.ticket_id not in (None, tid)


def test_a_ticket_whose_last_change_is_not_written_stays(runtime: Runtime, pg_url: str) -> None:
    store = runtime.store
    tid = runtime.process([web("شكوى على محل", email="huda@example.sa")]).results[0].ticket_id
    assert tid is not None
    store.set_status(tid, "closed", actor="sara")
    drain(store, pg_url)
    # a note after the drain: PostgreSQL's row is closed and old, but not up to date
    store.add_outbound_message(
        Outbound(
            id="M-late-note", ticket_id=tid, channel="web", account="site", text="for the record"
        ),
        author="sara",
        direction=Direction.NOTE,
    )
    eviction = Eviction(store, Records(pg_url), reopen_window=WINDOW)
    result = eviction.run(later())
    assert result.evicted == [] and result.skipped == [tid]
    assert store.get_ticket(tid) is not None
    assert rows(pg_url, "SELECT hot FROM tickets WHERE id = %s", tid) == [(True,)]
    drain(store, pg_url)
    assert eviction.run(later()).evicted == [tid]
    assert rows(
        pg_url, "SELECT body FROM messages WHERE ticket_id = %s AND direction = 'note'", tid
    ) == [("for the record",)]


def test_a_ticket_reopened_since_postgresql_saw_it_stays(runtime: Runtime, pg_url: str) -> None:
    """PostgreSQL's row says resolved long ago; Redis says it was reopened (written or not):
    only Redis's state decides."""
    store = runtime.store
    tid = runtime.process([email("r1@example.com", "Question")]).results[0].ticket_id
    assert tid is not None
    store.set_status(tid, "resolved")
    drain(store, pg_url)
    store.r.hset(store.key("ticket", tid), "status", "open")  # as if reopened, no event
    assert Eviction(store, Records(pg_url), reopen_window=WINDOW).run(later()).skipped == [tid]
    assert store.get_ticket(tid) is not None


def test_telegram_edits_and_chat_keys_leave_with_the_ticket(runtime: Runtime, pg_url: str) -> None:
    store = runtime.store
    opened = runtime.process([telegram(1, 555, 10, "مرحبا، عندي سؤال عن السجل")]).results[0]
    tid = opened.ticket_id
    assert tid is not None
    edit = runtime.process([telegram(2, 555, 10, "سؤال عن السجل 992", edit_date=1_780_000_100)])
    assert edit.results[0].outcome == "edited"
    runtime.process([telegram(3, 555, 11, "وشكرا")])
    mids = store.get_ticket(tid).message_ids  # type: ignore[union-attr]
    store.set_status(tid, "closed")
    drain(store, pg_url)
    assert Eviction(store, Records(pg_url), reopen_window=WINDOW).run().evicted == [tid]
    assert mentions(store, [tid, *mids, "telegram:bot:10", "telegram:bot:11"]) == []
    new = runtime.process([telegram(4, 555, 12, "سؤال جديد")]).results[0]
    assert new.outcome == "opened" and new.ticket_id != tid


def test_the_sla_record_and_counts_leave_with_the_ticket(runtime: Runtime, pg_url: str) -> None:
    store = runtime.store
    tid = runtime.process([web("شكوى: المتجر رفض", email="h@example.com")]).results[0].ticket_id
    ticket = store.get_ticket(tid)  # type: ignore[arg-type]
    assert ticket is not None
    clocks = SlaClocks(store, runtime.config.data)  # type: ignore[union-attr]
    assert clocks.on_opened(ticket) is not None
    assert clocks.counts()["by_queue"][ticket.queue]["running"] == 1
    store.set_status(ticket.id, "closed")  # no SLA hook here: its clocks still run
    drain(store, pg_url)
    assert Eviction(store, Records(pg_url), reopen_window=WINDOW).run().evicted == [ticket.id]
    assert clocks.state(ticket.id) is None
    assert clocks.counts()["by_queue"][ticket.queue]["running"] == 0


def test_an_auto_reply_that_opened_nothing_is_remembered_for_the_dedupe_window(
    runtime: Runtime,
) -> None:
    store = runtime.store
    runtime.intake.dedupe_window = timedelta(days=3)
    ooo = email("ooo@example.com", "Out of office", headers={"Auto-Submitted": "auto-replied"})
    assert runtime.process([ooo]).results[0].outcome == "auto_ignored"
    assert runtime.process([ooo]).results[0].outcome == "duplicate"
    assert store.r.hlen(store.key("seen")) == 0  # no entry that lives forever
    (key,) = store.r.keys(store.key("seen", "auto", "*"))
    assert 3 * 86400 - 60 < store.r.ttl(key) <= 3 * 86400


def test_archive_cli_runs_the_eviction_and_search_moved(
    runtime: Runtime, prefix: str, pg_url: str, tmp_path, capsys, monkeypatch
) -> None:
    store = runtime.store
    tid = runtime.process([web("complaint about a shop", email="l@example.com")]).results[0]
    store.set_status(tid.ticket_id, "closed")  # type: ignore[arg-type]
    drain(store, pg_url)
    config = write_config(prefix, tmp_path / "state", tmp_path / "config.yaml")
    monkeypatch.setenv("OMNIDESK_DATABASE_URL", pg_url)
    assert main(["archive", "run", "--config", str(config), "--dry-run"]) == 0
    assert tid.ticket_id in capsys.readouterr().out
    assert main(["archive", "run", "--config", str(config)]) == 0
    assert "evicted 1 tickets" in capsys.readouterr().out
    assert store.get_ticket(tid.ticket_id) is None  # type: ignore[arg-type]
    assert main(["archive", "search", "--config", str(config), "--text", "shop"]) == 2
    assert "omnidesk search" in capsys.readouterr().err


def test_a_merged_pair_leaves_no_thread_key_behind(runtime: Runtime, pg_url: str) -> None:
    from omnidesk.agents.assign import scripts

    store = runtime.store
    first = runtime.process([email("a1@example.com", "First question")]).results[0].ticket_id
    second = runtime.process([email("b1@example.com", "Second question")]).results[0].ticket_id
    assert first and second and first != second
    now = datetime.now(UTC)
    merged = run_script(
        scripts(store)["merge"], store.prefix, src=first, dst=second, actor="sara",
        now_ms=int(now.timestamp() * 1000), now_iso=now.isoformat(),
    )  # fmt: skip
    assert merged[0] != "error"
    assert store.r.hget(store.key("thread"), f"ticket:{first}") == second
    mids = store.get_ticket(second).message_ids  # type: ignore[union-attr]
    store.set_status(second, "closed")
    drain(store, pg_url)
    evicted = Eviction(store, Records(pg_url), reopen_window=WINDOW).run().evicted
    assert sorted(evicted) == sorted([first, second])
    assert mentions(store, [first, second, *mids, "a1@example.com", "b1@example.com"]) == []


def test_a_customer_kept_by_its_grace_leaves_on_a_later_pass(runtime: Runtime, pg_url: str) -> None:
    """Its tickets are gone by then, so only the candidates set brings it back to mind."""
    store = runtime.store
    result = runtime.process([web("سؤال", email="g@example.sa")]).results[0]
    cid = result.customer_id
    store.set_status(result.ticket_id, "closed")  # type: ignore[arg-type]
    # the pre-intake step found this customer a moment ago (omnidesk.known stamps seen_ms)
    store.r.hset(store.key("customer", cid), "seen_ms", int(datetime.now(UTC).timestamp() * 1000))  # type: ignore[arg-type]
    drain(store, pg_url)
    records = Records(pg_url)
    first = Eviction(store, records, reopen_window=WINDOW, customer_grace=timedelta(hours=1)).run()
    assert first.evicted == [result.ticket_id] and first.customers == []
    assert store.get_customer(cid) is not None  # type: ignore[arg-type]
    assert store.r.smembers(store.key("evict", "customers")) == {cid}
    later = Eviction(store, records, reopen_window=WINDOW, customer_grace=timedelta(0)).run()
    assert later.evicted == [] and later.customers == [cid]
    assert store.get_customer(cid) is None  # type: ignore[arg-type]
    assert store.r.exists(store.key("evict", "customers")) == 0


def test_a_ticket_with_an_entry_set_aside_by_the_writer_stays(
    runtime: Runtime, pg_url: str
) -> None:
    """An entry the writer could not write is acknowledged but kept in P:records:failed for
    an operator: PostgreSQL does not hold that change, so the ticket stays in Redis."""
    store = runtime.store
    tid = runtime.process([web("شكوى", email="f@example.sa")]).results[0].ticket_id
    store.set_status(tid, "closed")  # type: ignore[arg-type]
    drain(store, pg_url)
    failed = {"fields": {"type": "noted", "ticket": tid}, "error": "bad row", "at": "now"}
    store.r.hset(store.key("records", "failed"), "1-1", json.dumps(failed))
    eviction = Eviction(store, Records(pg_url), reopen_window=WINDOW)
    assert eviction.run().skipped == [tid]
    store.r.delete(store.key("records", "failed"))  # an operator dealt with it
    assert eviction.run().evicted == [tid]
