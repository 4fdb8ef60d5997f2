"""The dashboard's today block from PostgreSQL (the events the records writer stored): a
supervisor's opened, resolved, SLA compliance and CSAT count only its own queues; a scope
is queried once per interval however many pages read it; PostgreSQL away, the block says
so in Arabic and English while the rest of the dashboard stays, logged once per outage."""

from __future__ import annotations

import asyncio
import logging
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from omnidesk.agents import csat
from omnidesk.agents.supervise import supervisor_authorize
from omnidesk.db.records import Records
from omnidesk.db.writer import RecordWriter
from omnidesk.reports import dashboard as dashboard_module
from omnidesk.reports import dashtext
from omnidesk.reports.dashboard import Dashboard, Viewer, env_authorize
from tests.agentkit import make
from tests.services import (
    DAY_MARGIN_S,
    RIYADH,
    SUITE_TIMEOUT_S,
    wait_for_one_day,
    within_one_riyadh_day,
)
from tests.storekit import web

ABSENT = "postgresql://postgres@127.0.0.1:1/od_absent?connect_timeout=2"


def test_a_test_that_reads_today_twice_waits_out_a_near_midnight() -> None:
    assert wait_for_one_day(datetime(2026, 12, 6, 12, 0, tzinfo=RIYADH)) == 0.0
    assert wait_for_one_day(datetime(2026, 12, 6, 23, 58, 30, tzinfo=RIYADH)) == 91.0
    # 23:59 in Riyadh is 20:59 UTC: the day is Riyadh's, whatever zone the clock gives
    assert wait_for_one_day(datetime(2026, 12, 6, 20, 59, tzinfo=UTC)) == 61.0
    assert wait_for_one_day(datetime(2026, 12, 6, 20, 59, tzinfo=UTC), margin_s=30) == 0.0

    # the wait counts in the test's timeout (pytest-timeout times fixtures too): room for it
    def a_test() -> None: ...

    marks = {m.name: m for m in within_one_riyadh_day(a_test).pytestmark}  # type: ignore[attr-defined]
    assert marks["usefixtures"].args == ("same_riyadh_day",)
    assert marks["timeout"].args == (SUITE_TIMEOUT_S + DAY_MARGIN_S,)
    with (Path(__file__).parent.parent / "pyproject.toml").open("rb") as f:
        assert tomllib.load(f)["tool"]["pytest"]["ini_options"]["timeout"] == SUITE_TIMEOUT_S


class Counted:
    """The records' connections, counted: how many queries the dashboard made."""

    def __init__(self, records: Records) -> None:
        self.records = records
        self.opened = 0

    @contextmanager
    def __call__(self) -> Iterator[Any]:
        self.opened += 1
        with self.records.connection() as conn:
            yield conn


@pytest.fixture
def records(pg_url: str) -> Iterator[Records]:
    records = Records(pg_url)
    yield records
    records.close()


@within_one_riyadh_day
def test_today_counts_the_viewers_queues_from_postgresql(
    prefix: str, tmp_path: Path, pg_url: str, records: Records
) -> None:
    runtime, service, _ = make(prefix, tmp_path)
    store = service.store
    general, _, registration = [r.ticket_id for r in runtime.process([
        web("a general question", email="g@example.sa"),
        web("a complaint: شكوى", email="c@example.sa"),
        web("commercial registration renewal", email="r@example.sa"),
    ]).results]  # fmt: skip
    assert store.get_ticket(registration).queue == "cr"  # out of boss's scope
    amal = service.agent("amal")
    service.desk.reply(amal, general, "أهلًا، تم ذلك.")
    service.desk.resolve(amal, general)
    token = store.r.hget(store.key("ticket", general), "csat_token")
    assert csat.record(store, token, 4, "", "web")[0] == "recorded"
    asyncio.run(RecordWriter(store, pg_url).drain())

    queries = Counted(records)
    dashboard = Dashboard(store, service.config(), sla=runtime.clocks, records=queries)
    boss = supervisor_authorize(service, fallback=env_authorize)(service.tokens.create("boss"))
    snap = dashboard.snapshot(boss, dashtext.lang_translator("en"))
    assert snap["today"]["available"] is True and snap["today"]["note"] == ""
    assert (snap["today"]["opened"], snap["today"]["resolved"]) == (2, 1)  # not cr's ticket
    assert snap["csat"]["responses"] == 1 and snap["csat"]["average"] == 4
    branches = {b["name"]: b for b in snap["compliance"]["branches"]}
    assert list(branches) == ["general", "complaints"]
    assert branches["general"]["first_response"] == 1.0
    assert branches["general"]["resolution"] == 1.0
    assert branches["complaints"]["first_response"] is None  # nothing due yet
    (region,) = snap["compliance"]["regions"]
    assert region["first_response"] == 1.0

    operator = dashboard.snapshot(Viewer("operator", None), dashtext.lang_translator("en"))
    assert operator["today"]["opened"] == 3
    # another page, another language, same scope within the interval: no second query
    assert queries.opened == 2
    tr = dashtext.lang_translator("ar")
    ar = dashboard.snapshot(boss, tr, fresh_after=1e12)  # a fresh snapshot, not a shared one
    assert ar["today"]["opened_text"] == tr.number(2) and queries.opened == 2


def test_postgresql_away_the_today_block_says_so_and_the_rest_stands(
    prefix: str, tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch
) -> None:
    runtime, service, _ = make(prefix, tmp_path)
    runtime.process([web("a complaint: شكوى", email="k@example.sa")])
    away = Records(ABSENT)
    monkeypatch.setattr(dashboard_module, "TODAY_TTL_S", 0.0)  # every reading tries again
    dashboard = Dashboard(service.store, service.config(), sla=runtime.clocks,
                          records=away.connection)  # fmt: skip
    operator = Viewer("operator", None)
    try:
        with caplog.at_level(logging.WARNING, logger="omnidesk.reports.dashboard"):
            en = dashboard.snapshot(operator, dashtext.lang_translator("en"))
            ar = dashboard.snapshot(operator, dashtext.lang_translator("ar"), fresh_after=1e12)
    finally:
        away.close()
    for snap in (en, ar):
        assert snap["today"]["available"] is False and snap["today"]["opened"] is None
        assert snap["compliance"] == {"branches": [], "regions": []}
        assert snap["csat"]["average"] is None
        # the rest of the dashboard is live: the new complaint waits in its queue
        assert {q["queue"]: q["waiting"] for q in snap["queues"]}["complaints"] == 1
    assert en["today"]["note"].startswith("Today's figures are unavailable right now")
    assert ar["today"]["note"].startswith("أرقام اليوم غير متاحة الآن")
    outage = [r for r in caplog.records if "today's figures unavailable" in r.getMessage()]
    assert len(outage) == 1  # two readings, one outage, one line
    assert "postgresql unavailable at 127.0.0.1:1/od_absent" in outage[0].getMessage()
