"""Rollups equal a recomputation from the raw events, for any period and filter (hypothesis
histories on the real Redis), and each event is folded once with two consumers racing."""

from __future__ import annotations

import threading
import uuid
from datetime import date, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from omnidesk.reports.figures import LIST_CAP, read_raw, summarize
from omnidesk.reports.recompute import recompute
from omnidesk.reports.rollup import Rollups
from omnidesk.store import Store
from tests.reportkit import AGENTS, CHANNELS, QUEUES, REGIONS, SEGMENTS, context, history

REDIS_URL = "redis://127.0.0.1:6379/0"
FIRST = date(2026, 2, 27)
LAST = date(2026, 5, 10)
# a queue, or a set of queues (a supervisor's): the figures of exactly those queues
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


def load(store: Store, events: list[dict[str, str]]) -> None:
    pipe = store.r.pipeline(transaction=False)
    for ev in events:
        pipe.xadd(store.key("events"), ev)
    pipe.execute()


@pytest.fixture
def store():
    s = Store.from_url(REDIS_URL, f"test-rep-{uuid.uuid4().hex[:10]}")
    yield s
    s.delete_all()


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    seed=st.integers(0, 10**6),
    tickets=st.integers(1, 25),
    batch=st.integers(1, 40),
    queries=st.lists(
        st.tuples(st.integers(0, 72), st.integers(0, 72), filters_st), min_size=1, max_size=4
    ),
)
def test_rollups_equal_recomputation(store, seed, tickets, batch, queries):
    store.delete_all()
    events = history(seed, tickets, days=int(tickets**0.5 * 8))  # up to 40 days: whole months
    load(store, events)
    ctx = context()
    consumer = Rollups(store, ctx, batch=batch)
    assert consumer.catch_up() == len(events)
    for a, b, filters in queries:
        start, end = FIRST + timedelta(days=min(a, b)), FIRST + timedelta(days=max(a, b))
        got = read_raw(store.r, store.prefix, start, end, filters, today=LAST)
        want = recompute(events, start, end, filters, ctx)
        assert got.normalized() == want.normalized(), (start, end, filters)
        assert summarize(got, start, end, filters) == summarize(want, start, end, filters)


def test_a_whole_month_reads_the_month_hashes_and_agrees(store):
    events = history(23, 80, days=45)
    load(store, events)
    ctx = context()
    Rollups(store, ctx, batch=64).catch_up()
    start, end = date(2026, 3, 1), date(2026, 3, 31)
    assert store.r.exists(store.key("ru", "m", "2026-03", "queue"))
    for filters in ({}, {"queue": QUEUES[0]}, {"channel": CHANNELS[1], "agent": ""},
                    {"queue": frozenset(QUEUES[:2]), "channel": CHANNELS[0]}):  # fmt: skip
        got = read_raw(store.r, store.prefix, start, end, filters, today=LAST)
        want = recompute(events, start, end, filters, ctx)
        assert got.normalized() == want.normalized(), filters
        assert got.all["opened"] > 0


def test_whole_history_figures_add_up(store):
    events = history(7, 60)
    load(store, events)
    Rollups(store, context(), batch=50).catch_up()
    raw = read_raw(store.r, store.prefix, FIRST, LAST, {}, today=LAST)
    figures = summarize(raw, FIRST, LAST, {})
    assert figures["totals"]["opened"] == 60
    assert sum(figures["volume"]["opened_by_day"].values()) == 60
    assert sum(b["opened"] for b in figures["by"]["queue"].values()) == 60
    assert figures["backlog"]["start"] == 0
    open_now = figures["backlog"]["end"]
    per_queue = read_raw(store.r, store.prefix, FIRST, LAST, {"queue": QUEUES[0]}, today=LAST)
    assert 0 <= per_queue.backlog_end <= open_now


@pytest.mark.parametrize("narrow", [True, False])
def test_a_set_of_two_queues_is_the_sum_of_the_two(store, narrow):
    """A supervisor's queues: exactly the two queues' figures added up, nothing of the third,
    from the by:queue hashes and from the cubes alike."""
    events = history(11, 90, days=40)
    load(store, events)
    ctx = context()
    Rollups(store, ctx, batch=64).catch_up()
    if not narrow:
        store.r.delete(store.key("ru", "byfilter"))
    start, end = date(2026, 3, 3), date(2026, 4, 5)
    two = {"queue": frozenset(QUEUES[:2])}
    got = read_raw(store.r, store.prefix, start, end, two, today=LAST)
    assert got.normalized() == recompute(events, start, end, two, ctx).normalized()
    each = [read_raw(store.r, store.prefix, start, end, {"queue": q}, today=LAST) for q in QUEUES]
    assert got.all["opened"] == each[0].all["opened"] + each[1].all["opened"] > 0
    both = each[0].all.copy()
    both.update(each[1].all)  # update, not +: backlog moves may be negative
    assert {m: n for m, n in got.all.items() if n} == {m: n for m, n in both.items() if n}
    assert got.backlog_end == each[0].backlog_end + each[1].backlog_end
    assert each[2].all["opened"] > 0 and QUEUES[2] not in {q for _, q in got.by["queue"]}
    for kind, entries in got.lists.items():
        assert {e["dims"][0] for e in entries} <= set(QUEUES[:2]), kind
    figures = summarize(got, start, end, two)
    assert figures["filters"] == {"queue": sorted(QUEUES[:2])}
    one = read_raw(store.r, store.prefix, start, end, {"queue": frozenset({QUEUES[2]})}, today=LAST)
    assert one.normalized() == each[2].normalized()  # a set of one is that queue


def test_two_consumers_fold_each_event_once(store):
    events = history(11, 80)
    load(store, events)
    ctx = context()
    consumers = [Rollups(store, ctx, batch=7), Rollups(store, ctx, batch=7)]
    threads = [threading.Thread(target=c.catch_up) for c in consumers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    got = read_raw(store.r, store.prefix, FIRST, LAST, {}, today=LAST)
    want = recompute(events, FIRST, LAST, {}, ctx)
    assert got.normalized() == want.normalized()
    assert got.all["opened"] == 80
    # a third consumer later finds nothing to do
    assert Rollups(store, ctx).catch_up() == 0


def test_long_lists_keep_the_first_entries_of_the_period(store):
    events = history(31, 1800, days=20, customers=300)
    load(store, events)
    ctx = context()
    Rollups(store, ctx, batch=500).catch_up()
    start, end = date(2026, 3, 1), date(2026, 3, 22)
    for filters in ({}, {"region": "riyadh"}):
        got = read_raw(store.r, store.prefix, start, end, filters, today=LAST)
        want = recompute(events, start, end, filters, ctx)
        assert got.normalized() == want.normalized(), filters
    whole = read_raw(store.r, store.prefix, start, end, {}, today=LAST)
    assert len(got.lists["breached"]) < len(whole.lists["breached"]) == LIST_CAP


def test_periods_use_months_then_weeks_then_days():
    from omnidesk.reports.figures import _periods

    got = _periods(date(2026, 4, 2), date(2026, 6, 30))
    assert got == [
        "d:2026-04-02", "d:2026-04-03", "d:2026-04-04", "d:2026-04-05",
        "w:2026-04-06", "w:2026-04-13", "w:2026-04-20",
        "d:2026-04-27", "d:2026-04-28", "d:2026-04-29", "d:2026-04-30",
        "m:2026-05", "m:2026-06",
    ]  # fmt: skip


one_filter_st = st.one_of(
    st.fixed_dictionaries({"queue": queue_st}),
    st.fixed_dictionaries({"channel": st.sampled_from(CHANNELS)}),
    st.fixed_dictionaries({"segment": st.sampled_from([*SEGMENTS, "unknown"])}),
    st.fixed_dictionaries({"region": st.sampled_from([*REGIONS.values(), "makkah", ""])}),
    st.fixed_dictionaries({"agent": st.sampled_from([*AGENTS, ""])}),
)


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    seed=st.integers(0, 10**6),
    tickets=st.integers(1, 25),
    batch=st.integers(1, 40),
    queries=st.lists(
        st.tuples(st.integers(0, 72), st.integers(0, 72), one_filter_st), min_size=1, max_size=4
    ),
)
def test_one_filter_reads_its_own_hashes_and_agrees(store, seed, tickets, batch, queries):
    """A single filter reads the by:<dim>:<value> hashes: equal to recomputation and to the
    cube path (which rollups begun before those hashes existed fall back to)."""
    store.delete_all()
    events = history(seed, tickets, days=int(tickets**0.5 * 8))
    load(store, events)
    ctx = context()
    Rollups(store, ctx, batch=batch).catch_up()
    assert store.r.get(store.key("ru", "byfilter")) == "1"
    for a, b, filters in queries:
        start, end = FIRST + timedelta(days=min(a, b)), FIRST + timedelta(days=max(a, b))
        got = read_raw(store.r, store.prefix, start, end, filters, today=LAST)
        want = recompute(events, start, end, filters, ctx)
        assert got.normalized() == want.normalized(), (start, end, filters)
    store.r.delete(store.key("ru", "byfilter"))
    for a, b, filters in queries:
        start, end = FIRST + timedelta(days=min(a, b)), FIRST + timedelta(days=max(a, b))
        cubes = read_raw(store.r, store.prefix, start, end, filters, today=LAST)
        want = recompute(events, start, end, filters, ctx)
        assert cubes.normalized() == want.normalized(), (start, end, filters)


def test_one_filter_never_touches_the_cubes(store):
    """Proof the narrow path is the one taken: with the cubes gone it still answers right."""
    events = history(5, 120, days=40)
    load(store, events)
    ctx = context()
    Rollups(store, ctx, batch=100).catch_up()
    for key in store.r.scan_iter(store.key("ru", "*cube*")):
        store.r.delete(key)
    start, end = date(2026, 3, 1), date(2026, 4, 5)
    for filters in ({"channel": CHANNELS[0]}, {"region": "riyadh"}, {"agent": AGENTS[1]},
                    {"segment": SEGMENTS[0]}, {"queue": QUEUES[2]}):  # fmt: skip
        got = read_raw(store.r, store.prefix, start, end, filters, today=LAST)
        want = recompute(events, start, end, filters, ctx)
        assert got.normalized() == want.normalized(), filters
        assert got.all["replies"] > 0
    # a combined filter still needs the cubes: with them gone it finds nothing
    both = {"channel": CHANNELS[0], "segment": SEGMENTS[0]}
    assert read_raw(store.r, store.prefix, start, end, both, today=LAST).all["opened"] == 0
