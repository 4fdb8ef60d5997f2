"""Web-form load benchmark: the real daemon (`omnidesk run`, its HTTP server and its in-process
workers) under N concurrent web-form clients for a bounded time.

Each client posts a form with a subject of its own, waits for the answer, and posts again;
on 503 it honours Retry-After (capped by the end of the run), as a well-behaved form would.
A monitor samples the ingest backlog (messages queued, in flight or delayed) every 0.1 s.
After the load, the bench waits until every accepted form is a ticket.

Checked, not just measured:
  * every accepted form (201 with its ticket, or 202 queued when every intake slot was
    busy) became exactly one ticket (each accepted subject appears once; nothing extra);
  * every 503 carries Retry-After, and no other 5xx appears (`errors_5xx` counts those);
  * nothing went to the quarantine.

Figures: accepted_per_s (201/202s over the load time), processed_per_s (tickets made from the
start of the load until the last accepted form was a ticket), p99_ms (of the 201/202 answers),
max_backlog, refused (503s), errors_5xx. Target on the 2-core machine: >= 150 accepted/s with
p99 < 500 ms while processing keeps up (processed_per_s close to accepted_per_s, bounded
backlog). The last line is one JSON object.

    .venv/bin/python bench/web_load.py [--clients 50] [--seconds 20] [--workers 2] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.benchkit import (  # noqa: E402
    clean_up_on_signals,
    free_port,
    percentile,
    reference_body,
    wait_until_up,
)
from omnidesk.store import Store  # noqa: E402

JSON = {"Content-Type": "application/json"}
DAEMON = [sys.executable, "-m", "omnidesk", "run"]
REDIS_URL = os.environ.get("OMNIDESK_BENCH_REDIS", "redis://127.0.0.1:6379/0")
MESSAGES = [
    "أرغب في تقديم شكوى على متجر إلكتروني لم يسلم الطلب",
    "Question about renewing my commercial registration",
    "استفسار عن حالة طلب تسجيل العلامة التجارية",
    "Complaint about a refund that never arrived",
]


@dataclass
class Tally:
    """What the clients saw."""

    accepted: list[str] = field(default_factory=list)  # subjects answered 201 or 202
    accepted_ms: list[float] = field(default_factory=list)
    refused: int = 0  # 503 with Retry-After
    refused_without_retry_after: int = 0
    errors_5xx: int = 0  # any other 5xx
    unanswered: list[str] = field(default_factory=list)  # connection dropped: outcome unknown
    other: dict[int, int] = field(default_factory=dict)  # any other status


def config_file(source: Path, out: Path, *, prefix: str, port: int, max_backlog: int) -> Path:
    """The reference config with a `service:` block of our own (bench.benchkit.reference_body
    drops its own `service:`, rule `tests:` and scheduled `reports:`)."""
    service = (
        f"service:\n  redis_url: {REDIS_URL}\n  key_prefix: {prefix}\n"
        f"  state_dir: {out.parent / 'state'}\n  http_port: {port}\n"
        f"  intake_max_backlog: {max_backlog}\n"
        "  web_form: {posts_per_ip: 1000000000}\n"  # every client posts from 127.0.0.1
    )
    out.write_text(service + reference_body(source), "utf-8")
    return out


def start_daemon(config: Path, workers: int, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [*DAEMON, "--config", str(config), "--workers", str(workers), "--drain-timeout", "10"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log.open("ab"),
    )


def form(run: str, client: int, n: int) -> tuple[str, bytes]:
    subject = f"bench {run} c{client} n{n}"
    body = {
        "name": f"Client {client}",
        "email": f"c{client}.n{n}.{run}@example.sa",
        "subject": subject,
        "message": MESSAGES[(client + n) % len(MESSAGES)],
    }
    return subject, json.dumps(body, ensure_ascii=False).encode()


async def client_loop(
    session: aiohttp.ClientSession, url: str, run: str, client: int, end: float, tally: Tally
) -> None:
    n = 0
    while time.monotonic() < end:
        subject, body = form(run, client, n)
        n += 1
        started = time.perf_counter()
        try:
            async with session.post(url, data=body, headers=JSON) as r:
                await r.read()
                status, retry_after = r.status, r.headers.get("Retry-After")
        except aiohttp.ClientError:  # not acknowledged: a real form would post it again
            tally.unanswered.append(subject)
            continue
        elapsed_ms = (time.perf_counter() - started) * 1000
        if status in (201, 202):
            tally.accepted.append(subject)
            tally.accepted_ms.append(elapsed_ms)
        elif status == 503 and retry_after:
            tally.refused += 1
            await asyncio.sleep(min(float(retry_after), max(0.0, end - time.monotonic())))
        elif status == 503:
            tally.refused_without_retry_after += 1
        elif status >= 500:
            tally.errors_5xx += 1
        else:
            tally.other[status] = tally.other.get(status, 0) + 1


async def watch_backlog(client: redis.Redis, keys: list[str], stop: asyncio.Event) -> int:
    """The largest ingest backlog seen, sampled every 0.1 s until `stop`."""
    highest = 0
    while not stop.is_set():
        pipe = client.pipeline(transaction=False)
        for key in keys:
            pipe.hlen(key)
        highest = max(highest, sum(await asyncio.to_thread(pipe.execute)))
        await asyncio.sleep(0.1)
    return highest


async def drive(args: argparse.Namespace, base: str, prefix: str, store: Store) -> dict:
    run = uuid.uuid4().hex[:8]
    url = f"{base}/v1/intake/web"
    tally = Tally()
    client = redis.Redis.from_url(REDIS_URL)
    keys = [f"{prefix}:dramatiq:ingest.msgs", f"{prefix}:dramatiq:ingest.DQ.msgs"]
    stop = asyncio.Event()
    # idle connections are let go before the server's 5 s keep-alive would close them under us
    connector = aiohttp.TCPConnector(limit=args.clients, keepalive_timeout=2)
    async with aiohttp.ClientSession(connector=connector) as session:
        # warm-up: imports, compiled rules and the first connections, before the clock starts
        for i in range(5):
            async with session.post(url, data=form("warm" + run, 0, i)[1]) as r:
                assert r.status in (201, 202), f"warm-up answered {r.status}"
        assert await wait_tickets(store, 5, 60), "the workers did not start"
        base_count = store.ticket_count()

        monitor = asyncio.create_task(watch_backlog(client, keys, stop))
        started = time.monotonic()
        end = started + args.seconds
        await asyncio.gather(
            *(client_loop(session, url, run, c, end, tally) for c in range(args.clients))
        )
        load_s = time.monotonic() - started
        caught_up = await wait_tickets(store, base_count + len(tally.accepted), args.drain)
        processed_s = time.monotonic() - started
        stop.set()
        max_backlog = await monitor
    made = store.ticket_count() - base_count
    assert caught_up, f"{len(tally.accepted)} accepted, but only {made} tickets"
    check_tickets(store, run, tally.accepted, tally.unanswered)
    return {
        "accepted_per_s": round(len(tally.accepted) / load_s, 1),
        "processed_per_s": round(made / processed_s, 1),
        "p99_ms": round(percentile(tally.accepted_ms, 0.99), 1),
        "max_backlog": max_backlog,
        "errors_5xx": tally.errors_5xx,
        "p50_ms": round(statistics.median(tally.accepted_ms), 1) if tally.accepted_ms else 0.0,
        "accepted": len(tally.accepted),
        "refused_503": tally.refused,
        "refused_503_without_retry_after": tally.refused_without_retry_after,
        "other_status": tally.other,
        "unanswered": len(tally.unanswered),
        "tickets": made,
        "lost": 0,  # checked above: every accepted form is a ticket
        "clients": args.clients,
        "seconds": args.seconds,
        "workers": args.workers,
    }


async def wait_tickets(store: Store, count: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await asyncio.to_thread(store.ticket_count) >= count:
            return True
        await asyncio.sleep(0.05)
    return False


def check_tickets(store: Store, run: str, accepted: list[str], unanswered: list[str]) -> None:
    """Every accepted form is exactly one ticket, and no ticket came from nowhere (a form
    whose connection dropped may or may not be one)."""
    tag = f"bench {run} "
    subjects = [t.subject for t in store.list_tickets(limit=10**7) if t.subject.startswith(tag)]
    assert len(subjects) == len(set(subjects)), "a form became two tickets"
    missing = set(accepted) - set(subjects)
    assert not missing, f"{len(missing)} accepted forms have no ticket"
    strays = set(subjects) - set(accepted) - set(unanswered)
    assert not strays, f"{len(strays)} tickets were never posted"
    assert store.counts()["quarantine"] == 0, "forms went to the quarantine"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=50, help="concurrent web-form clients")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the load")
    parser.add_argument("--workers", type=int, default=2, help="the daemon's worker threads")
    parser.add_argument("--max-backlog", type=int, default=2000, help="intake_max_backlog")
    parser.add_argument("--drain", type=float, default=120.0, help="seconds to catch up after")
    parser.add_argument("--config", default=None, help="default: the reference queue_config.yaml")
    parser.add_argument("--quick", action="store_true", help="a few seconds, few clients (tests)")
    args = parser.parse_args(argv)
    clean_up_on_signals()
    if args.quick:  # small, and with a low bound so the 503 path runs too
        args.clients, args.seconds, args.drain = min(args.clients, 4), min(args.seconds, 2.0), 60.0
        args.max_backlog = min(args.max_backlog, 200)

    source = Path(args.config or ROOT / "queue_config.yaml")
    prefix = f"bench-{uuid.uuid4().hex[:10]}"
    tmp = Path(tempfile.mkdtemp(prefix="omnidesk-webload-"))
    port = free_port()
    config = config_file(
        source, tmp / "config.yaml", prefix=prefix, port=port, max_backlog=args.max_backlog
    )
    log = tmp / "daemon.log"
    daemon = start_daemon(config, args.workers, log)
    store = Store.from_url(REDIS_URL, prefix)
    base = f"http://127.0.0.1:{port}"
    try:
        asyncio.run(wait_until_up(base, [daemon], 60))
        print(f"daemon up on {base}; {args.clients} clients for {args.seconds:.0f}s", flush=True)
        figures = asyncio.run(drive(args, base, prefix, store))
    except AssertionError:
        print(log.read_text("utf-8", "replace")[-3000:], file=sys.stderr)
        raise
    finally:
        daemon.terminate()
        daemon.wait(timeout=30)
        store.delete_all()
        shutil.rmtree(tmp, ignore_errors=True)  # its config and log (printed above on a failure)
    figures["loadavg"] = [round(x, 2) for x in os.getloadavg()]
    print(
        f"accepted {figures['accepted_per_s']}/s (p50 {figures['p50_ms']} ms, p99 "
        f"{figures['p99_ms']} ms), processed {figures['processed_per_s']}/s, max backlog "
        f"{figures['max_backlog']}, 503s {figures['refused_503']}, other 5xx "
        f"{figures['errors_5xx']}; load average {figures['loadavg']}"
    )
    print("target: >= 150 accepted/s, p99 < 500 ms, processing keeping up")
    assert figures["errors_5xx"] == 0 and figures["refused_503_without_retry_after"] == 0
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
