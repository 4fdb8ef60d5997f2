"""Report figures from SQL over PostgreSQL equal the independent recomputation from the
same raw events for any history, period and filter (hypothesis-generated, on the real
PostgreSQL): the property the Redis rollups used to be held to, now held by what every
report reads. A queue set (a supervisor's) is exactly its queues' figures added up."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from omnidesk.reports.figures import summarize
from omnidesk.reports.recompute import recompute
from omnidesk.reports.sql import QueueCalendars, read_raw
from tests.reportkit import (
    _NATIONAL,
    AGENTS,
    CHANNELS,
    QUEUES,
    REGIONS,
    SEGMENTS,
    context,
    history,
    seed_records,
)

FIRST = date(2026, 2, 27)
CALS = QueueCalendars(default=_NATIONAL)
queue_st = st.one_of(st.sampled_from(QUEUES), st.frozensets(st.sampled_from(QUEUES), min_size=1))
filters_st = st.fixed_dictionaries(
    {},
    optional={
        "queue": queue_st,
        "channel": st.sampled_from(CHANNELS),
        "segment": st.sampled_from(SEGMENTS),
        "region": st.sampled_from([*REGIONS.values(), "makkah", ""]),
        "agent": st.sampled_from([*AGENTS, ""]),
    },
)


@pytest.fixture
def conn(pg_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(pg_url) as connection:
        yield connection


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(
    seed=st.integers(0, 10**6),
    tickets=st.integers(1, 25),
    queries=st.lists(
        st.tuples(st.integers(0, 72), st.integers(0, 72), filters_st), min_size=1, max_size=4
    ),
)
def test_sql_equals_recomputation_for_any_history(conn, seed, tickets, queries) -> None:
    conn.rollback()  # an example that failed left its transaction aborted
    conn.execute("TRUNCATE events, tickets CASCADE")
    events = history(seed, tickets, days=int(tickets**0.5 * 8))
    seed_records(conn, events)
    ctx = context()
    for a, b, filters in queries:
        start, end = FIRST + timedelta(days=min(a, b)), FIRST + timedelta(days=max(a, b))
        got = read_raw(conn, ctx, start, end, filters, CALS)
        want = recompute(events, start, end, filters, ctx)
        assert got.normalized() == want.normalized(), (start, end, filters)
        assert summarize(got, start, end, filters) == summarize(want, start, end, filters)


def test_a_set_of_two_queues_is_the_sum_of_the_two(conn) -> None:
    """A supervisor's queues: exactly the two queues' figures added up, nothing of the third."""
    seed_records(conn, history(11, 90, days=40))
    ctx = context()
    start, end = date(2026, 3, 3), date(2026, 4, 5)
    two = read_raw(conn, ctx, start, end, {"queue": frozenset(QUEUES[:2])}, CALS)
    each = [read_raw(conn, ctx, start, end, {"queue": q}, CALS) for q in QUEUES]
    assert two.all == each[0].all + each[1].all
    assert two.backlog_end == each[0].backlog_end + each[1].backlog_end
    assert each[2].all["opened"] > 0 and {q for _, q in two.by["queue"]} == set(QUEUES[:2])
