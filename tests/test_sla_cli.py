"""`omnidesk sla TICKET` and `omnidesk sla at-risk` against the real Redis."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from omnidesk import cli
from omnidesk.configload import load_config
from omnidesk.sla.engine import SlaClocks
from omnidesk.store import Store
from tests.test_sweeper import CONFIG, FakeNow, open_ticket, riyadh


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[Path, SlaClocks]]:
    prefix = f"test-slacli-{uuid.uuid4().hex[:10]}"
    path = tmp_path / "queue_config.yaml"
    path.write_text(f"service: {{key_prefix: {prefix}}}\n{CONFIG}", encoding="utf-8")
    cfg = load_config(path).data
    store = Store.from_url(cfg.service.redis_url, prefix)
    clocks = SlaClocks(store, cfg, clock=FakeNow(riyadh(2026, 1, 8, 15)))
    yield path, clocks
    store.delete_all()


def test_sla_ticket_explains_each_due_time(setup, capsys) -> None:
    path, clocks = setup
    tid = open_ticket(clocks.store, clocks, 1)
    assert cli.main(["sla", tid, "--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert "first_response" in out and "resolution" in out
    assert "2026-01-11 08:00:00Z" in out  # first_response due Sunday 11:00 Riyadh
    assert "riyadh_branch" in out and "skip" in out.lower()  # the weekend it skipped
    assert cli.main(["sla", tid, "--config", str(path), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [c["target"] for c in doc["clocks"]] == ["first_response", "resolution"]


def test_sla_at_risk_lists_by_time_left(setup, capsys) -> None:
    path, clocks = setup
    a = open_ticket(clocks.store, clocks, 1)
    b = open_ticket(clocks.store, clocks, 2, queue="backoffice")
    assert cli.main(["sla", "at-risk", "--config", str(path), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["ticket"] for r in rows} == {a, b}
    left = [r["remaining_seconds"] for r in rows]
    assert left == sorted(left)
    assert cli.main(["sla", "at-risk", "--queue", "backoffice", "--config", str(path)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines and all(b in line for line in lines)


def test_unknown_ticket_is_one_line_and_exit_2(setup, capsys) -> None:
    path, _ = setup
    assert cli.main(["sla", "OD-2026-999999", "--config", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["omnidesk sla: ticket OD-2026-999999 does not exist"]
