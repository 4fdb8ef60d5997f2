"""Report figures from SQL over PostgreSQL's events equal the independent recomputation
from the same raw events (`recompute`), for periods that cut tickets' lives in two and
for every filter; and the figures render like the rollups' do."""

from __future__ import annotations

import json
import random
from datetime import UTC, date, datetime
from typing import Any
from uuid import uuid4

import psycopg
import pytest

from omnidesk.db.reports import QueueCalendars, UnknownFilterValue, figures, read_raw
from omnidesk.reports.recompute import recompute
from omnidesk.reports.render import render
from tests.reportkit import _NATIONAL, AGENTS, CHANNELS, QUEUES, SEGMENTS, context, history

pytestmark = pytest.mark.usefixtures("pg_url")

COLUMNS = {"type", "ticket", "queue", "channel", "actor", "ts"}


def seed(conn: psycopg.Connection[Any], events: list[dict[str, str]]) -> None:
    """The events as the outbox writer stores them, and each ticket's last snapshot."""
    ms = [int(e["ts"]) for e in events]
    conn.execute(
        "SELECT ensure_event_partitions(%s, %s)",
        (datetime.fromtimestamp(min(ms) / 1000, UTC), datetime.fromtimestamp(max(ms) / 1000, UTC)),
    )
    rows, seq, last = [], 0, -1
    tickets: dict[str, dict[str, Any]] = {}
    for e in events:
        ts = int(e["ts"])
        seq = seq + 1 if ts == last else 0
        last = ts
        data = {k: v for k, v in e.items() if k not in COLUMNS}
        at = datetime.fromtimestamp(ts / 1000, UTC)
        rows.append((at, f"{ts}-{seq}", e["type"], e["ticket"], e["queue"], e.get("channel"),
                     e.get("actor"), json.dumps(data)))  # fmt: skip
        t = tickets.setdefault(e["ticket"], {"created": at, "status": "new",
                                             "customer": e.get("customer", "")})  # fmt: skip
        t.update(queue=e["queue"], channel=e.get("channel", ""), updated=at)
        if e["type"] == "status_changed" and e.get("to"):
            t["status"] = e["to"]
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO events (ts, stream_id, type, ticket_id, queue, channel, actor, data) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            rows,
        )
        cur.executemany(
            "INSERT INTO tickets (id, customer_id, channel, queue, status, created_at, "
            "updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s)",
            [
                (
                    tid,
                    t["customer"],
                    t["channel"],
                    t["queue"],
                    t["status"],
                    t["created"],
                    t["updated"],
                )
                for tid, t in tickets.items()
            ],
        )
    conn.commit()


@pytest.fixture
def loaded(pg_url: str) -> tuple[psycopg.Connection[Any], list[dict[str, str]]]:
    events = history(seed=13, tickets=400, days=20, customers=30)
    conn = psycopg.connect(pg_url)
    seed(conn, events)
    yield conn, events
    conn.close()


PERIODS = [
    (date(2026, 3, 1), date(2026, 3, 31)),  # everything
    (date(2026, 3, 6), date(2026, 3, 12)),  # cuts tickets opened before and open after
    (date(2026, 3, 20), date(2026, 4, 30)),  # the tail: only history before it
]


@pytest.mark.parametrize(("start", "end"), PERIODS)
def test_sql_equals_recomputation_unfiltered(loaded, start: date, end: date) -> None:
    conn, events = loaded
    ctx = context()
    got = read_raw(conn, ctx, start, end, {}, QueueCalendars(default=_NATIONAL))
    want = recompute(events, start, end, {}, ctx)
    assert got.all["opened"] > 0 or start > date(2026, 3, 20)
    assert got.all["frt_b"] > 0 and got.all["frt_b"] != got.all["frt_w"]  # calendars in play
    assert got.lists["breached"] and got.by["day"]
    assert got.normalized() == want.normalized()


def test_sql_equals_recomputation_filtered(loaded) -> None:
    conn, events = loaded
    ctx = context()
    rnd = random.Random(7)
    choices = {"queue": QUEUES, "channel": CHANNELS, "segment": SEGMENTS,
               "region": ("riyadh", "jeddah", "makkah", ""), "agent": (*AGENTS, "")}  # fmt: skip
    seen = 0
    for _ in range(8):
        start, end = rnd.choice(PERIODS)
        dims = rnd.sample(sorted(choices), rnd.randrange(1, 3))
        filters = {d: rnd.choice(choices[d]) for d in dims}
        got = read_raw(conn, ctx, start, end, filters, QueueCalendars(default=_NATIONAL))
        want = recompute(events, start, end, filters, ctx)
        assert got.normalized() == want.normalized(), filters
        seen += bool(got.all)
    assert seen >= 4  # most draws match something
    two = frozenset(QUEUES[:2])  # a supervisor's queues: `dq = ANY(...)`
    for start, end in PERIODS[:2]:
        for filters in ({"queue": two}, {"queue": two, "channel": CHANNELS[0]}):
            got = read_raw(conn, ctx, start, end, filters, QueueCalendars(default=_NATIONAL))
            want = recompute(events, start, end, filters, ctx)
            assert got.normalized() == want.normalized(), filters
            assert got.all["opened"] > 0 and {q for _, q in got.by["queue"]} <= two


def test_backlog_of_a_ticket_opened_before_the_period_and_untouched_in_it(pg_url: str) -> None:
    """Opened in March, nothing since: still in April's backlog, found via the tickets table."""
    base = int(datetime(2026, 3, 3, 9, tzinfo=UTC).timestamp() * 1000)
    events = [
        {"type": "ticket_opened", "ticket": "OD-2026-000001", "queue": "backoffice",
         "channel": "email", "actor": "intake", "ts": str(base), "customer": "C-1",
         "segment": "consumer"},
        {"type": "ticket_opened", "ticket": "OD-2026-000002", "queue": "backoffice",
         "channel": "email", "actor": "intake", "ts": str(base + 1000), "customer": "C-2"},
        {"type": "status_changed", "ticket": "OD-2026-000002", "queue": "backoffice",
         "channel": "email", "actor": "sara", "ts": str(base + 5000), "from": "new",
         "to": "resolved"},
    ]  # fmt: skip
    with psycopg.connect(pg_url) as conn:
        seed(conn, events)
        raw = read_raw(conn, context(), date(2026, 4, 1), date(2026, 4, 30), {})
    assert raw.backlog_end == 1
    assert raw.all["opened"] == 0


def test_figures_render_and_unknown_queue_is_refused(loaded) -> None:
    conn, _ = loaded
    ctx = context()
    result = figures(conn, ctx, date(2026, 3, 1), date(2026, 3, 31), {"queue": "backoffice"},
                     QueueCalendars(default=_NATIONAL))  # fmt: skip
    assert result["totals"]["opened"] > 0
    assert set(result["by"]["queue"]) <= set(QUEUES)
    for fmt in ("table", "csv", "json", "html"):
        assert render(result, fmt)
    with pytest.raises(UnknownFilterValue, match="no-such-queue"):
        figures(conn, ctx, date(2026, 3, 1), date(2026, 3, 31), {"queue": "no-such-queue"})


def test_cli_reports_from_the_records(loaded, pg_url, monkeypatch, capsys) -> None:
    """`omnidesk report` takes the records when they hold events; --source rollups still
    reads Redis (empty here); an unknown queue is one line and exit 2."""
    from omnidesk.cli import main

    monkeypatch.setenv("OMNIDESK_DATABASE_URL", pg_url)
    base = ["report", "--config", "queue_config.yaml", "--prefix", f"test-dbrep-{uuid4().hex[:8]}",
            "--from", "2026-03-01", "--to", "2026-03-31", "--format", "json"]  # fmt: skip
    assert main(base) == 0
    auto = json.loads(capsys.readouterr().out)
    assert auto["totals"]["opened"] == 400
    assert "riyadh" in auto["by"]["region"]  # the config's queue regions apply
    assert main([*base, "--source", "records"]) == 0
    assert json.loads(capsys.readouterr().out)["totals"] == auto["totals"]
    assert main([*base, "--source", "rollups"]) == 0
    assert json.loads(capsys.readouterr().out)["totals"]["opened"] == 0
    assert main([*base, "--queue", "no-such-queue"]) == 2
    err = capsys.readouterr().err
    assert "no-such-queue" in err and len(err.strip().splitlines()) == 1


def test_cli_falls_back_to_the_rollups_when_postgresql_is_away(monkeypatch, capsys) -> None:
    from omnidesk.cli import main

    monkeypatch.setenv("OMNIDESK_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/od_absent")
    argv = ["report", "--config", "queue_config.yaml", "--prefix", f"test-dbrep-{uuid4().hex[:8]}",
            "--from", "2026-03-01", "--to", "2026-03-02", "--format", "json"]  # fmt: skip
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out)["totals"]["opened"] == 0
    assert main([*argv, "--source", "records"]) != 0


def test_sql_and_rollups_give_the_same_figures(loaded, prefix) -> None:
    """The same events folded into the Redis rollups and read back: the report a
    supervisor gets does not depend on where it came from."""
    from omnidesk.reports.figures import read_raw as read_rollups
    from omnidesk.reports.figures import summarize
    from omnidesk.reports.rollup import Rollups
    from omnidesk.store import Store

    conn, events = loaded
    ctx = context()
    store = Store.from_url("redis://127.0.0.1:6379/0", prefix)
    pipe = store.r.pipeline(transaction=False)
    for ev in events:
        pipe.xadd(store.key("events"), ev)
    pipe.execute()
    Rollups(store, ctx).catch_up()
    start, end = date(2026, 3, 6), date(2026, 3, 12)
    for filters in ({}, {"queue": "backoffice"}, {"agent": "sara", "channel": "email"},
                    {"queue": frozenset({"backoffice", "branch-riyadh"})}):  # fmt: skip
        sql = read_raw(conn, ctx, start, end, filters, QueueCalendars(default=_NATIONAL))
        rolled = read_rollups(store.r, store.prefix, start, end, filters, today=date(2026, 3, 31))
        assert summarize(sql, start, end, filters) == summarize(rolled, start, end, filters)


def test_auto_takes_the_rollups_for_the_periods_they_cover(loaded, prefix, pg_url) -> None:
    from omnidesk.configload import load_config
    from omnidesk.reports.rollup import Rollups
    from omnidesk.reports.source import figures_for
    from omnidesk.store import Store

    _, events = loaded
    config = load_config("queue_config.yaml").data
    ctx = context()
    store = Store.from_url("redis://127.0.0.1:6379/0", prefix)
    later = [
        e
        for e in events
        if e["ts"] >= str(int(datetime(2026, 3, 10, tzinfo=UTC).timestamp() * 1000))
    ]
    pipe = store.r.pipeline(transaction=False)
    for ev in later:  # the rollups began on March 10th
        pipe.xadd(store.key("events"), ev, id=f"{ev['ts']}-*")
    pipe.execute()
    Rollups(store, ctx).catch_up()

    def records():
        return psycopg.connect(pg_url)

    cases = [(date(2026, 3, 12), "rollups"), (date(2026, 3, 1), "records")]
    for start, want in cases:
        result, source = figures_for(store, records, config, ctx, start, date(2026, 3, 20), {})
        assert source == want, start
        assert result["period"]["from"] == start.isoformat()
    _, source = figures_for(store, records, config, ctx, date(2026, 3, 12), date(2026, 3, 20),
                            {}, "records")  # fmt: skip
    assert source == "records"


def test_unknown_region_or_agent_is_refused_and_known_ones_answer(loaded) -> None:
    """Values from the events (a ticket's own region, an agent outside the config) are
    known; anything else is an error naming it, not a page of zeros."""
    conn, _ = loaded
    ctx = context()
    span = (date(2026, 3, 1), date(2026, 3, 31))
    for dim, value in (("region", "atlantis"), ("agent", "ghost")):
        with pytest.raises(UnknownFilterValue, match=value):
            figures(conn, ctx, *span, {dim: value})
    assert figures(conn, ctx, *span, {"region": "makkah"})["totals"]["opened"] > 0
    assert figures(conn, ctx, *span, {"agent": "sara"})["totals"]["replies"] > 0
    assert figures(conn, ctx, *span, {"agent": "khalid"}, known={"agent": {"khalid"}})


@pytest.mark.parametrize(("lang", "digits"), [("ar", "arab"), ("en", "latn")])
def test_the_printed_report_agrees_with_a_recomputation_in_both_languages(
    loaded, pg_url, monkeypatch, tmp_path, lang, digits
) -> None:
    """`omnidesk report --source records --format html` read back cell by cell: each
    slice's counts, shares and CSAT on the Arabic and English pages are the independent
    recomputation's (recompute over the same events), written in that language's digits."""
    import re

    from omnidesk.cli import main
    from omnidesk.configload import load_config
    from omnidesk.i18n import translator
    from omnidesk.reports.figures import summarize
    from omnidesk.reports.fold import Context
    from omnidesk.reports.html import DIM_NAMES, share, value_name
    from omnidesk.reports.render import slices

    _, events = loaded
    monkeypatch.setenv("OMNIDESK_DATABASE_URL", pg_url)
    out = tmp_path / "report.html"
    argv = ["report", "--config", "queue_config.yaml", "--source", "records",
            "--from", "2026-03-01", "--to", "2026-03-31", "--format", "html",
            "--lang", lang, "--digits", digits, "-o", str(out)]  # fmt: skip
    assert main(argv) == 0
    page = out.read_text("utf-8")

    config = load_config("queue_config.yaml").data
    ctx = Context.from_config(config)
    start, end = date(2026, 3, 1), date(2026, 3, 31)
    want = summarize(recompute(events, start, end, {}, ctx), start, end, {})
    tr = translator(lang, digits)
    titles = {n: q.title for n, q in config.queues.items() if q.title}
    rows = {}
    for row in re.findall(r"<tr>(.*?)</tr>", page):
        cells = re.findall(r"<td[^>]*>(.*?)</td>", row)
        if len(cells) == 12:
            name = re.sub(r"<[^>]+>", "", cells[1])
            rows[cells[0], name] = cells[2:]
    checked = 0
    for dim, value, r in slices(want):
        name = value_name(tr, dim, value, titles) if dim != "total" else ""
        got = rows[tr._(DIM_NAMES[dim]), name]
        assert got[0] == tr.number(r["opened"]) and got[1] == tr.number(r["resolved"])
        assert got[5] == share(tr, r["fr_compliance"]), (dim, value)
        assert got[6] == share(tr, r["res_compliance"]), (dim, value)
        assert got[7] == tr.number(r["breached"]) and got[9] == tr.number(r["transfers"])
        csat = tr._("no data") if r["csat_avg"] is None else tr.number(r["csat_avg"])
        assert got[8] == csat
        checked += 1
    assert checked == len(rows) > 10
    if digits == "arab":
        assert not re.search(r"[0-9]", "".join(c for cells in rows.values() for c in cells))
