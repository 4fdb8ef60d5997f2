"""`omnidesk customer show|export|erase|merge|unmerge|tag|retention`: the customer record in
PostgreSQL (omnidesk.db.customers), from the shell. Actions are audited with the operator's
login name as the actor (``--actor`` to say otherwise). Redis is updated when the customer
is hot; the raw archive is the config's `state_dir`."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from omnidesk.commands import config_words, pasteable
from omnidesk.configload import load_config
from omnidesk.errors import PermanentError
from omnidesk.text import one_line_safe


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("customer", help="the customer record: show, export, erase, merge, tag")
    verbs = p.add_subparsers(dest="verb", required=True, metavar="VERB")

    def verb(name: str, func: Callable[[argparse.Namespace], int], help: str) -> Any:
        q = verbs.add_parser(name, help=help)
        q.add_argument("--config", help="default: $OMNIDESK_CONFIG or ./queue_config.yaml")
        q.add_argument("--actor", default=None, help="who the audit names (default: you)")
        q.set_defaults(func=func)
        return q

    q = verb("show", show, "a customer: identities, tickets, CSAT, merges")
    q.add_argument(
        "customer", help="C-NNNNNNNN, or an identity (e-mail, phone, @handle, kind:value)"
    )
    q.add_argument("--json", action="store_true")
    q = verb("export", export, "everything held about one person, as JSON")
    q.add_argument("customer")
    q.add_argument("--out", help="write to this file (default: standard output)")
    q = verb("erase", erase, "remove a person's personal data everywhere, keeping statistics")
    q.add_argument("customer")
    q.add_argument("--yes", action="store_true", help="required: erasure cannot be undone")
    q = verb("merge", merge, "merge SOURCE into TARGET (one person, two records)")
    q.add_argument("source")
    q.add_argument("target")
    q = verb("unmerge", unmerge, "undo a merge by its id")
    q.add_argument("merge_id")
    q = verb("tag", tag, "add (+tag) and remove (-tag) customer tags")
    q.add_argument("customer")
    # REMAINDER: argparse would take -tag for an option; --config/--actor after the changes
    # are picked out of it by `split_changes`
    q.add_argument("changes", nargs=argparse.REMAINDER, metavar="+TAG|-TAG")
    q = verb("retention", retention, "apply service.retention now")
    q.add_argument("--dry-run", action="store_true", help="count only")


@contextmanager
def _session(args: argparse.Namespace, redis: bool = False) -> Iterator[tuple[Any, Any, Any]]:
    """(connection in a transaction, store or None, service config)."""
    from omnidesk.db.connect import connect, conninfo

    service = load_config(args.config).data.service
    store = None
    if redis:
        from omnidesk.store import Store

        store = Store.from_url(service.redis_url, service.key_prefix)
    info = conninfo(service)
    from omnidesk.db.connect import records_errors

    with connect(info) as conn, records_errors(info), conn.transaction():
        yield conn, store, service


def _actor(args: argparse.Namespace) -> str:
    if args.actor:
        return str(args.actor)
    try:
        return f"operator:{getpass.getuser()}"
    except (KeyError, OSError):
        return "operator"


def show(args: argparse.Namespace) -> int:
    from omnidesk.db import customers

    with _session(args) as (conn, _, _):
        doc = customers.show(conn, args.customer)
    if args.json:
        print(json.dumps(doc, ensure_ascii=False, default=str))
        return 0
    print_record(doc)
    return 0


def print_record(doc: dict[str, Any]) -> None:
    from omnidesk.tables import format_table

    c = doc["customer"]
    if doc.get("note"):
        print(f"({doc['note']})")
    erased = f"  ERASED {c['erased_at'][:10]}" if c.get("erased_at") else ""
    print(f"{c['id']}  {one_line_safe(c['name'] or '-')}{erased}")
    print(
        f"segment: {c['segment']}  region: {c['region'] or '-'}  "
        f"tags: {', '.join(c['tags']) or '-'}  since: {c['created_at'][:10]}"
    )
    for ident in doc["identities"]:
        print(f"  {ident['kind']}: {one_line_safe(ident['value'])}")
    print()
    rows = [
        [
            t["id"],
            t["channel"],
            t["queue"],
            t["status"],
            (t["created_at"] or "")[:10],
            (t["first_response_at"] or "")[:16].replace("T", " "),
            (t["resolved_at"] or t["closed_at"] or "")[:10],
            (t["subject"] or "")[:50],
        ]
        for t in doc["tickets"]
    ]
    header = ["ticket", "channel", "queue", "status", "opened", "first response", "done", "subject"]
    print(format_table(header, rows) if rows else "no tickets")
    if doc["csat"]:
        print("\nCSAT:")
        for s in doc["csat"]:
            comment = f"  {one_line_safe(s['comment'])}" if s["comment"] else ""
            print(f"  {s['at'][:10]}  {s['ticket']}  {s['score']}/5{comment}")
    for m in doc["merges"]:
        undone = f" (undone {m['undone_at'][:10]})" if m["undone_at"] else ""
        print(f"merge {m['id']}: {m['source']} -> {m['target']} by {m['actor']}{undone}")


def export(args: argparse.Namespace) -> int:
    from omnidesk.db import customers

    with _session(args) as (conn, _, _):
        text = customers.export_json(customers.export(conn, args.customer, _actor(args)))
        if args.out:  # written before the audit row commits: no audit of an export not made
            try:
                Path(args.out).write_text(text + "\n", "utf-8")
            except OSError as exc:
                raise PermanentError(f"cannot write {args.out}: {exc.strerror}") from None
    if args.out:
        print(f"wrote {args.out}", file=sys.stderr)
    else:
        print(text)
    return 0


def erase(args: argparse.Namespace) -> int:
    from omnidesk.db import erasure

    if not args.yes:
        raise PermanentError("erasure cannot be undone: add --yes")
    with _session(args, redis=True) as (conn, store, service):
        done = erasure.erase_customer(conn, args.customer, _actor(args), store, service.state_dir)
    print(
        f"erased {done['customer']}: {done['tickets']} tickets, {done['messages']} messages, "
        f"{done['identities']} identities, {done['files']} raw files, "
        f"{done['redis_keys']} Redis records"
    )
    return 0


def merge(args: argparse.Namespace) -> int:
    from omnidesk.db import merging

    with _session(args, redis=True) as (conn, store, _):
        done = merging.merge(conn, args.source, args.target, _actor(args), store)
    print(
        f"merge {done['merge']}: {done['source']} -> {done['target']} "
        f"({done['identities']} identities, {len(done['tickets'])} tickets); "
        "undo with: "
        + pasteable("customer", "unmerge", str(done["merge"]), *config_words(args.config))
    )
    return 0


def unmerge(args: argparse.Namespace) -> int:
    from omnidesk.db import merging

    with _session(args, redis=True) as (conn, store, _):
        done = merging.unmerge(conn, args.merge_id, _actor(args), store)
    print(
        f"merge {done['merge']} undone: {done['source']} stands alone again "
        f"({done['identities']} identities, {len(done['tickets'])} tickets back)"
    )
    return 0


def parse_changes(changes: list[str]) -> tuple[list[str], list[str]]:
    add, remove = [], []
    for change in changes:
        if change.startswith("+") and len(change) > 1:
            add.append(change[1:])
        elif change.startswith("-") and len(change) > 1:
            remove.append(change[1:])
        else:
            raise PermanentError(f"{change!r}: write +tag to add or -tag to remove")
    return add, remove


def split_changes(args: argparse.Namespace) -> list[str]:
    """The +tag/-tag words; a --config or --actor among them sets that option instead."""
    changes: list[str] = []
    words = iter(args.changes)
    for word in words:
        name, eq, value = word.partition("=")
        if name in ("--config", "--actor"):
            value = value if eq else next(words, "")
            if not value:
                raise PermanentError(f"{name} needs a value")
            setattr(args, name[2:], value)
        else:
            changes.append(word)
    if not changes:
        raise PermanentError("say which tags: +tag to add, -tag to remove")
    return changes


def tag(args: argparse.Namespace) -> int:
    from omnidesk.db import customers

    add, remove = parse_changes(split_changes(args))
    with _session(args, redis=True) as (conn, store, _):
        cid, _ = customers.resolve(conn, args.customer)
        tags = customers.set_tags(conn, cid, add, remove, _actor(args), store)
    print(f"{cid}: {', '.join(tags) or '(no tags)'}")
    return 0


def retention(args: argparse.Namespace) -> int:
    from omnidesk.db.retention import apply_retention

    with _session(args, redis=not args.dry_run) as (conn, store, service):
        years = service.retention.personal_data_years
        if years is None:
            print("service.retention.personal_data_years is not set: personal data is kept")
            return 0
        done = apply_retention(
            conn,
            years,
            store=store,
            state_dir=service.state_dir,
            dry_run=args.dry_run,
            actor=_actor(args),
            limit=None,  # the operator asked for all of it now
        )
    verb = "would erase" if args.dry_run else "erased"
    print(
        f"{verb} the personal data of {done['tickets']} tickets and {done['customers']} "
        f"customers closed before {done['cutoff'][:10]}"
    )
    return 0
