"""Benchmark: 50 concurrent agents claiming and resolving 20,000 tickets on the real Redis.

Tickets are opened through the real intake (Lua) in four queues with mixed priorities.
Each agent (capacity 5) is a thread that claims the most urgent ticket of its two queues
(claim.lua), spends THINK_S on it, and resolves it (status + release in one round trip),
until the queues are empty. Without think time 50 closed-loop agents measure only their own
queueing on a 2-core machine (Little's law: 50 in flight at 2,000/s is 25 ms each). Agents are
spread over worker processes (default 4) so the GIL of one process does not become the
latency being measured. Every claim's latency is timed around the script call. A double
claim is a ticket handed out twice; counted from the claims every agent saw.

Baseline in the same run: a bare ZPOPMIN on one ZSET with the same concurrency, the
cheapest atomic hand-out Redis has (no capacity, no urgency across queues, no events).

    /work/venv/bin/python bench/claim.py [--tickets 20000] [--agents 50] [--procs 4]
        [--think-ms 15] [--clients threads|async]

The last line is one JSON object: {"claims_per_s", "p50_ms", "p99_ms", "double_claims"}.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
import threading
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from omnidesk.agents.assign import Assigner, scripts
from omnidesk.agents.roster import Roster
from omnidesk.config import AgentConfig, QueueConfig, QueueConfigFile
from omnidesk.intake import Intake
from omnidesk.model import (
    Author,
    Channel,
    Decision,
    Identity,
    IdentityKind,
    Inbound,
    Language,
    Priority,
)
from omnidesk.store import Store

REDIS_URL = "redis://127.0.0.1:6379/0"
# A thread back from a Redis reply waits for the GIL up to this long (default 5 ms, which
# would be the latency measured); agents in a real deployment are separate clients.
SWITCH_INTERVAL_S = 0.0002
THINK_S = 0.015  # between claim and resolve (--think-ms); 0 makes it a closed-loop stress test
QUEUES = ["q0", "q1", "q2", "q3"]
PRIORITIES = [Priority.LOW, Priority.NORMAL, Priority.NORMAL, Priority.HIGH, Priority.URGENT]


def config(agents: int) -> QueueConfigFile:
    return QueueConfigFile.model_validate(
        {
            "queues": {q: QueueConfig(kind="backoffice") for q in QUEUES},
            "default": {"queue": "q0"},
            "agents": [
                AgentConfig(id=f"a{i:02d}", queues=[QUEUES[i % 4], QUEUES[(i + 1) % 4]], capacity=5)
                for i in range(agents)
            ],
        }
    )


def seed(store: Store, tickets: int, tag: str = "b") -> None:
    intake = Intake(store)
    now = datetime.now(UTC)
    batch: list[tuple[Inbound, Decision]] = []
    for i in range(tickets):
        inbound = Inbound(
            channel=Channel.WEB,
            account="bench",
            external_id=f"{tag}{i}",
            received_at=now,
            author=Author(name=f"C{i}", identities=[Identity(IdentityKind.EMAIL, f"c{i}@x.sa")]),
            text=f"question {i}",
            language=Language.EN,
        )
        decision = Decision(queue=QUEUES[i % 4], priority=PRIORITIES[i % len(PRIORITIES)])
        batch.append((inbound, decision))
        if len(batch) == 1000:
            intake.many(batch)
            batch = []
    if batch:
        intake.many(batch)


def resolve(store: Store, ticket_id: str, agent_id: str) -> None:
    """Status resolved and the slot released, in one round trip (both scripts pipelined)."""
    now = datetime.now(UTC)
    pipe = store.r.pipeline(transaction=False)
    args = [store.prefix, ticket_id, "resolved", agent_id, int(now.timestamp() * 1000)]
    store.script("set_status")(keys=[], args=[*args, now.isoformat()], client=pipe)
    scripts(store)["release"](keys=[], args=[store.prefix, ticket_id, "0"], client=pipe)
    pipe.execute()


def agent_loop(
    store: Store, assigner: Assigner, agent: AgentConfig, out: dict[str, Any], start: Any
) -> None:
    latencies: list[float] = []
    claimed: list[str] = []
    start.wait()
    while True:
        t0 = time.perf_counter()
        claim = assigner.claim(agent)
        latencies.append(time.perf_counter() - t0)
        if claim.outcome != "claimed":
            break
        claimed.append(claim.ticket_id)
        time.sleep(THINK_S)  # the agent reads the ticket and answers
        resolve(store, claim.ticket_id, agent.id)
    latencies.pop()  # the final "empty" answer is not a claim
    out[agent.id] = (latencies, claimed)


async def async_agents(prefix: str, agents: list[AgentConfig], start: Any) -> dict[str, Any]:
    """The same claim.lua and resolve, from coroutines on redis.asyncio (no GIL handoffs)."""
    import asyncio

    import redis.asyncio as aredis

    from omnidesk.store import lua

    client = aredis.Redis.from_url(REDIS_URL, decode_responses=True, max_connections=80)
    claim_lua = client.register_script(lua("claim"))
    status_lua = client.register_script(lua("set_status"))
    release_lua = client.register_script(lua("release"))
    out: dict[str, Any] = {}

    async def one(agent: AgentConfig) -> None:
        latencies: list[float] = []
        claimed: list[str] = []
        while True:
            now = datetime.now(UTC)
            now_ms = int(now.timestamp() * 1000)
            args = [prefix, agent.id, agent.capacity, now_ms, now.isoformat(), *agent.queues]
            t0 = time.perf_counter()
            reply = await claim_lua(keys=[], args=args)
            latencies.append(time.perf_counter() - t0)
            if reply[0] != "claimed":
                break
            claimed.append(reply[1])
            await asyncio.sleep(THINK_S)
            pipe = client.pipeline(transaction=False)
            await status_lua(
                keys=[],
                args=[prefix, reply[1], "resolved", agent.id, now_ms, now.isoformat()],
                client=pipe,
            )
            await release_lua(keys=[], args=[prefix, reply[1], "0"], client=pipe)
            await pipe.execute()
        latencies.pop()
        out[agent.id] = (latencies, claimed)

    await client.ping()
    await asyncio.to_thread(start.wait)
    await asyncio.gather(*(one(a) for a in agents))
    await client.aclose()
    return out


def async_entry(prefix: str, ids: list[str], agents: int, start: Any, results: Any) -> None:
    import asyncio

    roster = Roster(config(agents))
    results.put(asyncio.run(async_agents(prefix, [roster.get(a) for a in ids], start)))


def worker(prefix: str, agent_ids: list[str], agents: int, start: Any, results: Any) -> None:
    store = Store.from_url(REDIS_URL, prefix, max_connections=len(agent_ids) + 4)
    cfg = config(agents)
    assigner = Assigner(store, lambda: Roster(cfg))
    out: dict[str, Any] = {}
    threads = [
        threading.Thread(target=agent_loop, args=(store, assigner, Roster(cfg).get(a), out, start))
        for a in agent_ids
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    results.put(out)


def baseline_worker(prefix: str, n_threads: int, start: Any, results: Any) -> None:
    import redis

    client = redis.Redis.from_url(REDIS_URL, max_connections=n_threads + 4)
    key = f"{prefix}:baseline"
    got: list[float] = []
    lock = threading.Lock()

    def loop() -> None:
        mine = []
        start.wait()
        while True:
            t0 = time.perf_counter()
            popped = client.zpopmin(key)
            mine.append(time.perf_counter() - t0)
            if not popped:
                break
        mine.pop()
        with lock:
            got.extend(mine)

    threads = [threading.Thread(target=loop) for _ in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    results.put(got)


def run_procs(target: Any, args_per_proc: list[tuple[Any, ...]]) -> tuple[list[Any], float]:
    ctx = mp.get_context("fork")
    start = ctx.Barrier(len(args_per_proc) + 1)
    results = ctx.Queue()
    procs = [ctx.Process(target=target, args=(*args, start, results)) for args in args_per_proc]
    for p in procs:
        p.start()
    # each process's threads also wait on `start`: release once everything is connected
    time.sleep(1.0)
    t0 = time.perf_counter()
    start.wait()
    outs = [results.get(timeout=600) for _ in procs]
    elapsed = time.perf_counter() - t0
    for p in procs:
        p.join()
    return outs, elapsed


class ProcBarrier:
    """A per-process stand-in: the threads of one process start when the process does."""

    def __init__(self, outer: Any) -> None:
        self.outer = outer
        self.event = threading.Event()
        threading.Thread(target=self._wait, daemon=True).start()

    def _wait(self) -> None:
        self.outer.wait()
        self.event.set()

    def wait(self) -> None:
        self.event.wait()


def worker_entry(prefix: str, ids: list[str], agents: int, start: Any, results: Any) -> None:
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    worker(prefix, ids, agents, ProcBarrier(start), results)


def baseline_entry(prefix: str, n: int, start: Any, results: Any) -> None:
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    baseline_worker(prefix, n, ProcBarrier(start), results)


def solo_latencies(store: Store, tickets: int, agents: int) -> list[float]:
    """The floor: one agent claiming alone, so the figure is Redis and the client only."""
    tickets = min(tickets, 999)  # below the capacity limit of one agent
    seed(store, tickets, tag="solo")
    cfg = config(agents)
    agent = AgentConfig(id="solo", queues=QUEUES, capacity=1000)
    assigner = Assigner(store, lambda: Roster(cfg))
    out = []
    while True:
        t0 = time.perf_counter()
        claim = assigner.claim(agent, QUEUES)
        out.append(time.perf_counter() - t0)
        if claim.outcome != "claimed":
            return out[:-1]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def main() -> int:
    global THINK_S
    parser = argparse.ArgumentParser()
    parser.add_argument("--tickets", type=int, default=20_000)
    parser.add_argument("--agents", type=int, default=50)
    parser.add_argument("--procs", type=int, default=4)
    parser.add_argument("--think-ms", type=float, default=15.0)
    parser.add_argument(
        "--clients",
        choices=["async", "threads"],
        default="threads",
        help="agents as threads through Assigner (default) or coroutines on redis.asyncio",
    )
    args = parser.parse_args()
    THINK_S = args.think_ms / 1000  # read by the forked agent processes
    prefix = f"bench-claim-{uuid.uuid4().hex[:8]}"
    store = Store.from_url(REDIS_URL, prefix)
    try:
        t0 = time.perf_counter()
        seed(store, args.tickets)
        print(f"seeded {args.tickets} tickets via intake in {time.perf_counter() - t0:.1f}s")

        ids = [f"a{i:02d}" for i in range(args.agents)]
        groups = [ids[i :: args.procs] for i in range(args.procs)]
        entry = async_entry if args.clients == "async" else worker_entry
        outs, elapsed = run_procs(entry, [(prefix, g, args.agents) for g in groups if g])
        latencies: list[float] = []
        claimed: list[str] = []
        per_agent: dict[str, int] = {}
        for out in outs:
            for agent_id, (lat, got) in out.items():
                latencies += lat
                claimed += got
                per_agent[agent_id] = len(got)
        counts = Counter(claimed)
        double = sum(c - 1 for c in counts.values() if c > 1)
        missing = args.tickets - len(counts)
        rate = len(claimed) / elapsed
        p50, p99 = pct(latencies, 0.50), pct(latencies, 0.99)
        print(
            f"claim.lua: {len(claimed)} claims+resolves by {args.agents} agents in "
            f"{elapsed:.2f}s: {rate:,.0f} claims/s; latency p50 {p50:.2f} ms, "
            f"p99 {p99:.2f} ms, max {max(latencies) * 1000:.1f} ms"
        )
        print(
            f"double claims {double}, unclaimed {missing}, per agent min/max "
            f"{min(per_agent.values())}/{max(per_agent.values())}"
        )

        solo = solo_latencies(store, args.tickets, args.agents)
        print(
            f"one agent alone (no contention), {len(solo)} claims: p50 {pct(solo, 0.5):.2f} ms, "
            f"p99 {pct(solo, 0.99):.2f} ms"
        )

        pipe = store.r.pipeline(transaction=False)
        for i in range(args.tickets):
            pipe.zadd(f"{prefix}:baseline", {f"t{i}": i})
        pipe.execute()
        per = [
            args.agents // args.procs + (1 if i < args.agents % args.procs else 0)
            for i in range(args.procs)
        ]
        bouts, belapsed = run_procs(baseline_entry, [(prefix, n) for n in per if n])
        blat = [x for out in bouts for x in out]
        brate = len(blat) / belapsed
        print(
            f"baseline ZPOPMIN (pop only, no resolve): {len(blat)} pops in {belapsed:.2f}s: "
            f"{brate:,.0f}/s; p50 {pct(blat, 0.5):.2f} ms, p99 {pct(blat, 0.99):.2f} ms"
        )
        print(f"ratio claims/s to baseline pops/s: {rate / brate:.2f}")
        print(
            json.dumps(
                {
                    "claims_per_s": round(rate, 1),
                    "p50_ms": round(p50, 3),
                    "p99_ms": round(p99, 3),
                    "double_claims": double,
                }
            )
        )
        return 0 if double == 0 and missing == 0 else 1
    finally:
        store.delete_all()


if __name__ == "__main__":
    raise SystemExit(main())
