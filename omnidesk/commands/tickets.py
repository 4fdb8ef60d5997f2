"""`omnidesk tickets [--queue Q]` and `omnidesk show TICKET`: a quick look from the shell."""

from __future__ import annotations

import argparse
import json
from typing import Any

from omnidesk.configload import load_config
from omnidesk.errors import PermanentError
from omnidesk.model import to_builtins
from omnidesk.text import one_line_safe


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    list_p = sub.add_parser("tickets", help="list tickets, newest first")
    list_p.add_argument("--config")
    list_p.add_argument("--queue")
    list_p.add_argument("--status")
    list_p.add_argument("--limit", type=int, default=50)
    list_p.add_argument("--json", action="store_true")
    list_p.set_defaults(func=list_tickets)

    show_p = sub.add_parser("show", help="one ticket with its messages")
    show_p.add_argument("ticket")
    show_p.add_argument("--config")
    show_p.add_argument("--json", action="store_true")
    show_p.set_defaults(func=show)


def open_store(config: str | None) -> Any:
    from omnidesk.store import Store

    service = load_config(config).data.service
    return Store.from_url(service.redis_url, service.key_prefix)


def list_tickets(args: argparse.Namespace) -> int:
    store = open_store(args.config)
    tickets = store.list_tickets(queue=args.queue, status=args.status, limit=args.limit)
    if args.json:
        for ticket in tickets:
            print(json.dumps(to_builtins(ticket), ensure_ascii=False))
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
    return 0


def show(args: argparse.Namespace) -> int:
    store = open_store(args.config)
    ticket = store.get_ticket(args.ticket)
    if ticket is None:
        raise PermanentError(f"no ticket {args.ticket}")
    messages = store.ticket_messages(ticket.id)
    if args.json:
        print(
            json.dumps(
                {"ticket": to_builtins(ticket), "messages": to_builtins(messages)},
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
    return 0


def format_table(header: list[str], rows: list[list[str]]) -> str:
    """A plain text table; widths count characters, so Arabic columns line up as text.
    Each cell is one line, its control characters shown as ``\\uXXXX`` (one_line_safe)."""
    cells = [header, *[[one_line_safe(str(c)) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
