"""PostgreSQL away, as an operator sees it: the real daemon on the real Redis, writing into a
PostgreSQL of the test's own (tests/private_pg.py) that is stopped for a while. Intake goes
on (the web form answers 201 with the ticket number), /healthz says `records.ok: false`,
status degraded with `postgresql_down` and a backlog that grows; once PostgreSQL is back the
backlog drains to 0, in /healthz and in /metrics, and every submission is a message in
PostgreSQL."""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.private_pg import server_missing
from tests.recordskit import RecordsRig, wait_until

pytestmark = [pytest.mark.slow]


@pytest.fixture
def rig() -> Iterator[RecordsRig]:
    if why := server_missing():
        pytest.skip(why)
    workdir = Path(tempfile.mkdtemp(prefix="od-pgdown-"))
    try:
        with RecordsRig(workdir, workers=0, daemon_workers=2) as running:
            yield running
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def post_forms(rig: RecordsRig, first: int, count: int) -> list[int]:
    return [
        rig.post(
            "/v1/intake/web",
            {"message": f"طلب رقم {n}: شكوى على محل", "email": f"pg{n}@example.sa"},
        )
        for n in range(first, first + count)
    ]


def records(rig: RecordsRig) -> dict[str, Any]:
    return rig.health()["records"]


def metric(rig: RecordsRig, name: str) -> float | None:
    text = rig.get("/metrics")[1].decode()
    found = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else None


@pytest.mark.timeout(180)
def test_postgresql_stopped_intake_goes_on_and_the_backlog_drains_after(rig: RecordsRig):
    assert post_forms(rig, 0, 3) == [201] * 3
    assert wait_until(lambda: rig.pg_count() == 3, 30), rig.daemon.tail()
    assert wait_until(lambda: records(rig)["ok"] is True, 10), records(rig)

    rig.pg.stop("fast")
    # noticed with nothing to write too: /healthz must not say ok while it is away
    assert wait_until(lambda: records(rig)["ok"] is False, 15), rig.health()
    health = rig.health()
    assert health["status"] == "degraded", json.dumps(health)
    assert "postgresql_down" in health["degraded"], json.dumps(health)
    assert "postgresql unavailable" in health["records"]["error"], json.dumps(health)

    # intake goes on in Redis; the backlog grows, shown in /healthz
    assert post_forms(rig, 3, 10) == [201] * 10
    assert wait_until(lambda: records(rig)["backlog"] >= 20, 20), records(rig)
    first = records(rig)["backlog"]
    assert post_forms(rig, 13, 10) == [201] * 10
    assert wait_until(lambda: records(rig)["backlog"] >= first + 20, 20), records(rig)
    assert records(rig)["ok"] is False
    assert metric(rig, 'omnidesk_dependency_up{dependency="postgresql"}') == 0.0
    assert (metric(rig, "omnidesk_records_backlog") or 0) >= first + 20
    assert rig.stream_backlog() >= first + 20  # nothing acknowledged, nothing trimmed
    assert rig.stream_length() >= first + 20

    rig.pg.start()
    assert wait_until(lambda: records(rig)["ok"] is True and records(rig)["backlog"] == 0, 30), (
        records(rig)
    )
    assert rig.pg_count() == 23
    assert rig.rows("SELECT count(*) FROM tickets") == [(23,)]
    health = rig.health()
    assert "postgresql_down" not in health.get("degraded", []), json.dumps(health)
    assert metric(rig, "omnidesk_records_backlog") == 0.0
    assert metric(rig, 'omnidesk_dependency_up{dependency="postgresql"}') == 1.0
