"""`omnidesk db import-archive`: tickets archived out of a real Redis store (month files as
the gzip archive wrote them before eviction replaced it) land in PostgreSQL with their
messages (searchable), customer and identities; a second run, and a ticket the writer
already stored, change nothing."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

from omnidesk.archiving import TicketArchive
from omnidesk.cli import main
from omnidesk.model import to_builtins
from omnidesk.store import Store
from tests.storekit import web


def old_archive(store: Store, state: Path, ids: list[str], now: datetime) -> list[str]:
    """Month files as the gzip ticket archive wrote them (one JSON record per ticket)."""
    root = state / "archive"
    root.mkdir(parents=True, exist_ok=True)
    for tid in ids:
        ticket = store.get_ticket(tid)
        assert ticket is not None
        customer = store.get_customer(ticket.customer_id)
        record = {
            "ticket": to_builtins(ticket),
            "messages": to_builtins(store.ticket_messages(tid)),
            "customer": to_builtins(customer) if customer else None,
            "sla": None,
            "archived_at": now.isoformat(),
        }
        line = json.dumps(record, ensure_ascii=False) + "\n"
        with open(root / f"{ticket.created_at:%Y-%m}.jsonl.gz", "ab") as fh:
            fh.write(gzip.compress(line.encode()))
    return ids


def test_import_archive_loads_everything_once(runtime, tmp_path, pg_url, monkeypatch, capsys):
    store = runtime.store
    runtime.process([web("شكوى: المتجر رفض استرجاع المبلغ", email="huda@example.com")])
    runtime.process([web("commercial registration renewal", email="omar@example.com")])
    runtime.process([web("still open", email="lina@example.com")])
    tickets = sorted(store.list_tickets(limit=10), key=lambda t: t.id)
    for t in tickets[:2]:
        store.set_status(t.id, "closed", actor="sara")
    state = tmp_path / "state"
    later = datetime.now(UTC) + timedelta(days=100)
    moved = old_archive(store, state, [t.id for t in tickets[:2]], later)
    assert sorted(moved) == [tickets[0].id, tickets[1].id]
    assert [r["ticket"]["id"] for r in TicketArchive(state).records()] == moved

    with psycopg.connect(pg_url) as conn:  # the writer already stored one of them
        conn.execute(
            "INSERT INTO tickets (id, customer_id, channel, queue, status, created_at, "
            "updated_at, hot, synced_pos, subject) VALUES (%s, 'C-x', 'web', 'general', "
            "'closed', now(), now(), false, 42, 'from the writer')",
            (tickets[1].id,),
        )

    monkeypatch.setenv("OMNIDESK_DATABASE_URL", pg_url)
    argv = ["db", "import-archive", "--config", str(runtime.config.path), "--state-dir",
            str(state)]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "records 2" in out and "tickets 1" in out and "messages 2" in out, out
    assert "customers 2" in out and "identities 2" in out, out

    with psycopg.connect(pg_url) as conn:
        rows = dict(conn.execute("SELECT id, hot FROM tickets").fetchall())
        assert rows == {tickets[0].id: False, tickets[1].id: False}
        subject = conn.execute("SELECT subject FROM tickets WHERE id = %s", (tickets[1].id,))
        assert subject.fetchone()[0] == "from the writer"  # the writer's row is left alone
        hit = conn.execute(
            "SELECT ticket_id FROM messages WHERE search @@ to_tsquery('simple', %s)",
            ("استرجاع",),
        ).fetchall()
        assert hit == [(tickets[0].id,)]
        owner = conn.execute(
            "SELECT customer_id FROM identities WHERE kind = 'email' AND value = %s",
            ("huda@example.com",),
        ).fetchone()
        assert owner is not None and owner[0] == tickets[0].customer_id
        assert conn.execute("SELECT count(*) FROM messages").fetchone()[0] == 2

    assert main(argv) == 0  # again: nothing new
    again = capsys.readouterr().out
    assert "tickets 0, messages 0, customers 0, identities 0" in again, again
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT count(*) FROM messages").fetchone()[0] == 2


def test_import_archive_without_an_archive_folder_is_one_line(tmp_path, pg_url, monkeypatch,
                                                              capsys):  # fmt: skip
    monkeypatch.setenv("OMNIDESK_DATABASE_URL", pg_url)
    assert main(["db", "import-archive", "--state-dir", str(tmp_path / "nothing")]) == 2
    err = capsys.readouterr().err
    assert "no archive folder" in err and len(err.strip().splitlines()) == 1
