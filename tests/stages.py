"""The `integration` marker, set at collection: a test is integration when it needs a real
service (Redis, IMAP, PostgreSQL, a browser), else unit. `.ci/run` runs the two as separate
stages (`-m "not integration"` / `-m integration`).

Most tests are classed by the fixtures they use, so a new test is classed without a list to
keep; the modules in SERVICE_MODULES reach a service without one of those fixtures (their
own client, a daemon subprocess, a private server). That list was found by running the unit
stage where nothing answers on Redis's and PostgreSQL's ports
(`unshare -n` with only loopback up)."""

from __future__ import annotations

import pytest

# the fixtures that are a service, or stand on one
SERVICE_FIXTURES = frozenset(
    {
        *("redis_prefix", "prefix", "runtime", "pipeline", "worker"),  # Redis
        "store",  # a Store on Redis, where a module defines one (tests/test_sweeper.py)
        "dovecot",  # IMAP
        "slapd",  # OpenLDAP (tests/ldapkit.py)
        *("pg_template", "pg_url", "pg_empty_url"),  # PostgreSQL
    }
)

SERVICE_MODULES = frozenset(
    {
        # the benchmarks' quick runs: each starts its own Redis or PostgreSQL work
        *("test_bench_claim", "test_bench_e2e", "test_bench_history", "test_bench_memory"),
        *("test_bench_report", "test_bench_search", "test_bench_sla", "test_bench_web_load"),
        # private Redis or PostgreSQL servers, daemons and workers as processes
        *("test_chaos_records", "test_records_outage", "test_redis_restart", "test_scale_out"),
        # their own Redis or PostgreSQL client, or a daemon or CLI that opens one
        *("test_config_anywhere", "test_db_schema", "test_log_secrets", "test_parse_budget"),
        *("test_report_http", "test_report_mail_health", "test_report_schedule"),
        *("test_searchtext", "test_sla_cli", "test_telegram"),
        "test_events",  # test_every_script_loads_into_redis opens its own client
    }
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "integration: needs Redis, IMAP, PostgreSQL or a browser (set at collection)"
    )


def uses_a_service(item: pytest.Item) -> bool:
    """Whether `item`'s fixture closure reaches a service fixture. The autouse run_database
    (tests/pgkit.py) takes PostgreSQL only when the run has integration tests, so it does
    not count."""
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return False
    seen: set[str] = set()
    todo = list(info.initialnames)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        if name in SERVICE_FIXTURES:
            return True
        for fixturedef in info.name2fixturedefs.get(name, ()):
            todo.extend(fixturedef.argnames)
    return False


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    integration = pytest.mark.integration
    for item in items:
        module = item.module.__name__.rsplit(".", 1)[-1] if item.module else ""
        if module in SERVICE_MODULES or uses_a_service(item):
            item.add_marker(integration)
