"""Benchmark: agents claiming and resolving tickets through the agents API of a real daemon.

    .venv/bin/python bench/claim.py [--tickets 5000] [--agents 50] [--rounds 3]
        [--think-ms 15] [--procs 2] [--quick]

It starts `omnidesk run` from a generated config (four backoffice queues, `--agents` agents
of two queues each, capacity 5), gives every agent a bearer token (`Tokens.create`, what
`omnidesk agents token NAME` runs), and each agent does what the console does: POST
/v1/claims (201 with the ticket, 204 when nothing waits), then POST
/v1/tickets/{id}/resolve, until its queues are empty. Agents are coroutines on aiohttp,
spread over `--procs` client processes. Tickets are opened through the real intake (Lua)
in the four queues with mixed priorities, before each side of each round.

Two sides, interleaved in rounds on freshly seeded equal loads (capacity, agents, capacity,
agents, ...) so machine noise hits both alike:
  capacity: closed loop, no think time: the API's claim+resolve capacity
    (`capacity_claims_per_s`); latency there is mostly queueing (every agent in flight).
  agents: the agent model, `--think-ms` between claim and resolve; it cannot exceed
    agents / think time (printed), so compare it with that bound, not read it as capacity.
claims_per_s is claims+resolves per second from the start signal until the last agent saw
204; p50/p99 time each claim request (HTTP round trip) of the agent model. Figures are
medians over rounds (rates) or pooled (latencies).

Checked, exit status 1 on a miss: no ticket handed out twice (`double_claims`, from the
claims every agent saw), every seeded ticket claimed and resolved exactly once (the 200s
of resolve, the status_changed -> resolved events in the stream, which a consumer group of
the bench's keeps from being trimmed, and the ticket's status),
and no answer but 201/204 to a claim and 200 to a resolve.

Redis: OMNIDESK_BENCH_REDIS (default redis://127.0.0.1:6379/0) under a key prefix of its
own, deleted afterwards (no other key is touched); `--own-redis` starts a redis-server on
a free port instead. The last line is one JSON object: {"claims_per_s", "p50_ms", "p99_ms",
"double_claims", "capacity_claims_per_s", ...}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.benchkit import (  # noqa: E402
    clean_up_on_signals,
    free_port,
    percentile,
    private_redis,
    wait_until_up,
)
from omnidesk.agents.tokens import Tokens  # noqa: E402
from omnidesk.intake import Intake  # noqa: E402
from omnidesk.model import (  # noqa: E402
    Author,
    Channel,
    Decision,
    Identity,
    IdentityKind,
    Inbound,
    Language,
    Priority,
)
from omnidesk.store import Store  # noqa: E402

QUEUES = ["q0", "q1", "q2", "q3"]
PRIORITIES = [Priority.LOW, Priority.NORMAL, Priority.NORMAL, Priority.HIGH, Priority.URGENT]
CAPACITY = 5


def start_redis(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    """A redis-server of our own on a free port (`--own-redis`)."""
    proc, port = private_redis(workdir)
    return proc, f"redis://127.0.0.1:{port}/0"


def agent_ids(agents: int) -> list[str]:
    return [f"a{i:02d}" for i in range(agents)]


def config_yaml(*, redis_url: str, prefix: str, state: Path, port: int, agents: int) -> str:
    """The daemon's config: four backoffice queues without CSAT (a resolve sends no survey)
    and agents of two neighbouring queues each."""
    lines = [
        "service:",
        f"  redis_url: {redis_url}",
        f"  key_prefix: {prefix}",
        f"  state_dir: {state}",
        f"  http_port: {port}",
        "queues:",
        *(f"  {q}: {{kind: backoffice, csat: false}}" for q in QUEUES),
        "default: {queue: q0}",
        "agents:",
    ]
    for i, agent in enumerate(agent_ids(agents)):
        queues = f"[{QUEUES[i % 4]}, {QUEUES[(i + 1) % 4]}]"
        lines.append(f"  - {{id: {agent}, queues: {queues}, capacity: {CAPACITY}}}")
    return "\n".join(lines) + "\n"


def start_daemon(config: Path, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "omnidesk", "run", "--config", str(config), "--workers", "1",
         "--drain-timeout", "10"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=log.open("ab"),
    )  # fmt: skip


def seed(store: Store, tickets: int, tag: str) -> list[str]:
    """Open `tickets` tickets through the real intake, round-robin over the queues with
    mixed priorities; returns their ids."""
    intake = Intake(store)
    now = datetime.now(UTC)
    ids: list[str] = []
    batch: list[tuple[Inbound, Decision]] = []
    for i in range(tickets):
        inbound = Inbound(
            channel=Channel.WEB,
            account="bench",
            external_id=f"{tag}-{i}",
            received_at=now,
            author=Author(name=f"C{i}", identities=[Identity(IdentityKind.EMAIL, f"c{i}@x.sa")]),
            text=f"question {i}",
            language=Language.EN,
        )
        batch.append((inbound, Decision(queue=QUEUES[i % 4], priority=PRIORITIES[i % 5])))
        if len(batch) == 1000 or i == tickets - 1:
            ids += [result.ticket_id for result in intake.many(batch)]
            batch = []
    return ids


# ---------------------------------------------------------------- the agents (clients)


@dataclass
class AgentTally:
    """What one agent saw."""

    claim_ms: list[float] = field(default_factory=list)
    claimed: list[str] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)


async def agent_loop(
    session: aiohttp.ClientSession, base: str, token: str, think_s: float
) -> AgentTally:
    """Claim, think, resolve, until a claim answers 204 (nothing waiting)."""
    tally = AgentTally()
    auth = {"Authorization": f"Bearer {token}"}
    while True:
        started = time.perf_counter()
        async with session.post(f"{base}/v1/claims", json={}, headers=auth) as response:
            status = response.status
            data = await response.json() if status == 201 else None
        elapsed_ms = (time.perf_counter() - started) * 1000
        if status == 204:
            return tally
        if status != 201 or data is None:
            tally.errors[f"claim {status}"] += 1
            return tally  # a refusal would repeat; the checks count the tickets left
        tally.claim_ms.append(elapsed_ms)
        ticket = data["ticket"]["id"]
        tally.claimed.append(ticket)
        if think_s:
            await asyncio.sleep(think_s)  # the agent reads the ticket and answers
        async with session.post(f"{base}/v1/tickets/{ticket}/resolve", headers=auth) as response:
            await response.read()
            if response.status == 200:
                tally.resolved.append(ticket)
            else:
                tally.errors[f"resolve {response.status}"] += 1


async def agents_main(base: str, tokens: list[str], think_s: float, start: Any) -> AgentTally:
    connector = aiohttp.TCPConnector(limit=len(tokens) + 4, keepalive_timeout=2)
    async with aiohttp.ClientSession(connector=connector) as session:
        async with session.get(f"{base}/healthz") as response:  # connections warm
            await response.read()
        await asyncio.to_thread(start.wait)
        tallies = await asyncio.gather(*(agent_loop(session, base, t, think_s) for t in tokens))
    total = AgentTally()
    for tally in tallies:
        total.claim_ms += tally.claim_ms
        total.claimed += tally.claimed
        total.resolved += tally.resolved
        total.errors.update(tally.errors)
    return total


def client_process(base: str, tokens: list[str], think_s: float, start: Any, out: Any) -> None:
    tally = asyncio.run(agents_main(base, tokens, think_s, start))
    out.put((tally.claim_ms, tally.claimed, tally.resolved, dict(tally.errors)))


@dataclass
class Side:
    """One side of one round: rate, latencies and what the checks found."""

    rate: float
    claim_ms: list[float]
    double_claims: int
    problems: list[str]


def run_side(
    base: str, store: Store, tokens: list[str], think_s: float, procs: int, tickets: int, tag: str
) -> Side:
    """Seed `tickets`, let the agents (in `procs` processes) empty the queues, check."""
    ids = seed(store, tickets, tag)
    events = store.key("events")
    last = store.r.xrevrange(events, count=1)
    since = last[0][0] if last else "0-0"
    ctx = mp.get_context("fork")
    groups = [tokens[i::procs] for i in range(procs) if tokens[i::procs]]
    start = ctx.Barrier(len(groups) + 1)
    out = ctx.Queue()
    workers = [
        ctx.Process(target=client_process, args=(base, group, think_s, start, out))
        for group in groups
    ]
    for worker in workers:
        worker.start()
    start.wait(timeout=60)
    t0 = time.perf_counter()
    results = [out.get(timeout=900) for _ in workers]
    elapsed = time.perf_counter() - t0
    for worker in workers:
        worker.join(timeout=30)
    claim_ms = [x for r in results for x in r[0]]
    claimed = Counter(t for r in results for t in r[1])
    resolved = Counter(t for r in results for t in r[2])
    errors: Counter[str] = Counter()
    for r in results:
        errors.update(r[3])
    double = sum(c - 1 for c in claimed.values() if c > 1)
    expected = set(ids)
    problems = []
    if double:
        problems.append(f"{double} double claims")
    if errors:
        problems.append(f"answers other than 201/204/200: {dict(errors)}")
    if set(claimed) != expected:
        problems.append(f"{len(expected - set(claimed))} tickets never claimed, "
                        f"{len(set(claimed) - expected)} claimed from elsewhere")  # fmt: skip
    if set(resolved) != expected or any(c > 1 for c in resolved.values()):
        problems.append(f"{len(expected - set(resolved))} tickets not resolved, "
                        f"{sum(1 for c in resolved.values() if c > 1)} resolved twice")  # fmt: skip
    changes = resolve_events(store, since)
    if set(changes) != expected or any(c != 1 for c in changes.values()):
        problems.append(f"events: {len(expected - set(changes))} tickets without a resolve "
                        f"event, {sum(1 for c in changes.values() if c > 1)} with two")  # fmt: skip
    pipe = store.r.pipeline(transaction=False)
    for tid in ids:
        pipe.hget(store.key("ticket", tid), "status")
    not_resolved = sum(1 for status in pipe.execute() if status != "resolved")
    if not_resolved:
        problems.append(f"{not_resolved} tickets not in status resolved")
    return Side(sum(claimed.values()) / elapsed, claim_ms, double, problems)


def resolve_events(store: Store, since: str) -> Counter[str]:
    """How many status_changed-to-resolved events each ticket has after stream id `since`."""
    events = store.key("events")
    changes: Counter[str] = Counter()
    cursor = since
    while page := store.r.xrange(events, min=f"({cursor}", count=10_000):
        for _, f in page:
            if f.get("type") == "status_changed" and f.get("to") == "resolved":
                changes[f["ticket"]] += 1
        cursor = page[-1][0]
    return changes


def describe(name: str, side: Side) -> str:
    p50, p99 = percentile(side.claim_ms, 0.5), percentile(side.claim_ms, 0.99)
    return (f"{name}: {side.rate:,.0f} claims+resolves/s; claim p50 {p50:.1f} ms, "
            f"p99 {p99:.1f} ms; {', '.join(side.problems) or 'checks ok'}")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=5000, help="per side and round")
    parser.add_argument("--agents", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--think-ms", type=float, default=15.0, help="the agent model's")
    parser.add_argument("--procs", type=int, default=2, help="client processes")
    parser.add_argument("--own-redis", action="store_true", help="a redis-server of its own")
    parser.add_argument("--quick", action="store_true", help="a few seconds (tests)")
    args = parser.parse_args(argv)
    clean_up_on_signals()
    if args.quick:
        args.tickets, args.agents, args.rounds = min(args.tickets, 120), min(args.agents, 8), 1
    think_s = args.think_ms / 1000
    tmp = Path(tempfile.mkdtemp(prefix="omnidesk-bench-claim-"))
    own_redis = None
    redis_url = os.environ.get("OMNIDESK_BENCH_REDIS", "redis://127.0.0.1:6379/0")
    if args.own_redis:
        own_redis, redis_url = start_redis(tmp)
    prefix = f"bench-claim-{uuid.uuid4().hex[:8]}"
    port = free_port()
    config = tmp / "config.yaml"
    config.write_text(
        config_yaml(redis_url=redis_url, prefix=prefix, state=tmp / "state", port=port,
                    agents=args.agents),
        "utf-8",
    )  # fmt: skip
    log = tmp / "daemon.log"
    store = Store.from_url(redis_url, prefix)
    daemon = start_daemon(config, log)
    base = f"http://127.0.0.1:{port}"
    capacity: list[Side] = []
    model: list[Side] = []
    try:
        asyncio.run(wait_until_up(base, [daemon], 60))
        tokens = [Tokens(store).create(agent) for agent in agent_ids(args.agents)]
        # the daemon trims the events stream behind its consumers; a group of ours that
        # never reads keeps every event from here on for the checks
        store.r.xgroup_create(store.key("events"), "bench-claim-audit", id="$", mkstream=True)
        print(f"daemon up on {base} (Redis {redis_url}, prefix {prefix}); {args.agents} agents, "
              f"{args.tickets:,} tickets per side and round", flush=True)  # fmt: skip
        for k in range(args.rounds):
            print(f"round {k + 1} of {args.rounds} (load average {os.getloadavg()[0]:.1f}):")
            side = run_side(base, store, tokens, 0.0, args.procs, args.tickets, f"c{k}")
            print("  " + describe("capacity (closed loop, no think time)", side), flush=True)
            capacity.append(side)
            side = run_side(base, store, tokens, think_s, args.procs, args.tickets, f"m{k}")
            print("  " + describe(f"agents ({args.think_ms:g} ms think time)", side), flush=True)
            model.append(side)
    except Exception:
        print(log.read_text("utf-8", "replace")[-3000:], file=sys.stderr)
        raise
    finally:
        daemon.terminate()
        daemon.wait(timeout=30)
        store.delete_all()
        store.r.close()
        if own_redis is not None:
            own_redis.terminate()
            own_redis.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)

    rate = statistics.median(s.rate for s in model)
    capacity_rate = statistics.median(s.rate for s in capacity)
    model_ms = [x for s in model for x in s.claim_ms]
    capacity_ms = [x for s in capacity for x in s.claim_ms]
    double = sum(s.double_claims for s in (*capacity, *model))
    problems = [p for s in (*capacity, *model) for p in s.problems]
    bound = args.agents / think_s if think_s else float("inf")
    print(f"capacity {capacity_rate:,.0f}/s (rounds: "
          f"{', '.join(f'{s.rate:,.0f}' for s in capacity)}); agent model {rate:,.0f}/s "
          f"(rounds: {', '.join(f'{s.rate:,.0f}' for s in model)}), which think time alone "
          f"caps at {bound:,.0f}/s")  # fmt: skip
    loadavg = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"machine: {os.cpu_count()} cores, load average now {loadavg} (the daemon, the "
          "clients and Redis share them with any other work)")  # fmt: skip
    print(f"check: 0 double claims, every ticket claimed and resolved exactly once: "
          f"{'ok' if not problems else 'MISSED: ' + '; '.join(problems)}")  # fmt: skip
    print(json.dumps({
        "claims_per_s": round(rate, 1),
        "p50_ms": round(percentile(model_ms, 0.5), 3),
        "p99_ms": round(percentile(model_ms, 0.99), 3),
        "double_claims": double,
        "capacity_claims_per_s": round(capacity_rate, 1),
        "capacity_p50_ms": round(percentile(capacity_ms, 0.5), 3),
        "capacity_p99_ms": round(percentile(capacity_ms, 0.99), 3),
        "think_ms": args.think_ms,
        "think_bound_claims_per_s": round(bound, 1) if think_s else None,
        "agents": args.agents,
        "tickets_per_side": args.tickets,
        "rounds": args.rounds,
        "checks_passed": not problems,
    }))  # fmt: skip
    return 0 if not problems else 1


if __name__ == "__main__":
    raise SystemExit(main())
