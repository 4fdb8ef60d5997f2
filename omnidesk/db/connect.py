"""Connections to the system of record: the URL from config, the password from the
environment, and PostgreSQL's failures as Omnidesk's own errors."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from omnidesk.config import ServiceConfig
from omnidesk.errors import TransientError

# Overrides service.database_url for one process (tests, a one-off CLI run).
URL_ENV = "OMNIDESK_DATABASE_URL"
CONNECT_TIMEOUT_S = 5


class RecordsUnavailable(TransientError):
    """PostgreSQL cannot be reached right now; Redis keeps the work until it can."""


def conninfo(service: ServiceConfig) -> str:
    """The libpq connection string: `database_url` (or $OMNIDESK_DATABASE_URL), with the
    password from the variable `database_password_env` names, never from the file."""
    url = os.environ.get(URL_ENV) or service.database_url
    # a server that stops answering without closing is noticed in ~20 s, not hours
    params: dict[str, Any] = {
        "connect_timeout": CONNECT_TIMEOUT_S,
        "keepalives": 1,
        "keepalives_idle": 10,
        "keepalives_interval": 5,
        "keepalives_count": 2,
        "tcp_user_timeout": 20_000,
    }
    if service.database_password_env:
        params["password"] = os.environ.get(service.database_password_env, "")
    return make_conninfo(url, **params)


def describe(info: str) -> str:
    """Where a connection string points, without its password (for logs and errors)."""
    parts = conninfo_to_dict(info)
    host = parts.get("host", "localhost")
    return f"{host}:{parts.get('port', 5432)}/{parts.get('dbname', '')}"


def is_transient(exc: BaseException) -> bool:
    """Connection loss, a server starting or shutting down, too many clients or no disk, a
    deadlock or serialization failure: wait it out and try the same again. A statement the
    server refuses for its content (too long for a tsvector, cancelled by a timeout) is not
    an outage, though psycopg calls some of those OperationalError too."""
    sqlstate = getattr(exc, "sqlstate", None) or ""
    if sqlstate:  # connection, resources, shutdown, transaction rollback
        return sqlstate.startswith(("08", "53", "57P", "40"))
    return isinstance(exc, psycopg.OperationalError)  # no server answer: the connection


@contextmanager
def records_errors(info: str = "") -> Iterator[None]:
    """PostgreSQL being away becomes RecordsUnavailable, with one line that says where."""
    try:
        yield
    except psycopg.Error as exc:
        if not is_transient(exc):
            raise
        where = f" at {describe(info)}" if info else ""
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise RecordsUnavailable(f"postgresql unavailable{where}: {first}") from None


def connect(info: str, **kwargs: Any) -> psycopg.Connection[Any]:
    with records_errors(info):
        return psycopg.connect(info, **kwargs)


async def connect_async(info: str, **kwargs: Any) -> psycopg.AsyncConnection[Any]:
    with records_errors(info):
        return await psycopg.AsyncConnection.connect(info, **kwargs)
