"""The directory sync beside other daemons and a failing Redis, with config agents (no
slapd needed): a ticket handed on between the sync's read and its release stays with the new
holder, and a sync pass that meets a Redis failure leaves the loop running."""

from __future__ import annotations

from pathlib import Path

import pytest

from omnidesk.agents.directory_sync import release_outside
from tests.agentkit import make
from tests.storekit import web


def test_a_ticket_handed_on_after_the_syncs_read_is_not_taken_off_its_new_holder(
    prefix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime, service, _ = make(prefix, tmp_path)
    (result,) = runtime.process([web("a general question", email="c@example.sa")]).results
    ticket = str(result.ticket_id)
    assert service.assigner.claim(service.agent("amal")).ticket_id == ticket
    read = service.assigner.held

    def held_then_handed_on(agent_id: str) -> list[str]:
        """What the sync read; then another daemon's sync hands the ticket to sara."""
        seen = read(agent_id)
        handed = service.assigner.hand_to(ticket, service.agent("sara"), "boss", "general")
        assert handed.outcome == "assigned", handed
        return seen

    monkeypatch.setattr(service.assigner, "held", held_then_handed_on)
    assert release_outside(service, "amal", set()) == 0
    monkeypatch.undo()
    assert service.store.get_ticket(ticket).assignee == "sara"
    assert service.assigner.held("sara") == [ticket] and service.assigner.held("amal") == []
    assert ticket not in service.store.waiting("general")
    # without `holder` release keeps its old meaning (whoever holds it now)
    assert service.assigner.release(ticket, requeue=True) == "sara"
    assert service.store.get_ticket(ticket).assignee is None
