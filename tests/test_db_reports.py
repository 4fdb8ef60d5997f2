"""Report figures from SQL over PostgreSQL's events equal the independent recomputation
from the same raw events (`recompute`), for periods that cut tickets' lives in two and
for every filter; and every reader (CLI, HTML page) prints those figures."""

from __future__ import annotations

import json
import random
from datetime import UTC, date, datetime
from typing import Any

import psycopg
import pytest

from omnidesk.reports.days import figures
from omnidesk.reports.recompute import recompute
from omnidesk.reports.render import render
from omnidesk.reports.sql import QueueCalendars, UnknownFilterValue, read_raw
from tests.reportkit import (
    _NATIONAL,
    AGENTS,
    CHANNELS,
    QUEUES,
    SEGMENTS,
    context,
    history,
)
from tests.reportkit import seed_records as seed

pytestmark = pytest.mark.usefixtures("pg_url")


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
    """`omnidesk report` computes in PostgreSQL; an unknown queue is one line and exit 2."""
    from omnidesk.cli import main

    monkeypatch.setenv("OMNIDESK_DATABASE_URL", pg_url)
    base = ["report", "--config", "queue_config.yaml", "--from", "2026-03-01",
            "--to", "2026-03-31", "--format", "json"]  # fmt: skip
    assert main(base) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["totals"]["opened"] == 400
    assert "riyadh" in got["by"]["region"]  # the config's queue regions apply
    assert main([*base, "--queue", "no-such-queue"]) == 2
    err = capsys.readouterr().err
    assert "no-such-queue" in err and len(err.strip().splitlines()) == 1


def test_cli_with_postgresql_away_is_one_line_and_exit_2(monkeypatch, capsys) -> None:
    """No figures are made up when the system of record is away: one line saying so."""
    from omnidesk.cli import main

    monkeypatch.setenv("OMNIDESK_DATABASE_URL", "postgresql://postgres@127.0.0.1:1/od_absent")
    argv = ["report", "--config", "queue_config.yaml", "--from", "2026-03-01",
            "--to", "2026-03-02", "--format", "json"]  # fmt: skip
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert len(err.strip().splitlines()) == 1
    assert "no report: postgresql unavailable at 127.0.0.1:1/od_absent" in err


def test_every_reader_gets_the_recomputed_figures(loaded, pg_url) -> None:
    """`figures_for` (the CLI's, the scheduler's, the API's and the dashboard's path, with
    the finished days `report_days` holds) gives exactly the independent recomputation's
    figures over the same events, for a supervisor's queue set too."""
    from omnidesk.configload import load_config
    from omnidesk.reports.days import fold_step
    from omnidesk.reports.figures import summarize
    from omnidesk.reports.fold import Context
    from omnidesk.reports.source import figures_for

    conn, events = loaded
    config = load_config("queue_config.yaml").data
    ctx = Context.from_config(config)
    calendars = QueueCalendars.from_config(config)
    folded_until = datetime(2026, 3, 10, tzinfo=UTC)  # days stored until Mar 8, rest queried
    while fold_step(conn, ctx, calendars, now=folded_until):
        pass
    conn.commit()
    stored = conn.execute("SELECT count(*) FROM report_days_done WHERE day >= %s",
                          (date(2026, 3, 6),)).fetchone()  # fmt: skip
    assert stored is not None and stored[0] >= 3

    def records():
        return psycopg.connect(pg_url)

    start, end = date(2026, 3, 6), date(2026, 3, 12)
    for filters in ({}, {"queue": "backoffice"}, {"agent": "sara", "channel": "email"},
                    {"queue": frozenset({"backoffice", "branch-riyadh"})}):  # fmt: skip
        got = figures_for(records, config, ctx, start, end, filters)
        calls = got.pop("calls")  # the call book's, none here (tests/test_cti_reports.py)
        assert calls is None or calls["total"]["calls"] == 0
        want = summarize(recompute(events, start, end, filters, ctx), start, end, filters)
        assert got == want, filters
        assert got["totals"]["replies"] > 0  # every filter matches something


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
    """`omnidesk report --format html` read back cell by cell: each
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
    argv = ["report", "--config", "queue_config.yaml",
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
