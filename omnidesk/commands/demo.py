"""`omnidesk demo`: the whole flow on the bundled sample inbox.

Copies `examples/inbox/` into a fresh drop folder, runs the daemon on it under its
own key prefix until every payload is processed, and prints the tickets per queue
with their priority and SLA due times. Starts a private Redis when none answers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import tempfile
import time
from collections import Counter
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from psycopg.conninfo import conninfo_to_dict, make_conninfo

from omnidesk.commands import config_words, pasteable
from omnidesk.configload import KEY_PREFIX_ENV
from omnidesk.db.connect import URL_ENV
from omnidesk.errors import PermanentError, TransientError
from omnidesk.pipeline import queue_name
from omnidesk.service import Daemon, DaemonOptions
from omnidesk.tables import format_table

DEMO_PREFIX = "od-demo"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("demo", help="run the whole flow on the bundled sample inbox")
    parser.add_argument("--config", help="default: $OMNIDESK_CONFIG or ./queue_config.yaml")
    parser.add_argument("--inbox", default="examples/inbox", help="the sample payloads")
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    inbox = Path(args.inbox)
    samples = (
        sorted(p for p in inbox.iterdir() if p.is_file() and not p.name.startswith("."))
        if inbox.is_dir()
        else []
    )
    if not samples:
        raise PermanentError(f"no sample payloads in {inbox} (run from the project folder)")
    return asyncio.run(_demo(args, samples))


async def _demo(args: argparse.Namespace, samples: list[Path]) -> int:
    drop = Path(tempfile.mkdtemp(prefix="omnidesk-demo-"))
    try:
        (drop / "new").mkdir()
        for sample in samples:
            shutil.copy(sample, drop / "new" / sample.name)
        options = DaemonOptions(
            config=args.config, workers=2, http=False, embedded_redis=True, key_prefix=DEMO_PREFIX
        )
        options.database_url = await asyncio.to_thread(_fresh_demo_database, args.config)
        daemon = Daemon(options)
        daemon.loaded.data.connectors.clear()
        daemon.loaded.data.reports.clear()  # a demo e-mails nobody
        daemon.loaded.data.connectors.append(
            # outbox: the receipts are written as files, as a feeder of the folder sends them
            {"name": "demo-inbox", "kind": "maildir", "path": str(drop), "poll_interval": 0.2,
             "outbox": True}
        )  # fmt: skip
        await daemon.initialize()
        store = daemon.runtime.store
        await asyncio.to_thread(store.delete_all)  # a demo starts from nothing
        await daemon.start()
        try:
            await _wait_until_processed(daemon, drop, len(samples), args.timeout)
            print(_report(daemon, len(samples)))
            print(await _receipts(daemon, drop))
            print(await _recorded(daemon, options.database_url, args.timeout))
            print(_where_to_look(args.config, options.database_url, daemon))
        finally:
            await daemon.stop()
            await daemon.shutdown()
    finally:
        shutil.rmtree(drop, ignore_errors=True)
    return 0


async def _wait_until_processed(daemon: Daemon, drop: Path, total: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    broker = daemon.pipeline.broker
    while time.monotonic() < deadline:
        left = list((drop / "new").iterdir())
        if not left:
            # every file handed over: wait until the ingest queue is drained too
            remaining_ms = int(max(0.1, deadline - time.monotonic()) * 1000)
            await asyncio.to_thread(partial(broker.join, "ingest", timeout=remaining_ms))
            return
        await asyncio.sleep(0.1)
    raise TransientError(f"demo: not every payload was processed within {timeout:.0f}s")


async def _receipts(daemon: Daemon, drop: Path) -> str:
    """What the customers heard back: the replies sent to the folder's outbox once the
    `deliver` queue is done, and the first one's line with its ticket number."""
    broker = daemon.pipeline.broker
    await asyncio.to_thread(partial(broker.join, queue_name(broker, "deliver"), timeout=30_000))
    sent = [
        json.loads(path.read_text("utf-8"))
        for path in sorted((drop / "outbox").glob("*.json"), key=lambda p: p.stat().st_mtime)
    ]
    # a receipt carries its ticket's number; the rest are other automatic answers (a guide's
    # excerpt to a chat question), sent in whatever order the deliveries finished
    receipts = [s for s in sent if s.get("ticket_id") and s["ticket_id"] in str(s.get("text"))]
    others = len(sent) - len(receipts)
    also = f"; {others} other automatic answers (guides' excerpts) went too" if others else ""
    if not receipts:
        return f"\nreceipts: none sent{also}"
    first = receipts[0]
    lines = [ln.strip() for ln in str(first.get("text") or "").splitlines() if ln.strip()]
    numbered = next(ln for ln in lines if first["ticket_id"] in ln)
    to = ", ".join(str(t.get("value")) for t in first.get("to") or [] if isinstance(t, dict))
    return (
        f"\nreceipts with the ticket number: {len(receipts)} sent to the demo folder's outbox"
        f" (a real channel sends them to the customer){also}; the first receipt, to {to}:\n  "
        + numbered[:100]
    )


def _report(daemon: Daemon, total: int) -> str:
    store = daemon.runtime.store
    counts: dict[str, Any] = store.counts()
    stats = counts["stats"]
    tickets = store.list_tickets(limit=10_000)
    by_queue = Counter(t.queue for t in tickets)
    rows = []
    dues = _due_times(store, [t.id for t in tickets])
    for ticket in sorted(tickets, key=lambda t: (t.queue, -t.priority.rank, t.id)):
        due = dues.get(ticket.id) or "-"
        rows.append(
            [
                ticket.queue,
                ticket.id,
                ticket.priority.value,
                ticket.status.value,
                ticket.channel.value,
                str(len(ticket.message_ids)),
                due,
                (ticket.subject or ticket.preview)[:48],
            ]
        )
    lines = [
        f"{total} sample payloads -> {len(tickets)} tickets in {len(by_queue)} queues; "
        f"follow-ups threaded: {sum(len(t.message_ids) - 1 for t in tickets)}, "
        "auto-replies ignored: "
        f"{stats.get('auto_ignored', 0) + stats.get('auto_attached', 0)}, "
        f"quarantined: {counts['quarantine']}",
        "",
        format_table(
            [
                "queue",
                "ticket",
                "priority",
                "status",
                "channel",
                "msgs",
                "SLA due (Riyadh)",
                "subject",
            ],
            rows,
        ),
        "",
        "tickets per queue: " + ", ".join(f"{q} {n}" for q, n in by_queue.most_common()),
    ]
    quarantined = daemon.runtime.quarantine.list()
    if quarantined:
        lines += ["", "quarantine (the commands at the end list it again, to retry or purge):"]
        lines += [f"  {i.id} {i.source}: {i.reason}: {i.error[:80]}" for i in quarantined]
    return "\n".join(lines)


def _where_to_look(config: str | None, database: str | None, daemon: Daemon) -> str:
    """The demo's data is kept apart from the operator's own (Redis keys under its own
    prefix, its own database), so plain `omnidesk tickets` shows none of it: say so, and
    print the commands that do, ready to paste."""
    env = {KEY_PREFIX_ENV: DEMO_PREFIX}
    if database is not None:
        env[URL_ENV] = _printable_url(database)
    config_opts = config_words(config)
    lines = [
        "",
        f"The demo's data is kept apart from your own (Redis keys under the prefix "
        f"{DEMO_PREFIX}"
        + (f", the database {conninfo_to_dict(database).get('dbname')}" if database else "")
        + "): `omnidesk tickets` alone does not show it. To look at it:",
        "  " + pasteable("tickets", *config_opts, env=env),
        "  " + pasteable("quarantine", *config_opts, "list", env=env),
    ]
    if daemon._embedded is not None:
        lines.append(
            "(No Redis answered, so the demo ran on a private one that stopped with it: the "
            "quarantine list is gone"
            + ("; the tickets are in PostgreSQL.)" if database else ", and the tickets too.)")
        )
    return "\n".join(lines)


def _printable_url(database: str) -> str:
    """The demo database's connection string without the password (the command reads it
    from the environment as every command does) and without the options `conninfo` adds."""
    added = {"password", "connect_timeout", "keepalives", "keepalives_idle",
             "keepalives_interval", "keepalives_count", "tcp_user_timeout"}  # fmt: skip
    params = {k: v for k, v in conninfo_to_dict(database).items() if k not in added}
    return make_conninfo("", **params)


def _fresh_demo_database(config: str | None) -> str | None:
    """The demo's own database beside the configured one (``<name>_demo``), emptied first so
    its ticket numbers do not meet an earlier run's, and built again with its schema before
    the daemon starts (else intake's first lookups meet no database and warn); None when
    PostgreSQL does not answer (the demo then runs on Redis alone and says how to point it
    at one)."""
    from omnidesk.configload import load_config
    from omnidesk.db.connect import RecordsUnavailable, connect, conninfo
    from omnidesk.db.migrate import upgrade

    info = conninfo(load_config(config).data.service)
    name = f"{conninfo_to_dict(info).get('dbname') or 'omnidesk'}_demo"
    try:
        with connect(make_conninfo(info, dbname="postgres"), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    except RecordsUnavailable:
        return None
    url = make_conninfo(info, dbname=name)
    upgrade(url)
    return url


async def _recorded(daemon: Daemon, database: str | None, timeout: float) -> str:
    """Wait until the records writer has caught up, then count what PostgreSQL holds."""
    from omnidesk.db.connect import describe

    if database is None:
        return (
            "\nPostgreSQL did not answer, so nothing was recorded: set service.database_url "
            "(or $OMNIDESK_DATABASE_URL) to a server you can reach, e.g. "
            "postgresql://postgres@127.0.0.1:5432/omnidesk"
        )
    deadline = time.monotonic() + timeout
    writer = daemon.writer
    while time.monotonic() < deadline:
        if writer.state.up and await asyncio.to_thread(writer.backlog) == 0:
            break
        await asyncio.sleep(0.2)
    with daemon.records.connection() as conn:
        tickets, messages, customers, events = conn.execute(
            "SELECT (SELECT count(*) FROM tickets), (SELECT count(*) FROM messages),"
            " (SELECT count(*) FROM customers), (SELECT count(*) FROM events)"
        ).fetchone()
    return (
        f"\nrecorded in PostgreSQL ({describe(database)}): {tickets} tickets, {messages} "
        f"messages, {customers} customers, {events} events"
    )


def _due_times(store: Any, ticket_ids: list[str]) -> dict[str, str]:
    """The next SLA due time the SLA engine set on each ticket, in Riyadh time."""
    pipe = store.r.pipeline(transaction=False)
    for tid in ticket_ids:
        pipe.hget(store.keys.ticket(tid), "due_at")
    riyadh = ZoneInfo("Asia/Riyadh")
    return {
        tid: datetime.fromisoformat(due).astimezone(riyadh).strftime("%a %d %b %H:%M")
        for tid, due in zip(ticket_ids, pipe.execute(), strict=True)
        if due
    }
