"""`omnidesk search QUERY [--queue Q ...]`: tickets in PostgreSQL, open or closed, by ticket
id, customer identity, CR number or Arabic/English text (see omnidesk.db.search). From the
shell it is the operator's view: every queue unless --queue narrows it."""

from __future__ import annotations

import argparse
import json

from omnidesk.configload import load_config
from omnidesk.tables import format_table


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("search", help="search tickets (open and closed) in PostgreSQL")
    p.add_argument("query", help="a ticket id, e-mail, phone, @handle, CR number or words")
    p.add_argument("--queue", action="append", help="only this queue (repeatable)")
    p.add_argument("--limit", type=int, default=20)
    p.add_argument("--json", action="store_true", help="one JSON object per hit")
    p.add_argument("--config", help="default: $OMNIDESK_CONFIG or ./queue_config.yaml")
    p.set_defaults(func=run)


def marked(snippet: str, highlights: list[tuple[int, int]]) -> str:
    """The snippet with each matched word in [brackets], for a terminal."""
    out, at = [], 0
    for start, end in highlights:
        out += [snippet[at:start], "[", snippet[start:end], "]"]
        at = end
    return "".join(out) + snippet[at:]


def run(args: argparse.Namespace) -> int:
    from omnidesk.db.connect import connect, conninfo, records_errors
    from omnidesk.db.search import check_query, search

    query = check_query(args.query)  # bad input before any connection
    info = conninfo(load_config(args.config).data.service)
    # one connection, tried once: PostgreSQL away is one line and exit 2, not a pool's retries
    with connect(info, autocommit=True) as conn, records_errors(info):
        hits = search(conn, query, queues=args.queue, limit=args.limit)
    if args.json:
        for hit in hits:
            print(json.dumps(hit.to_dict(), ensure_ascii=False))
        return 0
    if not hits:
        print("no tickets found")
        return 0
    rows = [
        [h.ticket_id, h.queue, h.status, h.matched, marked(h.snippet, h.highlights)]
        for h in hits
    ]  # fmt: skip
    print(format_table(["ticket", "queue", "status", "matched", "snippet"], rows))
    return 0
