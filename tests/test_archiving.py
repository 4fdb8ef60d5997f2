"""Archiving: a closed ticket moves out of Redis into the monthly gzip file, is found again
by id, customer and text, keeps its figures in the rollups, and open tickets stay."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta

from msgspec.structs import replace

from omnidesk.archiving import TicketArchive
from omnidesk.cli import main
from omnidesk.intake import Intake
from omnidesk.model import Author, Decision, Inbound
from omnidesk.reports.figures import read_raw
from omnidesk.reports.fold import Context
from omnidesk.reports.rollup import Rollups
from omnidesk.sweeper import SlaClocks
from tests.storekit import web, write_config


def test_archive_then_search_finds_the_ticket(runtime, tmp_path, capsys):
    store = runtime.store
    runtime.process([web("شكوى: المتجر رفض استرجاع المبلغ", email="huda@example.com")])
    runtime.process([web("commercial registration renewal", email="omar@example.com")])
    closed, kept = sorted(store.list_tickets(limit=10), key=lambda t: t.id)
    store.set_status(closed.id, "closed", actor="sara")
    ctx = Context.from_config(runtime.config.data)
    Rollups(store, ctx).catch_up()
    today = datetime.now(ctx.tz).date()
    before = read_raw(store.r, store.prefix, today, today, {}, today=today)

    archive = TicketArchive(tmp_path / "state")
    later = datetime.now(UTC) + timedelta(days=100)
    assert archive.run(store, older_than_days=90, now=datetime.now(UTC)) == []  # too young
    assert archive.run(store, older_than_days=90, now=later) == [closed.id]
    assert store.get_ticket(closed.id) is None
    assert store.get_ticket(kept.id) is not None  # still open: stays hot
    month = closed.created_at.strftime("%Y-%m")
    with gzip.open(tmp_path / "state" / "archive" / f"{month}.jsonl.gz", "rt") as fh:
        assert closed.id in fh.read()

    assert [r["ticket"]["id"] for r in archive.search(ticket_id=closed.id)] == [closed.id]
    assert [r["ticket"]["id"] for r in archive.search(customer="huda@example.com")] == [closed.id]
    assert [r["ticket"]["id"] for r in archive.search(text="استرجاع")] == [closed.id]
    assert archive.search(text="renewal") == []
    # a second run appends a second gzip member; both stay readable, no duplicate results
    store.set_status(kept.id, "resolved")
    assert archive.run(store, older_than_days=90, now=later) == [kept.id]
    assert {r["ticket"]["id"] for r in archive.records()} == {closed.id, kept.id}
    assert len(archive.search(ticket_id=kept.id)) == 1

    # the figures stay in the rollups
    Rollups(store, ctx).catch_up()
    after = read_raw(store.r, store.prefix, today, today, {}, today=today)
    assert after.all["opened"] == before.all["opened"] == 2

    # nothing is deleted before the retention ends
    assert archive.prune(retention_days=365, now=later) == []
    assert len(archive.months()) == 1


def test_archive_cli_search(runtime, prefix, tmp_path, capsys):
    runtime.process([web("complaint about a shop in Jeddah", email="lina@example.com")])
    ticket = runtime.store.list_tickets(limit=1)[0]
    runtime.store.set_status(ticket.id, "closed")
    config = write_config(prefix, tmp_path / "state", tmp_path / "config.yaml")
    assert main(["archive", "run", "--config", str(config), "--older-than", "0"]) == 0
    assert "archived 1 tickets" in capsys.readouterr().out
    assert main(["archive", "search", "--config", str(config), "--text", "jeddah"]) == 0
    assert ticket.id in capsys.readouterr().out
    assert main(["archive", "search", "--config", str(config), "--id", "OD-1999-000001"]) == 1


def test_archiving_takes_the_sla_clocks_along(runtime, tmp_path):
    """The SLA record leaves Redis with the ticket (into the archive line), and a ticket
    closed without the SLA hook stops counting in /metrics' per-queue standings."""
    store = runtime.store
    runtime.process([web("شكوى: المتجر رفض استرجاع المبلغ", email="huda@example.com")])
    ticket = store.list_tickets(limit=1)[0]
    clocks = SlaClocks(store, runtime.config.data)
    opened = clocks.on_opened(ticket)
    assert opened is not None and opened.clocks
    assert clocks.counts()["by_queue"][ticket.queue]["running"] == 1
    store.set_status(ticket.id, "closed")  # no SLA hook here: its clocks still run

    archive = TicketArchive(tmp_path / "state")
    later = datetime.now(UTC) + timedelta(days=100)
    assert archive.run(store, older_than_days=90, now=later) == [ticket.id]
    assert clocks.state(ticket.id) is None
    assert clocks.counts()["by_queue"][ticket.queue]["running"] == 0
    (record,) = archive.search(ticket_id=ticket.id)
    assert record["sla"]["policy"] == ticket.sla_policy
    assert set(record["sla"]["clocks"]) == set(opened.clocks)


def test_archiving_prunes_dedupe_entries_and_its_own_thread_keys(runtime, tmp_path):
    """The dedupe entries of an archived ticket's messages and the thread keys that still
    point to it leave Redis with it; a thread key that points to a newer ticket stays."""
    store = runtime.store
    form = web("first complaint", email="huda@example.com")
    double_click = replace(form, received_at=form.received_at + timedelta(milliseconds=5))
    runtime.process([form, double_click])  # each POST's own dedupe entry goes too
    runtime.process([web("second complaint", email="omar@example.com")])
    old, new = sorted(store.list_tickets(limit=10), key=lambda t: t.id)
    (message,) = store.ticket_messages(old.id)
    dedupe = f"{message.channel.value}:{old.account}:{message.external_id}"
    assert store.r.hget(store.key("seen"), dedupe) == message.id
    mine, taken = "web:form:a", "web:form:b"
    store.r.hset(store.key("thread"), mapping={mine: old.id, taken: new.id})
    store.r.hset(store.key("ticket", old.id), "thread_keys", json.dumps([mine, taken]))
    store.set_status(old.id, "closed")

    archive = TicketArchive(tmp_path / "state")
    later = datetime.now(UTC) + timedelta(days=100)
    assert archive.run(store, older_than_days=90, now=later) == [old.id]
    assert store.r.hget(store.key("seen"), dedupe) is None
    assert not [k for k in store.r.hkeys(store.key("seen")) if k.startswith(dedupe)]
    assert not store.r.exists(store.key("ticket", old.id, "posts"))
    assert store.r.hget(store.key("thread"), mine) is None
    assert store.r.hget(store.key("thread"), taken) == new.id
    assert store.r.hget(store.key("thread"), f"ticket:{old.id}") is None
    # an edit of a message whose ticket is gone comes in as a new message, not a script error
    store.r.hset(store.key("seen"), dedupe, message.id)  # as an edit's own entry keeps it
    edit = Inbound(
        channel=message.channel,
        account=old.account,
        external_id="edit-1",
        received_at=datetime.now(UTC),
        author=Author(name="Huda"),
        text="first complaint, edited",
        edit_of=message.external_id,
    )
    assert Intake(store)(edit, Decision(queue=new.queue)).outcome == "opened"
