"""`omnidesk archive run|search|prune`: move closed tickets out of Redis into monthly gzip JSON
lines under the state directory, find them again, and drop months past the retention."""

from __future__ import annotations

import argparse
import json

from omnidesk.configload import load_config


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("archive", help="archive closed tickets; search the archive")
    verbs = p.add_subparsers(dest="verb", required=True, metavar="VERB")
    run_p = verbs.add_parser("run", help="move closed tickets older than the age out of Redis")
    run_p.add_argument("--older-than", type=float, help="days (default service.archive_after_days)")
    run_p.add_argument("--dry-run", action="store_true", help="list what would move")
    run_p.set_defaults(func=run)
    search_p = verbs.add_parser("search", help="archived tickets by id, customer and/or text")
    search_p.add_argument("--id")
    search_p.add_argument("--customer", help="customer id or identity (e-mail, phone, ...)")
    search_p.add_argument("--text", help="words in the subject or messages (Arabic folded)")
    search_p.add_argument("--limit", type=int, default=50)
    search_p.add_argument("--json", action="store_true", help="one full record per line")
    search_p.set_defaults(func=search)
    prune_p = verbs.add_parser("prune", help="delete archive months past the retention")
    prune_p.set_defaults(func=prune)
    for q in (run_p, search_p, prune_p):
        q.add_argument("--config", help="default: $OMNIDESK_CONFIG or ./queue_config.yaml")


def _parts(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from omnidesk.archiving import TicketArchive

    service = load_config(args.config).data.service
    return service, TicketArchive(service.state_dir)


def run(args: argparse.Namespace) -> int:
    from omnidesk.store import Store

    service, archive = _parts(args)
    store = Store.from_url(service.redis_url, service.key_prefix)
    age = args.older_than if args.older_than is not None else service.archive_after_days
    if args.dry_run:
        from datetime import UTC, datetime

        ids = archive.candidates(store, age, datetime.now(UTC))
        print(f"{len(ids)} tickets would move: " + " ".join(ids[:50]))
        return 0
    moved = archive.run(store, age)
    print(f"archived {len(moved)} tickets to {archive.root}")
    return 0


def search(args: argparse.Namespace) -> int:
    _, archive = _parts(args)
    if not (args.id or args.customer or args.text):
        from omnidesk.errors import PermanentError

        raise PermanentError("give --id, --customer and/or --text")
    found = archive.search(args.id, args.customer, args.text, limit=args.limit)
    for rec in found:
        t = rec["ticket"]
        if args.json:
            print(json.dumps(rec, ensure_ascii=False))
        else:
            title = (t.get("subject") or t.get("preview", ""))[:60]
            print(f"{t['id']}  {t['created_at'][:10]}  {t['queue']}  {t['status']}  "
                  f"{t['customer_id']}  {title}")  # fmt: skip
    return 0 if found else 1


def prune(args: argparse.Namespace) -> int:
    service, archive = _parts(args)
    removed = archive.prune(service.archive_retention_days)
    print(f"removed {len(removed)} archive months older than "
          f"{service.archive_retention_days} days")  # fmt: skip
    return 0
