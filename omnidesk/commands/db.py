"""`omnidesk db upgrade|status|import-archive`: create or upgrade the PostgreSQL schema, say
where it is, or load the old monthly archive files into it."""

from __future__ import annotations

import argparse

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
    for q in (up, st, imp):
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
