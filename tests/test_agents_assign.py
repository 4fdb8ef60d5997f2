"""Claims and push assignment on the real Redis: atomic pull under 50 threads, urgency order,
capacity, round-robin and least-loaded fairness, language match, presence, and waiting
tickets assigned when a slot frees or an agent comes online."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path

from omnidesk.model import Status
from tests.agentkit import make
from tests.services import wait_for
from tests.storekit import web

CLAIMERS = [
    {"id": f"c{i:02d}", "queues": ["general"], "capacity": 1000, "languages": ["ar", "en"]}
    for i in range(50)
]


def open_tickets(runtime, texts: list[str], batch: int = 200) -> list[str]:
    ids: list[str] = []
    payloads = [web(t, email=f"u{i}@example.sa") for i, t in enumerate(texts)]
    for start in range(0, len(payloads), batch):
        report = runtime.process(payloads[start : start + batch])
        ids += [r.ticket_id for r in report.results if r.outcome == "opened"]
    assert len(ids) == len(texts)
    return ids


def test_fifty_concurrent_claimers_get_each_ticket_exactly_once(
    prefix: str, tmp_path: Path
) -> None:
    runtime, service, _ = make(prefix, tmp_path, CLAIMERS)
    ids = open_tickets(runtime, [f"سؤال عام رقم {i}" for i in range(1000)])
    got: dict[str, list[str]] = {a["id"]: [] for a in CLAIMERS}
    start = threading.Barrier(len(CLAIMERS))

    def claimer(agent_id: str) -> None:
        agent = service.agent(agent_id)
        start.wait()
        while True:
            claim = service.assigner.claim(agent)
            if claim.outcome != "claimed":
                assert claim.outcome == "empty"
                return
            got[agent_id].append(claim.ticket_id)

    threads = [threading.Thread(target=claimer, args=(a["id"],)) for a in CLAIMERS]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    claimed = [tid for tickets in got.values() for tid in tickets]
    assert len(claimed) == 1000
    assert Counter(claimed).most_common(1)[0][1] == 1  # nobody got a ticket twice
    assert set(claimed) == set(ids)
    assert sum(1 for tickets in got.values() if tickets) > 10  # really concurrent
    store = service.store
    for agent_id, tickets in got.items():
        assert service.assigner.load(agent_id) == len(tickets)
    sample = store.get_ticket(got["c00"][0] if got["c00"] else claimed[0])
    assert sample.assignee and sample.status == Status.OPEN
    assert store.waiting("general") == []


def test_pull_takes_the_most_urgent_first_and_respects_capacity(
    prefix: str, tmp_path: Path
) -> None:
    runtime, service, _ = make(prefix, tmp_path)
    normal = open_tickets(runtime, ["a first general question"])[0]
    later = open_tickets(runtime, ["a later general question"])[0]
    urgent = open_tickets(runtime, ["another general question"])[0]
    amal = service.agent("amal")
    boss = service.agent("boss")
    service.desk.set_priority(boss, urgent, "urgent")
    order = [service.assigner.claim(amal).ticket_id for _ in range(3)]
    assert order == [urgent, normal, later]
    extra = open_tickets(runtime, ["one more question"])[0]
    assert service.assigner.claim(amal).outcome == "full"  # capacity 3
    assert service.store.waiting("general") == [extra]
    service.desk.resolve(amal, normal)
    assert service.assigner.load("amal") == 2
    claim = service.assigner.claim(amal)
    assert (claim.outcome, claim.ticket_id) == ("claimed", extra)


def online(service, *agents: str) -> None:
    for agent_id in agents:
        service.assigner.set_presence(agent_id, "online")


RR_AGENTS = [
    {"id": f"rr{i}", "queues": ["cr"], "capacity": 100, "languages": ["ar", "en"]} for i in range(3)
]


def test_round_robin_spreads_new_tickets_within_one(prefix: str, tmp_path: Path) -> None:
    runtime, service, _ = make(prefix, tmp_path, RR_AGENTS)
    online(service, "rr0", "rr1", "rr2")
    ids = open_tickets(runtime, [f"commercial registration question {i}" for i in range(31)])
    pairs = service.assigner.push("cr")
    assert sorted(t for t, _ in pairs) == sorted(ids)
    counts = Counter(agent for _, agent in pairs)
    assert set(counts) == {"rr0", "rr1", "rr2"}
    assert max(counts.values()) - min(counts.values()) <= 1
    # one at a time, as the intake hook does: still in turn
    more = []
    for i in range(6):
        open_tickets(runtime, [f"commercial registration follow {i}"])
        more += [a for _, a in service.assigner.push("cr")]
    assert Counter(more) == {"rr0": 2, "rr1": 2, "rr2": 2}
    assert len(set(more[:3])) == 3 and len(set(more[3:])) == 3  # each turn once per round


LL_AGENTS = [
    {"id": f"ll{i}", "queues": ["complaints"], "capacity": 50, "languages": ["ar", "en"]}
    for i in range(3)
]


def test_least_loaded_evens_out_unequal_loads_within_one(prefix: str, tmp_path: Path) -> None:
    runtime, service, _ = make(prefix, tmp_path, LL_AGENTS)
    online(service, "ll0")
    first = open_tickets(runtime, [f"complaint about a shop {i}" for i in range(6)])
    assert {a for _, a in service.assigner.push("complaints")} == {"ll0"}
    assert service.assigner.load("ll0") == 6
    online(service, "ll1", "ll2")
    open_tickets(runtime, [f"complaint number {i}" for i in range(13)])
    pairs = service.assigner.push("complaints")
    assert Counter(a for _, a in pairs[:12]) == {"ll1": 6, "ll2": 6}  # the idle ones first
    loads = [service.assigner.load(a) for a in ("ll0", "ll1", "ll2")]
    assert sum(loads) == 19
    assert max(loads) - min(loads) <= 1, loads
    assert len(first) == 6


def test_language_presence_and_capacity_gate_push(prefix: str, tmp_path: Path) -> None:
    agents = [
        {"id": "en1", "queues": ["cr"], "capacity": 1, "languages": ["en"]},
        {"id": "ar1", "queues": ["cr"], "capacity": 1, "languages": ["ar"]},
    ]
    runtime, service, _ = make(prefix, tmp_path, agents)
    arabic = open_tickets(runtime, ["استفسار عن السجل التجاري للمؤسسة"])
    assert service.assigner.push("cr") == []  # nobody online: it waits
    online(service, "en1")
    assert service.assigner.push("cr") == []  # an English-only agent does not get Arabic
    online(service, "ar1")
    assert service.assigner.push("cr") == [(arabic[0], "ar1")]
    second = open_tickets(runtime, ["سؤال ثان عن السجل التجاري"])
    assert service.assigner.push("cr") == []  # ar1 is at capacity 1
    assert service.store.waiting("cr") == second
    ar1 = service.agent("ar1")
    service.desk.resolve(ar1, arabic[0])  # a freed slot pulls the waiting ticket in
    assert service.store.get_ticket(second[0]).assignee == "ar1"
    assert service.store.waiting("cr") == []


def test_waiting_ticket_goes_to_an_agent_who_comes_online_and_presence_expires(
    prefix: str, tmp_path: Path
) -> None:
    runtime, service, _ = make(prefix, tmp_path, RR_AGENTS[:1])
    service.assigner.presence_ttl_s = 1
    ids = open_tickets(runtime, ["commercial registration renewal"])
    online(service, "rr0")
    assert service.assigner.presence("rr0") == "online"
    # no heartbeat: offline once the 1 s presence expires
    assert wait_for(lambda: service.assigner.presence("rr0") == "offline", timeout=5)
    assert service.assigner.heartbeat("rr0") == "offline"
    assert service.assigner.push_all() == []
    service.assigner.set_presence("rr0", "away")
    assert service.assigner.push_all() == []  # away takes nothing new
    service.assigner.set_presence("rr0", "online")
    assert service.assigner.push_for("rr0") == [(ids[0], "rr0")]
    events = [f for _, f in service.store.events() if f["type"] == "assigned"]
    assert events[-1]["agent"] == "rr0" and events[-1]["how"] == "round_robin"


def test_the_dashboard_lists_every_agent_of_the_queues_offline_ones_too(
    prefix: str, tmp_path: Path
) -> None:
    """Configured agents of the supervisor's queues, read by key (no SCAN): online, away, or
    offline once their presence expired, still with the tickets they hold; a presence key of
    no configured agent lists nobody."""
    from omnidesk.i18n import translator
    from omnidesk.reports.dashboard import Dashboard

    runtime, service, _ = make(prefix, tmp_path, RR_AGENTS[:2])
    store = service.store
    service.assigner.presence_ttl_s = 1
    online(service, "rr0")
    service.assigner.set_presence("rr1", "away")
    store.r.set(store.key("presence", "ghost"), "online")  # not configured: not listed
    (tid,) = open_tickets(runtime, ["طلب تعديل السجل التجاري"])
    store.r.zadd(store.key("agent", "rr1", "open"), {tid: 1})  # rr1 holds it
    dashboard = Dashboard(store, runtime.config.data)
    tr = translator("en")

    def listed() -> list[tuple[str, str, list[str]]]:
        rows = dashboard._agents(["cr"], tr)["list"]
        return [(a["agent"], a["presence"], [h["ticket"] for h in a["held"]]) for a in rows]

    assert listed() == [("rr0", "online", []), ("rr1", "away", [tid])]
    assert dashboard._agents(["cr"], tr)["note"] is None
    # no heartbeat: both presences expire; rr1 is offline, still holding
    expired = [("rr1", "offline", [tid]), ("rr0", "offline", [])]
    assert wait_for(lambda: listed() == expired, timeout=5), listed()
    assert dashboard._agents(["cr"], tr)["note"] == "No agent is online right now."
    assert dashboard._agents([], tr) == {
        "note": "No agent is configured for these queues.",
        "list": [],
    }
