"""One process's handle on PostgreSQL: its connection string and a small pool, opened on
first use so a process starts while PostgreSQL is away. Workers, the CLI and the API's
handlers (which run in threads, as their Redis calls do) borrow connections from it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from omnidesk.config import ServiceConfig
from omnidesk.db.connect import conninfo, describe, records_errors

BORROW_TIMEOUT_S = 5.0


class Records:
    def __init__(self, info: str, max_size: int = 4) -> None:
        self.info = info
        self.max_size = max_size
        self._pool: ConnectionPool[Any] | None = None
        self._lock = threading.Lock()

    @classmethod
    def for_service(cls, service: ServiceConfig, max_size: int = 4) -> Records:
        return cls(conninfo(service), max_size)

    def __repr__(self) -> str:  # never the password
        return f"Records({describe(self.info)})"

    def _opened(self) -> ConnectionPool[Any]:
        with self._lock:
            if self._pool is None:
                self._pool = ConnectionPool(
                    self.info, min_size=0, max_size=self.max_size, open=True, name="records",
                    check=ConnectionPool.check_connection,
                )  # fmt: skip
            return self._pool

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection[Any]]:
        """A pooled connection in a transaction committed on success; PostgreSQL away is
        RecordsUnavailable (transient)."""
        with (
            records_errors(self.info),
            self._opened().connection(timeout=BORROW_TIMEOUT_S) as conn,
        ):
            yield conn

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.close()
                self._pool = None
