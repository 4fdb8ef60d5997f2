"""PostgreSQL for tests: each test gets its own database, cloned from a template that
`omnidesk db upgrade` built once per run (CREATE DATABASE ... TEMPLATE is a file copy, far
faster than running the schema each time). The server is the real one on 127.0.0.1:5432
(scripts/test starts it when missing), or $OMNIDESK_TEST_PG."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from omnidesk.db.migrate import upgrade

SERVER = os.environ.get("OMNIDESK_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def database_url(name: str) -> str:
    return make_conninfo(SERVER, dbname=name)


def _admin() -> psycopg.Connection:
    return psycopg.connect(SERVER, autocommit=True, connect_timeout=5)


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """A schema-complete database the per-test ones are copied from."""
    name = f"od_tpl_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with _admin() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    upgrade(database_url(name))
    yield name
    with _admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_url(pg_template: str) -> Iterator[str]:
    """The URL of a fresh database with the whole schema, dropped after the test."""
    name = f"od_t_{uuid.uuid4().hex[:12]}"
    with _admin() as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"')
    yield database_url(name)
    with _admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_empty_url() -> Iterator[str]:
    """A fresh database with no schema at all (for the migrations themselves)."""
    name = f"od_e_{uuid.uuid4().hex[:12]}"
    with _admin() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield database_url(name)
    with _admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session", autouse=True)
def run_database(request: pytest.FixtureRequest) -> Iterator[str]:
    """Every daemon and worker a test starts writes its records somewhere: one database for
    the whole run (through $OMNIDESK_DATABASE_URL, which subprocesses inherit). Tests that
    look at what was written use `pg_url`, a database of their own. A run of unit tests
    only (tests/stages.py) starts no daemon and needs no PostgreSQL: none then."""
    if not any(item.get_closest_marker("integration") for item in request.session.items):
        yield ""
        return
    # asked for here, not as a parameter, so pg_template is in no test's closure
    # (tests/stages.py marks the tests that reach it as integration)
    pg_template: str = request.getfixturevalue("pg_template")
    name = f"od_run_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with _admin() as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"')
    url = database_url(name)
    before = os.environ.get("OMNIDESK_DATABASE_URL")
    os.environ["OMNIDESK_DATABASE_URL"] = url
    yield url
    if before is None:
        os.environ.pop("OMNIDESK_DATABASE_URL", None)
    else:
        os.environ["OMNIDESK_DATABASE_URL"] = before
    with _admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
