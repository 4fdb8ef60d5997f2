"""Reports from the folded days (report_days) equal the event query over the whole range,
whatever mix of folded and unfolded days the range holds, for every filter; a late event
unfolds its day; the fold takes turns across processes."""

from __future__ import annotations

import json
import random
from datetime import UTC, date, datetime
from typing import Any

import psycopg
import pytest

from omnidesk.reports import days as report_days
from omnidesk.reports import sql as reports
from omnidesk.reports.sql import QueueCalendars
from tests.reportkit import _NATIONAL, AGENTS, CHANNELS, QUEUES, SEGMENTS, context, history
from tests.test_db_reports import seed

pytestmark = pytest.mark.usefixtures("pg_url")

CALS = QueueCalendars(default=_NATIONAL)
PERIODS = [
    (date(2026, 3, 1), date(2026, 3, 31)),
    (date(2026, 3, 6), date(2026, 3, 12)),
    (date(2026, 3, 20), date(2026, 4, 30)),
    (date(2026, 2, 1), date(2026, 4, 30)),  # holds a whole folded month
]
CHOICES = {"queue": QUEUES, "channel": CHANNELS, "segment": SEGMENTS,
           "region": ("riyadh", "jeddah", "makkah", ""), "agent": (*AGENTS, "")}  # fmt: skip


def late_event(day: date, ticket: str = "OD-2026-999999") -> dict[str, str]:
    ts = int(datetime(day.year, day.month, day.day, 9, tzinfo=UTC).timestamp() * 1000)
    return {"type": "ticket_opened", "ticket": ticket, "queue": "backoffice",
            "channel": "email", "actor": "intake", "ts": str(ts), "customer": "C-00000001",
            "segment": "consumer"}  # fmt: skip


@pytest.fixture
def loaded(pg_url: str) -> Any:
    # 20 days of March, and one ticket opened in mid-April so March is a finished month
    events = history(seed=13, tickets=400, days=20, customers=30)
    events.append(late_event(date(2026, 4, 15), "OD-2026-900000"))
    conn = psycopg.connect(pg_url)
    seed(conn, events)
    yield conn
    conn.close()


def fold(conn: psycopg.Connection[Any], max_days: int = 7, rounds: int = 1000) -> int:
    total = 0
    for _ in range(rounds):
        n = report_days.fold_step(conn, context(), CALS, max_days=max_days)
        if not n:
            break
        total += n
    return total


def same(conn: psycopg.Connection[Any], start: date, end: date, filters: dict[str, Any]) -> Any:
    ctx = context()
    got = report_days.read_raw(conn, ctx, start, end, filters, CALS)
    conn.commit()
    want = reports.read_raw(conn, ctx, start, end, filters, CALS)
    conn.commit()
    assert got.normalized() == want.normalized(), (start, end, filters)
    return got


def compare_all(conn: psycopg.Connection[Any], draws: int = 6) -> int:
    seen = 0
    backlogs = []
    for start, end in PERIODS:
        got = same(conn, start, end, {})
        seen += bool(got.all)
        backlogs.append(got.backlog_end)
        two = same(conn, start, end, {"queue": frozenset(QUEUES[:2])})  # a supervisor's
        assert {q for _, q in two.by["queue"]} <= set(QUEUES[:2])
        assert bool(two.all["opened"]) == bool(got.all["opened"])
    same(conn, *PERIODS[3], {"queue": frozenset(QUEUES[1:]), "agent": AGENTS[0]})  # the cube
    assert any(backlogs) and got.lists["breached"] and got.lists["comment"]
    rnd = random.Random(11)
    for _ in range(draws):
        start, end = rnd.choice(PERIODS)
        dims = rnd.sample(sorted(CHOICES), rnd.randrange(1, 3))
        same(conn, start, end, {d: rnd.choice(CHOICES[d]) for d in dims})
    return seen


@pytest.mark.parametrize("early", [31, 0])
def test_partly_and_wholly_folded_equal_the_event_query(loaded, monkeypatch, early) -> None:
    """early: how many unfolded days before a range have their backlog moves read from
    the events (0: the backlog comes from the tickets table, as the event query does)."""
    monkeypatch.setattr(report_days, "MAX_EARLY_RUN_DAYS", early)
    conn = loaded
    assert fold(conn, max_days=4, rounds=2) == 8  # Mar 1-8 folded, the rest is not
    compare_all(conn)
    assert fold(conn) > 30  # every finished day up to Apr 14
    done = conn.execute("SELECT count(*) FROM report_days_done").fetchone()[0]
    months = conn.execute("SELECT month FROM report_months_done").fetchall()
    conn.commit()
    assert done >= 45 and months == [(date(2026, 3, 1),)]
    assert compare_all(conn, draws=10) == len(PERIODS)
    # a folded day is really read from report_days: change a stored counter, see it
    conn.execute("UPDATE report_days SET n = n + 1000 WHERE span = 'm' AND g = 'total' "
                 "AND metric = 'opened'")  # fmt: skip
    got = report_days.read_raw(conn, context(), date(2026, 3, 1), date(2026, 3, 31), {}, CALS)
    want = reports.read_raw(conn, context(), date(2026, 3, 1), date(2026, 3, 31), {}, CALS)
    conn.rollback()
    assert got.all["opened"] == want.all["opened"] + 1000


def test_a_late_event_unfolds_its_day_and_refolds(loaded) -> None:
    conn = loaded
    fold(conn)
    with conn.cursor() as cur:  # as the writer stores it
        e = late_event(date(2026, 3, 10))
        cur.execute(
            "INSERT INTO events (ts, stream_id, type, ticket_id, queue, channel, actor, data) "
            "VALUES (%s, %s, 'ticket_opened', %s, 'backoffice', 'email', 'intake', %s) "
            "ON CONFLICT DO NOTHING",
            (datetime.fromtimestamp(int(e["ts"]) / 1000, UTC), f"{e['ts']}-0", e["ticket"],
             json.dumps({"customer": "C-00000001", "segment": "consumer"})),
        )  # fmt: skip
        cur.execute("INSERT INTO tickets (id, customer_id, channel, queue, status, created_at, "
                    "updated_at) VALUES (%s, 'C-00000001', 'email', 'backoffice', 'new', "
                    "%s, %s)", (e["ticket"], datetime(2026, 3, 10, 9, tzinfo=UTC),
                                datetime(2026, 3, 10, 9, tzinfo=UTC)))  # fmt: skip
    conn.commit()
    undone = conn.execute("SELECT min(day) FROM report_days_done").fetchone()[0]
    left = conn.execute("SELECT count(*) FROM report_days_done WHERE day >= '2026-03-10'")
    assert left.fetchone()[0] == 0 and undone == date(2026, 3, 1)
    assert conn.execute("SELECT count(*) FROM report_months_done").fetchone()[0] == 0
    conn.commit()
    got = same(conn, date(2026, 3, 1), date(2026, 3, 31), {})  # unfolded days: still right
    assert fold(conn) > 30
    again = same(conn, date(2026, 3, 1), date(2026, 3, 31), {})
    assert again.all["opened"] == got.all["opened"] == 401


def test_one_fold_at_a_time_and_nothing_unfinished(loaded, pg_url: str) -> None:
    conn = loaded
    with psycopg.connect(pg_url) as other:
        other.execute("SELECT pg_advisory_xact_lock(%s)", (report_days.LOCK_KEY,))
        assert report_days.fold_step(conn, context(), CALS) == 0  # another process folds
        conn.commit()
    # days after the records' newest event minus the margin are not folded
    fold(conn)
    last = conn.execute("SELECT max(day) FROM report_days_done").fetchone()[0]
    conn.commit()
    assert last == date(2026, 4, 14)
    # nor, with a clock, the day not yet over
    conn.execute("DELETE FROM report_days_done")
    conn.commit()
    now = datetime(2026, 3, 5, 23, tzinfo=UTC)
    while report_days.fold_step(conn, context(), CALS, now=now):
        pass
    last = conn.execute("SELECT max(day) FROM report_days_done").fetchone()[0]
    conn.commit()
    assert last == date(2026, 3, 5)  # 02:00 on the 6th in Riyadh, minus 10 minutes


def test_the_job_backfills_in_the_background(loaded, pg_url: str) -> None:
    import asyncio
    from contextlib import contextmanager

    @contextmanager
    def records() -> Any:
        with psycopg.connect(pg_url) as c:
            yield c

    job = report_days.ReportDays(records, context(), CALS, interval=0.05, max_days=10)

    async def main() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(job.run(stop))
        # until the backfill reaches the last finished day (it folds a few days a round, and
        # a month is stored as soon as its own days are: that is not the end)
        for _ in range(600):
            await asyncio.sleep(0.05)
            row = loaded.execute("SELECT max(day) FROM report_days_done").fetchone()
            loaded.commit()
            if row[0] == date(2026, 4, 14):
                break
        stop.set()
        await task

    asyncio.run(main())
    assert loaded.execute("SELECT max(day) FROM report_days_done").fetchone()[0] == date(
        2026, 4, 14
    )
    assert loaded.execute("SELECT count(*) FROM report_months_done").fetchone()[0] >= 1


def test_a_fold_that_raced_a_late_insert_is_caught_by_the_recount(loaded) -> None:
    conn = loaded
    fold(conn)
    e = late_event(date(2026, 3, 12))
    conn.execute("SET session_replication_role = replica")  # the trigger did not see it
    conn.execute(
        "INSERT INTO events (ts, stream_id, type, ticket_id, queue, channel, actor, data) "
        "VALUES (%s, %s, 'ticket_opened', %s, 'backoffice', 'email', 'intake', '{}')",
        (datetime.fromtimestamp(int(e["ts"]) / 1000, UTC), f"{e['ts']}-0", e["ticket"]),
    )
    conn.execute("SET session_replication_role = DEFAULT")
    conn.execute("UPDATE report_days_done SET computed_at = now() - interval '2 minutes'")
    conn.commit()
    assert report_days.fold_step(conn, context(), CALS) == 7  # Mar 12 on, folded again
    row = conn.execute("SELECT count(*) FILTER (WHERE recounted), count(*) "
                       "FROM report_days_done").fetchone()  # fmt: skip
    conn.commit()
    assert row[1] == 11 + 7 and row[0] == 11  # Mar 1-11 recounted and kept
    fold(conn)
    same(conn, date(2026, 3, 1), date(2026, 3, 31), {})


def test_cli_folds_the_days_and_the_report_reads_them(loaded, pg_url, monkeypatch, capsys):
    from omnidesk.cli import main

    monkeypatch.setenv("OMNIDESK_DATABASE_URL", pg_url)
    assert main(["db", "fold-days", "--config", "queue_config.yaml"]) == 0
    out = capsys.readouterr().out
    assert "folded 45 days" in out and "the last 2026-04-14" in out
    assert main(["db", "fold-days", "--config", "queue_config.yaml"]) == 0
    assert "folded 0 days" in capsys.readouterr().out
    argv = [
        "report",
        "--config",
        "queue_config.yaml",
        "--from",
        "2026-03-01",
        "--to",
        "2026-03-31",
        "--format",
        "json",
    ]
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out)["totals"]["opened"] == 400
