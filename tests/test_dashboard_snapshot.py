"""The dashboard's snapshot on the real Redis, without a browser: a supervisor sees only its
queues (and the agents of them), a page woken by an event never gets a reading older than
that event, and pages of one scope share a reading otherwise."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from omnidesk.agents.supervise import supervisor_authorize
from omnidesk.reports import dashtext
from omnidesk.reports.dashboard import Dashboard, NotSupervisor, env_authorize
from tests.agentkit import make
from tests.storekit import web


def test_scope_and_freshness(prefix: str, tmp_path: Path) -> None:
    runtime, service, _ = make(prefix, tmp_path)
    dashboard = Dashboard(service.store, service.config(), sla=runtime.clocks)
    authorize = supervisor_authorize(service, fallback=env_authorize)
    boss = authorize(service.tokens.create("boss"))
    with pytest.raises(NotSupervisor):
        authorize(service.tokens.create("amal"))
    tr = dashtext.lang_translator("en")

    first = dashboard.snapshot(boss, tr)
    assert [q["queue"] for q in first["queues"]] == ["general", "complaints"]  # not cr, quiet
    assert {a["agent"] for a in first["agents"]["list"]} == {"amal", "omar", "sara", "boss"}
    assert first["viewer"] == {"name": "boss", "can_reassign": True}

    runtime.process([web("a complaint: شكوى", email="k@example.sa")])
    woken = time.monotonic()
    fresh = dashboard.snapshot(boss, tr, fresh_after=woken)
    assert {q["queue"]: q["waiting"] for q in fresh["queues"]}["complaints"] == 1
    assert [t["queue"] for t in fresh["tickets"]] == []  # 4 h to go: not at risk
    # a page that asks for nothing newer shares that reading (one Redis read per scope)
    runtime.process([web("another complaint: شكوى", email="k2@example.sa")])
    assert {q["queue"]: q["waiting"] for q in
            dashboard.snapshot(boss, tr, fresh_after=0.0)["queues"]}["complaints"] == 1  # fmt: skip
    again = dashboard.snapshot(boss, tr, fresh_after=time.monotonic())
    assert {q["queue"]: q["waiting"] for q in again["queues"]}["complaints"] == 2


def test_held_tickets_of_other_queues_are_not_listed(prefix: str, tmp_path: Path) -> None:
    """sara works general and quiet; boss supervises general and complaints: sara's quiet
    ticket counts in her load but its subject never reaches boss's dashboard."""
    runtime, service, _ = make(prefix, tmp_path)
    dashboard = Dashboard(service.store, service.config(), sla=runtime.clocks)
    boss = supervisor_authorize(service, fallback=env_authorize)(service.tokens.create("boss"))
    store, sara = service.store, service.agent("sara")
    tids = [r.ticket_id for r in runtime.process(
        [web("secret quiet matter", email="q@example.sa"),
         web("a general question", email="g@example.sa")]).results]  # fmt: skip
    quiet, general = tids
    store.move(quiet, "quiet", "sara", event="transferred", reason="quiet queue")
    for tid in tids:
        queue = store.get_ticket(tid).queue
        assert service.assigner.hand_to(tid, sara, "boss", queue).outcome == "assigned"
    snap = dashboard.snapshot(boss, dashtext.lang_translator("en"))
    (row,) = [a for a in snap["agents"]["list"] if a["agent"] == "sara"]
    assert [h["ticket"] for h in row["held"]] == [general]
    assert row["load"] == 2 and row["held_elsewhere"] == 1
    assert row["held_elsewhere_text"] == "+1 in other queues"  # shown by the held list
    ar = dashboard.snapshot(boss, dashtext.lang_translator("ar"), fresh_after=time.monotonic())
    (row,) = [a for a in ar["agents"]["list"] if a["agent"] == "sara"]
    assert row["held_elsewhere_text"] == "+١ في طوابير أخرى"
    assert "secret quiet matter" not in str(snap)
