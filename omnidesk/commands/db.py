"""`omnidesk db upgrade|status`: create or upgrade the PostgreSQL schema, or say where it is."""

from __future__ import annotations

import argparse

from omnidesk.configload import load_config


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("db", help="the PostgreSQL system of record: schema upgrade, status")
    verbs = p.add_subparsers(dest="verb", required=True, metavar="VERB")
    up = verbs.add_parser("upgrade", help="create the schema, or apply the files it lacks")
    up.set_defaults(func=upgrade)
    st = verbs.add_parser("status", help="the schema version, and the files not yet applied")
    st.set_defaults(func=status)
    for q in (up, st):
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
