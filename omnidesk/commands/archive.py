"""`omnidesk archive run|prune`: the eviction pass by hand (done tickets PostgreSQL holds
leave Redis, see omnidesk.db.evict), and deleting old gzip archive months (written before
PostgreSQL was the system of record). `archive search` is gone: `omnidesk search` finds
open and closed tickets alike in PostgreSQL."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from omnidesk.configload import load_config
from omnidesk.errors import PermanentError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("archive", help="evict done tickets from Redis; prune old archive files")
    verbs = p.add_subparsers(dest="verb", required=True, metavar="VERB")
    run_p = verbs.add_parser(
        "run", help="remove done tickets PostgreSQL holds from Redis (the eviction pass)"
    )
    run_p.add_argument("--dry-run", action="store_true", help="list the candidates only")
    run_p.set_defaults(func=run)
    search_p = verbs.add_parser("search", help="moved: use `omnidesk search`")
    for flag in ("--id", "--customer", "--text", "--limit"):  # the old ones: a clear answer
        search_p.add_argument(flag, help=argparse.SUPPRESS)
    search_p.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    search_p.set_defaults(func=search)
    prune_p = verbs.add_parser("prune", help="delete old gzip archive months past the retention")
    prune_p.set_defaults(func=prune)
    for q in (run_p, search_p, prune_p):
        q.add_argument("--config", help="default: $OMNIDESK_CONFIG or ./queue_config.yaml")


def run(args: argparse.Namespace) -> int:
    from omnidesk.db.evict import eviction_for
    from omnidesk.db.records import Records
    from omnidesk.store import Store

    service = load_config(args.config).data.service
    store = Store.from_url(service.redis_url, service.key_prefix)
    records = Records.for_service(service)
    eviction = eviction_for(store, records, service)
    try:
        if args.dry_run:
            with records.connection() as conn:
                ids = [tid for tid, _ in eviction.candidates(conn, datetime.now(UTC))]
            print(f"{len(ids)} done tickets are due to leave Redis: " + " ".join(ids[:50]))
            return 0
        result = eviction.run()
    finally:
        records.close()
    line = (
        f"evicted {len(result.evicted)} tickets and {len(result.customers)} customers from"
        f" redis; {len(result.skipped)} wait for the records writer"
    )
    if result.state != "ok":
        line += f" (writer {result.state}: nothing evicted)"
    print(line)
    return 0


def search(args: argparse.Namespace) -> int:
    raise PermanentError(
        "archive search is gone: `omnidesk search` finds open and closed tickets in PostgreSQL"
    )


def prune(args: argparse.Namespace) -> int:
    from omnidesk.archiving import TicketArchive

    service = load_config(args.config).data.service
    removed = TicketArchive(service.state_dir).prune(service.archive_retention_days)
    print(f"removed {len(removed)} archive months older than "
          f"{service.archive_retention_days} days")  # fmt: skip
    return 0
