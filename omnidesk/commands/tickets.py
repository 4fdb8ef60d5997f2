"""`omnidesk tickets [--queue Q] [filters] [--before CURSOR]` (PostgreSQL when it holds
tickets, else Redis) and `omnidesk show TICKET`: a quick look from the shell."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from typing import Any

from omnidesk.configload import load_config
from omnidesk.errors import PermanentError
from omnidesk.model import to_builtins, utc_moment
from omnidesk.tables import format_table
from omnidesk.text import one_line_safe


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    list_p = sub.add_parser("tickets", help="list tickets, newest first")
    list_p.add_argument("--config")
    list_p.add_argument("--queue")
    list_p.add_argument("--status")
    list_p.add_argument("--customer", help="a customer id (C-...)")
    list_p.add_argument("--channel")
    list_p.add_argument("--tag")
    list_p.add_argument("--since", help="created on or after (ISO date or date-time, UTC)")
    list_p.add_argument("--until", help="created before (ISO date or date-time, UTC)")
    list_p.add_argument("--before", help="the cursor printed under the previous page")
    list_p.add_argument("--limit", type=int, default=50)
    list_p.add_argument("--json", action="store_true")
    list_p.set_defaults(func=list_tickets)

    show_p = sub.add_parser("show", help="one ticket with its messages")
    show_p.add_argument("ticket")
    show_p.add_argument("--config")
    show_p.add_argument("--json", action="store_true")
    show_p.add_argument(
        "--save-attachment", metavar="ID", help="write this attachment's bytes to --out"
    )
    show_p.add_argument("--out", metavar="FILE", help="where --save-attachment writes")
    show_p.set_defaults(func=show)


def open_store(config: str | None) -> Any:
    from omnidesk.store import Store

    service = load_config(config).data.service
    return Store.from_url(service.redis_url, service.key_prefix)


def moment(text: str | None, flag: str) -> datetime | None:
    if not text:
        return None
    try:
        return utc_moment(text)
    except ValueError:
        raise PermanentError(f"{flag} {text!r}: not an ISO date or date-time") from None


def page_of_tickets(args: argparse.Namespace) -> tuple[list[Any], str | None]:
    """From PostgreSQL when it holds tickets (every filter, keyset pages), else from Redis
    (queue and status only)."""
    from omnidesk.db.connect import RecordsUnavailable, connect, conninfo
    from omnidesk.db.tickets import (
        decode_cursor,
        encode_cursor,
        list_tickets,
        records_have_tickets,
    )

    service = load_config(args.config).data.service
    filters: dict[str, Any] = {
        "status": args.status, "customer": args.customer, "channel": args.channel,
        "tag": args.tag, "since": moment(args.since, "--since"),
        "until": moment(args.until, "--until"),
        "before": decode_cursor(args.before) if args.before else None,
    }  # fmt: skip
    try:
        with connect(conninfo(service)) as conn:
            if records_have_tickets(conn):
                page = list_tickets(conn, queue=args.queue, limit=args.limit, **filters)
                return page.tickets, encode_cursor(page.next) if page.next else None
    except RecordsUnavailable:
        pass
    extra = [k for k, v in filters.items() if v is not None and k != "status"]
    if extra:
        raise PermanentError(f"--{', --'.join(extra)}: these need the records (PostgreSQL)")
    store = open_store(args.config)
    return store.list_tickets(queue=args.queue, status=args.status, limit=args.limit), None


def list_tickets(args: argparse.Namespace) -> int:
    tickets, cursor = page_of_tickets(args)
    if args.json:
        for ticket in tickets:
            print(json.dumps(to_builtins(ticket), ensure_ascii=False, default=str))
        if cursor:
            print(f"next page: {next_page(args, cursor)}", file=sys.stderr)
        return 0
    print(
        format_table(
            ["ticket", "queue", "priority", "status", "channel", "subject"],
            [
                [
                    t.id,
                    t.queue,
                    t.priority.value,
                    t.status.value,
                    t.channel.value,
                    (t.subject or t.preview)[:60],
                ]
                for t in tickets
            ],
        )
    )
    if cursor:
        print(f"next page: {next_page(args, cursor)}")
    return 0


def recorded_ticket(config: str | None, ticket_id: str) -> tuple[Any, list[Any]] | None:
    """(Ticket, messages) of a ticket only PostgreSQL holds now; None when it has none."""
    from omnidesk.db.connect import RecordsUnavailable, connect, conninfo
    from omnidesk.db.ticketview import load_ticket

    try:
        with connect(conninfo(load_config(config).data.service)) as conn:
            cold = load_ticket(conn, ticket_id)
    except RecordsUnavailable:
        return None
    return (cold["ticket"], cold["messages"]) if cold else None


def save_attachment(args: argparse.Namespace, messages: list[Any]) -> int:
    """Write one attachment's bytes (as the API would serve them) to --out."""
    from pathlib import Path

    from omnidesk.agents.attachments import AttachmentFiles, parse_id
    from omnidesk.archive import Archive

    if not args.out:
        raise PermanentError("--save-attachment needs --out FILE")
    message_id, index = parse_id(args.save_attachment)
    message = next((m for m in messages if m.id == message_id), None)
    if message is None:
        raise PermanentError(f"no attachment {args.save_attachment} on {args.ticket}")
    service = load_config(args.config).data.service
    files = AttachmentFiles(Archive(service.state_dir))
    served = files.fetch(message, index, service.attachments.max_serve_bytes, download=True)
    Path(args.out).write_bytes(served.data)
    print(f"{len(served.data)} bytes written to {args.out} ({one_line_safe(served.filename)})")
    return 0


def next_page(args: argparse.Namespace, cursor: str) -> str:
    """The same `omnidesk tickets` command with `--before CURSOR`, ready to paste."""
    from omnidesk.commands import config_words, pasteable

    words = ["tickets", *config_words(args.config)]
    for name in ("queue", "status", "customer", "channel", "tag", "since", "until"):
        if (value := getattr(args, name)) is not None:
            words += [f"--{name}", str(value)]
    words += ["--limit", str(args.limit), *(["--json"] if args.json else [])]
    return pasteable(*words, "--before", cursor)


def show(args: argparse.Namespace) -> int:
    from omnidesk.agents.attachments import archived, describe
    from omnidesk.archive import Archive

    archive = Archive(load_config(args.config).data.service.state_dir)

    def attachments(m: Any) -> list[dict[str, Any]]:  # e-mail's from the archive only here
        return describe(ticket.id, m, m.channel.value == "email" and archived(archive, m))

    store = open_store(args.config)
    ticket = store.get_ticket(args.ticket)
    if ticket is not None:
        messages = store.ticket_messages(ticket.id)
    else:
        found = recorded_ticket(args.config, args.ticket)
        if found is None:
            raise PermanentError(f"no ticket {args.ticket}")
        ticket, messages = found
    messages = sorted(messages, key=lambda m: m.created_at)
    if args.save_attachment:
        return save_attachment(args, messages)
    if args.json:
        print(
            json.dumps(
                {
                    "ticket": to_builtins(ticket),
                    "messages": [
                        {**to_builtins(m), "attachments": attachments(m)} for m in messages
                    ],
                },
                ensure_ascii=False,
            )
        )
        return 0
    print(
        f"{ticket.id}  [{ticket.status.value}]  queue={ticket.queue}  "
        f"priority={ticket.priority.value}  sla={ticket.sla_policy}"
    )
    print(f"subject: {one_line_safe(ticket.subject or '')}")
    print(
        f"channel: {ticket.channel.value} ({ticket.account})  customer: {ticket.customer_id}  "
        f"tags: {', '.join(ticket.tags)}"
    )
    for msg in messages:
        print(
            f"\n--- {msg.direction.value} {msg.created_at:%Y-%m-%d %H:%M} {msg.author}"
            + (f" [{msg.delivery}]" if msg.delivery else "")
        )
        print(msg.text)
        for item in attachments(msg):
            print(attachment_line(item))
    return 0


def attachment_line(item: dict[str, Any]) -> str:
    """One attachment for the terminal: id, name, type, size, or why it cannot be had."""
    state = "" if item["available"] else f"  (not available: {item['reason']})"
    return one_line_safe(
        f"  [attachment {item['id']}] {item['filename'] or '-'}  {item['content_type']}"
        f"  {item['size']} bytes{state}"
    )
