"""End-to-end pipeline benchmark: generated chat (Telegram) and e-mail payloads handed over in
batches, one worker process, measured until every payload is a ticket in its queue.

Figures, all in one run on the same Redis:
  * tickets/s: N payloads handed over at once (batches of --batch), until N tickets exist;
  * plain_actor/s: a dramatiq actor that does nothing, one message per payload, one worker
    process with the same threads: the baseline batching has to beat (target: 3x);
  * p50/p99 arrival-to-queued latency while payloads arrive at --rate per second (target
    p99 < 1 s at 500/s): arrival is the hand-over, queued is the Redis time of the ticket's
    ``ticket_opened`` event.
The last line is one JSON object: tickets_per_s, plain_actor_per_s, ratio, p50_ms, p99_ms.

    /work/venv/bin/python bench/pipeline.py [--n 4000] [--rate 500] [--seconds 6]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

import dramatiq
import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from omnidesk.configload import load_config  # noqa: E402
from omnidesk.model import Channel, RawPayload  # noqa: E402
from omnidesk.pipeline import Pipeline, make_broker  # noqa: E402
from omnidesk.runtime import Runtime  # noqa: E402
from omnidesk.store import Store  # noqa: E402

REDIS_URL = os.environ.get("OMNIDESK_BENCH_REDIS", "redis://127.0.0.1:6379/0")
SUBJECTS = [
    "تجديد السجل التجاري",
    "شكوى على متجر إلكتروني",
    "Trademark registration status",
    "استفسار عن العلامة التجارية",
    "Complaint about a refund",
    "Question about my account",
]


def chat(i: int, tag: str) -> RawPayload:
    chat_id = 10_000_000 + i
    update = {
        "update_id": i,
        "message": {
            "message_id": 1,
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private", "first_name": "عميل"},
            "from": {"id": chat_id, "is_bot": False, "first_name": "عميل", "language_code": "ar"},
            "text": f"{SUBJECTS[i % len(SUBJECTS)]} - طلب رقم {i} {tag}",
        },
    }
    return RawPayload(
        channel=Channel.TELEGRAM,
        account="bot",
        payload=json.dumps(update, ensure_ascii=False).encode(),
        received_at=datetime.now(UTC),
        source=f"bench:telegram:{i}",
    )


def mail(i: int, tag: str) -> RawPayload:
    msg = EmailMessage()
    msg["From"] = f"Customer {i} <customer{i}@example.sa>"
    msg["To"] = "care@mc.gov.sa"
    msg["Subject"] = SUBJECTS[i % len(SUBJECTS)]
    msg["Date"] = format_datetime(datetime.now(UTC))
    msg["Message-ID"] = f"<bench-{tag}-{i}@example.sa>"
    msg.set_content(f"السلام عليكم،\nلدي {SUBJECTS[i % len(SUBJECTS)]} رقم {i}.\nشكرا\n")
    return RawPayload(
        channel=Channel.EMAIL,
        account="care",
        payload=msg.as_bytes(),
        received_at=datetime.now(UTC),
        source=f"bench:email:{i}",
    )


def payloads(n: int, tag: str, start: int = 0) -> list[RawPayload]:
    return [(chat if i % 2 else mail)(i, tag) for i in range(start, start + n)]


def wait_for(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return False


def config_file(prefix: str, state_dir: Path, source: Path, out: Path) -> Path:
    """The config with our own `service:` block; the original's `service:` and its rule
    `tests:` (whose file paths are relative to the original's folder) are dropped."""
    lines, skipping = [], False
    for line in source.read_text("utf-8").splitlines():
        if line.startswith(("service:", "tests:")):
            skipping = True
            continue
        if skipping and (line.startswith((" ", "\t")) or not line.strip()):
            continue
        skipping = False
        lines.append(line)
    body = "\n".join(lines)
    service = (
        f"service:\n  redis_url: {REDIS_URL}\n  key_prefix: {prefix}\n  state_dir: {state_dir}\n"
    )
    out.write_text(service + body + "\n", "utf-8")
    return out


def start_worker(args: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, *args], cwd=ROOT)


def measure_plain(n: int, namespace: str, threads: int) -> float:
    """A do-nothing actor, one message per payload, one worker process."""
    broker = make_broker(REDIS_URL, namespace)
    noop = dramatiq.actor(lambda: None, broker=broker, actor_name="noop", queue_name="noop")
    proc = start_worker([__file__, "--noop-worker", namespace, "--threads", str(threads)])
    try:
        time.sleep(1.5)  # let the worker import and connect, as for the pipeline below
        start = time.perf_counter()
        for _ in range(n):
            noop.send()
        broker.join("noop", timeout=120_000)
        return n / (time.perf_counter() - start)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        broker.close()


def noop_worker(namespace: str, threads: int) -> None:
    broker = make_broker(REDIS_URL, namespace)
    dramatiq.actor(lambda: None, broker=broker, actor_name="noop", queue_name="noop")
    worker = dramatiq.Worker(broker, worker_threads=threads, worker_timeout=100)
    worker.start()
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        worker.stop()


def latencies(store: Store, arrivals: dict[str, float]) -> list[float]:
    """Per ticket: Redis time of its ticket_opened event minus the hand-over of its payload."""
    events = []
    last = "0-0"
    while True:
        batch = store.events(since=last, count=5000)
        if not batch:
            break
        events += [(eid, e) for eid, e in batch if e["type"] == "ticket_opened"]
        last = batch[-1][0]
    pipe = store.r.pipeline(transaction=False)
    for _, e in events:
        pipe.hget(store.key("msg", e["message"]), "raw_ref")
    out = []
    for (eid, _), raw_ref in zip(events, pipe.execute(), strict=True):
        if raw_ref in arrivals:
            out.append(int(eid.split("-")[0]) / 1000 - arrivals[raw_ref])
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=4000, help="payloads for the throughput run")
    parser.add_argument("--rate", type=float, default=500.0, help="arrivals/s, latency run")
    parser.add_argument("--seconds", type=float, default=6.0, help="length of the latency run")
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--config", default=None)
    parser.add_argument("--noop-worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.noop_worker:
        noop_worker(args.noop_worker, args.threads)
        return 0

    source = Path(args.config or ROOT / "queue_config.yaml")
    if not source.exists():
        source = ROOT / "tests" / "fixtures" / "config" / "store.yaml"
    prefix = f"bench-{uuid.uuid4().hex[:10]}"
    tmp = Path(tempfile.mkdtemp(prefix="omnidesk-bench-"))
    cfg_path = config_file(prefix, tmp / "state", source, tmp / "config.yaml")
    loaded = load_config(cfg_path)
    runtime = Runtime.from_config(loaded)
    store = runtime.store
    broker = make_broker(REDIS_URL, prefix)
    pipe = Pipeline(runtime, broker)
    plain_ns = f"{prefix}-plain"
    worker = start_worker(
        ["-m", "omnidesk.pipeline", "--config", str(cfg_path), "--threads", str(args.threads)]
    )
    try:
        print(f"config {source.name}; {args.n} payloads (half Telegram, half e-mail)")
        # warm-up: the worker has imported and compiled everything before the clock starts
        asyncio.run(pipe.handover(payloads(20, "warm", start=10**7)))
        assert wait_for(lambda: store.ticket_count() >= 20, 60), "worker did not start"
        base = store.ticket_count()

        items = payloads(args.n, "tp")
        start = time.perf_counter()
        asyncio.run(pipe.handover(items, batch_size=args.batch))
        done = wait_for(lambda: store.ticket_count() >= base + args.n, 300)
        elapsed = time.perf_counter() - start
        assert done, f"only {store.ticket_count() - base} of {args.n} tickets"
        tickets_per_s = args.n / elapsed
        print(f"pipeline: {args.n} tickets in {elapsed:.2f}s = {tickets_per_s:.0f} tickets/s")

        # latency at a steady arrival rate, batches as a connector would form them (20 ms)
        total = int(args.rate * args.seconds)
        arrivals: dict[str, float] = {}
        base = store.ticket_count()
        per_tick, sent = max(1, round(args.rate * 0.02)), 0
        t0 = time.time()
        while sent < total:
            chunk = payloads(min(per_tick, total - sent), "lat", start=10**6 + sent)
            now = time.time()
            for raw in chunk:
                arrivals[raw.sha256] = now
            pipe.handover_sync(chunk, batch_size=args.batch)
            sent += len(chunk)
            time.sleep(max(0.0, t0 + (sent / args.rate) - time.time()))
        assert wait_for(lambda: store.ticket_count() >= base + total, 120), "latency run stalled"
        lat = sorted(latencies(store, arrivals))
        p50 = statistics.median(lat) * 1000
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000
        print(
            f"latency at {args.rate:.0f}/s over {len(lat)} tickets: p50 {p50:.1f} ms, "
            f"p99 {p99:.1f} ms"
        )
        depths = {q: d for q, d in store.queue_depths().items() if d}
        print(f"queues: {depths}")
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        broker.close()

    try:
        plain = measure_plain(args.n, plain_ns, args.threads)
        print(f"plain dramatiq actor: {plain:.0f} messages/s (one message per payload)")
        ratio = tickets_per_s / plain
        print(f"ratio: {ratio:.2f}x the plain actor (target >= 3x); p99 target < 1000 ms")
    finally:
        store.delete_all()
        Store.from_url(REDIS_URL, plain_ns).delete_all()
        client = redis.Redis.from_url(REDIS_URL)
        for key in client.scan_iter(match=f"{plain_ns}:*", count=1000):
            client.delete(key)
    print(
        json.dumps(
            {
                "tickets_per_s": round(tickets_per_s, 1),
                "plain_actor_per_s": round(plain, 1),
                "ratio": round(ratio, 2),
                "p50_ms": round(p50, 1),
                "p99_ms": round(p99, 1),
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
