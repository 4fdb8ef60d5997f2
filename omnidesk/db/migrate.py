"""`omnidesk db upgrade`: the schema files in order, each once, under an advisory lock so
two daemons starting together do not race. A file is applied in one transaction with its
row in `schema_version`, so a failed upgrade leaves the schema as it was."""

from __future__ import annotations

import contextlib
import re
from importlib import resources

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from omnidesk.db.connect import RecordsUnavailable, connect

# any fixed number: every Omnidesk process takes the same lock around an upgrade
_UPGRADE_LOCK = 0x0D_DB_0001
_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


def migrations() -> list[tuple[int, str, str]]:
    """(version, file name, SQL) for every schema file, in order."""
    out = []
    for entry in resources.files("omnidesk.db.schema").iterdir():
        match = _NAME.match(entry.name)
        if match:
            out.append((int(match.group(1)), entry.name, entry.read_text("utf-8")))
    return sorted(out)


def current_version(conn: psycopg.Connection) -> int:
    exists = conn.execute("SELECT to_regclass('schema_version') IS NOT NULL").fetchone()
    if not exists or not exists[0]:
        return 0
    row = conn.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()
    return int(row[0]) if row else 0


def create_database(info: str) -> bool:
    """Create the database `info` names when it does not exist (the demo, a new install),
    through the server's maintenance database; False when it was there already."""
    name = str(conninfo_to_dict(info).get("dbname") or "")
    if not name:
        return False
    try:
        with connect(info):
            return False
    except RecordsUnavailable as exc:
        if "does not exist" not in str(exc):
            raise
    with (
        connect(make_conninfo(info, dbname="postgres"), autocommit=True) as conn,
        contextlib.suppress(psycopg.errors.DuplicateDatabase),  # another process won
    ):
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return True


def upgrade(info: str) -> list[str]:
    """Apply the schema files not yet applied (creating the database first if need be);
    returns their names."""
    create_database(info)
    applied: list[str] = []
    with connect(info, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_UPGRADE_LOCK,))
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_version ("
                " version int PRIMARY KEY, name text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            have = current_version(conn)
            for version, name, sql in migrations():
                if version <= have:
                    continue
                with conn.transaction():
                    conn.execute(sql.encode())  # bytes: several statements, no parameters
                    conn.execute(
                        "INSERT INTO schema_version (version, name) VALUES (%s, %s)",
                        (version, name),
                    )
                applied.append(name)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_UPGRADE_LOCK,))
    return applied


def pending(info: str) -> list[str]:
    """Schema files the database has not had yet (`omnidesk db status`; the daemon's writer
    applies them itself)."""
    with connect(info) as conn:
        have = current_version(conn)
    return [name for version, name, _ in migrations() if version > have]
