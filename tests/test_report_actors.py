"""Who the report credits: the CSAT survey (sent as a `replied` by "csat") is nobody's reply
or first response, and a transfer counts for the agent who made it, in the SQL over
PostgreSQL (what every report reads) and the independent recomputation alike."""

from __future__ import annotations

from datetime import date

import psycopg
import pytest

from omnidesk.reports.figures import summarize
from omnidesk.reports.fold import SYSTEM_ACTORS, person
from omnidesk.reports.recompute import recompute
from omnidesk.reports.sql import QueueCalendars, read_raw
from tests.reportkit import _NATIONAL, BASE_MS, context, seed_records

DAY = date(2026, 3, 1)


def story() -> list[dict[str, str]]:
    """Sara answers and resolves one ticket, the survey goes out; Omar transfers another
    that the SLA engine then escalates; nobody answers the second one."""
    out: list[dict[str, str]] = []

    def ev(kind: str, tid: str, minute: int, actor: str, queue: str = "backoffice", **f: str):
        out.append({"type": kind, "ticket": tid, "queue": queue, "channel": "email",
                    "actor": actor, "ts": str(BASE_MS + minute * 60_000), **f})  # fmt: skip

    ev("ticket_opened", "OD-1", 0, "intake", customer="C-1", segment="consumer")
    ev("routed", "OD-1", 0, "router", rule="cr", sla_policy="standard")
    ev("assigned", "OD-1", 1, "assignment", agent="sara")
    ev("replied", "OD-1", 5, "sara", message="M-1")
    ev("status_changed", "OD-1", 9, "sara", **{"from": "new", "to": "resolved"})
    ev("replied", "OD-1", 10, "csat", message="M-2")  # the survey
    ev("ticket_opened", "OD-2", 20, "intake", customer="C-2", segment="consumer")
    ev("routed", "OD-2", 20, "router", rule="cr", sla_policy="standard")
    ev("assigned", "OD-2", 21, "assignment", agent="omar")
    ev("transferred", "OD-2", 22, "omar", queue="branch-riyadh", **{"from": "backoffice"})
    ev("escalated", "OD-2", 40, "sla", queue="branch-jeddah", **{"from": "branch-riyadh"})
    ev("status_changed", "OD-2", 50, "system", queue="branch-jeddah",
       **{"from": "new", "to": "resolved"})  # fmt: skip
    ev("replied", "OD-2", 51, "csat", queue="branch-jeddah", message="M-3")
    return out


@pytest.fixture
def both(pg_url: str) -> list[dict]:
    """The story's figures from the SQL over PostgreSQL, then from the recomputation."""
    events = story()
    ctx = context()
    with psycopg.connect(pg_url) as conn:
        seed_records(conn, events)
        stored = read_raw(conn, ctx, DAY, DAY, {}, QueueCalendars(default=_NATIONAL))
    again = recompute(events, DAY, DAY, {}, ctx)
    return [summarize(raw, DAY, DAY, {}) for raw in (stored, again)]


def test_the_csat_survey_is_no_agent_and_no_reply(both) -> None:
    for figures in both:
        agents = figures["by"]["agent"]
        assert "csat" not in agents
        assert figures["totals"]["replies"] == 1  # Sara's only
        # OD-2 was never answered: the survey is not its first response
        assert figures["totals"]["first_response"]["n"] == 1
        assert agents["sara"]["first_response"]["n"] == 1


def test_a_transfer_is_credited_to_the_agent_who_made_it(both) -> None:
    for figures in both:
        agents = figures["by"]["agent"]
        assert figures["totals"]["transfers"] == 2
        assert agents["omar"]["transfers"] == 1
        # the escalation was the SLA engine's: nobody's, and no "sla" agent appears
        assert "sla" not in agents and agents[""]["transfers"] == 1


def test_system_actors_are_nobody() -> None:
    assert {"csat", "sla", "omnidesk", "deliver", "intake", "assignment"} <= SYSTEM_ACTORS
    assert person("csat") == "" and person(None) == "" and person("sara") == "sara"
