"""`omnidesk db upgrade|status|import-archive|fold-days`: create or upgrade the PostgreSQL
schema, say where it is, load the old monthly archive files into it, or fold every finished
day into report_days now (what the daemon's background job does)."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from omnidesk.configload import load_config


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "db", help="the PostgreSQL system of record: schema upgrade, status, archive import"
    )
    verbs = p.add_subparsers(dest="verb", required=True, metavar="VERB")
    up = verbs.add_parser("upgrade", help="create the schema, or apply the files it lacks")
    up.set_defaults(func=upgrade)
    st = verbs.add_parser("status", help="the schema version, and the files not yet applied")
    st.set_defaults(func=status)
    imp = verbs.add_parser(
        "import-archive",
        help="load the monthly gzip archive files into PostgreSQL (idempotent)",
    )
    imp.add_argument("--state-dir", help="default: service.state_dir (its archive/ folder)")
    imp.set_defaults(func=import_archive)
    fold = verbs.add_parser(
        "fold-days", help="fold every finished day into report_days now (reports read them)"
    )
    fold.set_defaults(func=fold_days)
    failed = verbs.add_parser(
        "failed", help="events the records writer could not write: list, retry or drop them"
    )
    failed.add_argument("--retry", nargs="+", metavar="ID", help="put them back in the stream")
    failed.add_argument("--drop", nargs="+", metavar="ID", help="forget them")
    failed.set_defaults(func=failed_entries)
    for q in (up, st, imp, fold, failed):
        q.add_argument("--config", help="default: $OMNIDESK_CONFIG or ./queue_config.yaml")


def _info(args: argparse.Namespace) -> str:
    from omnidesk.db.connect import conninfo

    return conninfo(load_config(args.config).data.service)


def upgrade(args: argparse.Namespace) -> int:
    from omnidesk.db.connect import describe
    from omnidesk.db.migrate import upgrade as apply

    info = _info(args)
    applied = apply(info)
    where = describe(info)
    print(f"{where}: applied {', '.join(applied)}" if applied else f"{where}: up to date")
    return 0


def status(args: argparse.Namespace) -> int:
    from omnidesk.db.connect import describe
    from omnidesk.db.migrate import pending

    info = _info(args)
    todo = pending(info)
    print(f"{describe(info)}: " + (f"pending {', '.join(todo)}" if todo else "up to date"))
    return 1 if todo else 0


def import_archive(args: argparse.Namespace) -> int:
    from omnidesk.archiving import TicketArchive
    from omnidesk.db.connect import connect, conninfo, describe
    from omnidesk.db.importarchive import import_archive as load
    from omnidesk.errors import PermanentError

    service = load_config(args.config).data.service
    archive = TicketArchive(args.state_dir or service.state_dir)
    if not archive.root.is_dir():
        raise PermanentError(f"{archive.root}: no archive folder there (see --state-dir)")
    info = conninfo(service)
    with connect(info) as conn:
        counts = load(conn, archive)
    print(f"{describe(info)}: imported from {archive.root}: {counts.line()}")
    return 0


def fold_days(args: argparse.Namespace) -> int:
    from omnidesk.db.connect import connect, conninfo, describe
    from omnidesk.reports.days import fold_step
    from omnidesk.reports.fold import Context
    from omnidesk.reports.sql import QueueCalendars

    config = load_config(args.config).data
    ctx, calendars = Context.from_config(config), QueueCalendars.from_config(config)
    info = conninfo(config.service)
    days = 0
    with connect(info, autocommit=True) as conn:
        now = datetime.now(UTC)
        while n := fold_step(conn, ctx, calendars, now=now):
            days += n
        row = conn.execute("SELECT count(*), max(day) FROM report_days_done").fetchone()
    done, last = row if row else (0, None)
    print(f"{describe(info)}: folded {days} days; {done} folded in all, the last {last}")
    return 0


def failed_entries(args: argparse.Namespace) -> int:
    """The set-aside entries with their errors; --retry after fixing the cause."""
    from omnidesk.db.writer import RecordWriter
    from omnidesk.store import Store

    service = load_config(args.config).data.service
    writer = RecordWriter(Store.from_url(service.redis_url, service.key_prefix), _info(args))
    if args.retry:
        done = writer.retry_failed(args.retry)
        print(f"back in the stream: {len(done)} of {len(args.retry)}")
        return 0 if len(done) == len(args.retry) else 1
    if args.drop:
        print(f"dropped {writer.drop_failed(args.drop)} of {len(args.drop)}")
        return 0
    entries = writer.failed_entries()
    for eid, item in entries.items():
        fields = item["fields"]
        print(f"{eid}  {item['at'][:19]}  {fields.get('type', '')}  {fields.get('ticket', '')}"
              f"  {item['error']}")  # fmt: skip
    if not entries:
        print("no events set aside")
    return 0
