"""Redis memory per open and per closed ticket, as the daemon grows a store; PostgreSQL's.

    python bench/memory.py [--tickets 200000] [--open 10000] [--window 2]

It starts its own redis-server on a free port (no persistence; nothing shared is touched)
and its own PostgreSQL database on the server `$OMNIDESK_TEST_PG` names (default
postgresql://postgres@127.0.0.1:5432/postgres), dropped at the end. Everything runs the
service's own code, as the daemon does:

- intake through `Runtime.for_service(...).process` in batches of 100 (the SLA clocks'
  hooks included): e-mail and web-form tickets, a third of them from a pool of repeat
  customers, follow-ups by e-mail on open tickets (In-Reply-To threading);
- agents' replies (`add_outbound_message`, then `set_delivery`) and resolutions (`set_status`
  resolved, one in ten closed) of the oldest open tickets, so that `--open` stay open;
- the records writer (`RecordWriter.drain`) and the eviction pass (`Eviction.run`, reopen
  window `--window` seconds, and the same for the customers' grace, 10 minutes in the
  daemon) every 1,000 tickets; intake looks senders up in PostgreSQL (omnidesk.known) as the
  daemon's runtime does.

At half the tickets and at the end, it waits out the reopen window, drains and evicts, and
reads INFO used_memory. Figures:
- redis_bytes_per_open: (used_memory at the half - the empty store's) / open tickets;
- redis_bytes_per_closed: (used_memory at the end - at the half) / tickets done in between
  (the same number open at both: what a closed ticket leaves behind; target 0);
- redis_growth_ratio: (end - half) / (half - empty) (target < 0.05);
- pg_bytes_per_ticket: pg_database_size growth / tickets.
Before the JSON line it prints where an open ticket's bytes go (MEMORY USAGE of a sample,
by key type, with the shared hashes' entries pro rata). The raw payload archive (disk) is
left out: it is neither Redis nor PostgreSQL.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
import zlib
from collections import defaultdict
from datetime import timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import psycopg
import redis
from psycopg.conninfo import make_conninfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.benchkit import clean_up_on_signals
from omnidesk.configload import parse_config
from omnidesk.db.evict import Eviction
from omnidesk.db.migrate import upgrade
from omnidesk.db.records import Records
from omnidesk.db.writer import RecordWriter
from omnidesk.model import Channel, Outbound, RawPayload, utcnow
from omnidesk.runtime import Runtime
from omnidesk.store import LISTPACK_VALUE, Store

BATCH = 100  # intake batch, as the daemon's ingest actor takes them
ROUND = 1000  # tickets between writer drains and eviction passes
PREFIX = "od"
CONFIG = """
version: 1
service:
  redis_url: {redis_url}
  key_prefix: od
  state_dir: {state}
sla_policies:
  standard: {{first_response: 4h, resolution: 5d}}
  fast: {{first_response: 1h}}
queues:
  general: {{kind: contact_centre, sla_policy: standard}}
  cr: {{kind: backoffice, service: commercial_registration, sla_policy: standard}}
  complaints: {{kind: backoffice, sla_policy: fast}}
rules:
  - id: cr
    when:
      keywords: [السجل التجاري, commercial registration]
    then: {{queue: cr}}
  - id: complaints
    when:
      keywords: [شكوى, complaint]
    then: {{queue: complaints, priority: high}}
default: {{queue: general, sla_policy: standard}}
"""
TEXTS = [
    "أرغب في تجديد السجل التجاري للمؤسسة، وقد انتهت صلاحيته الشهر الماضي. ما المطلوب؟",
    "شكوى على محل في جدة رفض استرجاع المبلغ رغم وجود الفاتورة وسياسة الاسترجاع واضحة.",
    "My commercial registration renewal has been pending for two weeks. Please advise.",
    "I would like to file a complaint about a shop that refused to honour the warranty.",
    "استفسار عن حجز الاسم التجاري وهل يمكن نقله إلى سجل آخر بعد الدمج.",
    "Question about the trademark application fees and how long the review takes.",
]
PG_SERVER = os.environ.get("OMNIDESK_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


# ---------------------------------------------------------------- services


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_redis(workdir: str, listpack: int) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no",
         "--dir", workdir, "--bind", "127.0.0.1",
         "--hash-max-listpack-value", str(listpack)],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    client = redis.Redis(port=port)
    for _ in range(200):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    return proc, f"redis://127.0.0.1:{port}/0"


def create_database() -> tuple[str, str]:
    name = f"od_bench_mem_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_SERVER, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    info = make_conninfo(PG_SERVER, dbname=name)
    upgrade(info)
    return name, info


def drop_database(name: str) -> None:
    with psycopg.connect(PG_SERVER, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def pg_size(info: str) -> int:
    with psycopg.connect(info) as conn:
        row = conn.execute("SELECT pg_database_size(current_database())").fetchone()
        return int(row[0]) if row else 0


def used_memory(r: redis.Redis) -> int:
    return int(r.info("memory")["used_memory"])


# ---------------------------------------------------------------- traffic


def email(message_id: str, text: str, sender: str, in_reply_to: str | None = None) -> RawPayload:
    msg = EmailMessage()
    msg["From"] = f"Customer <{sender}>"
    msg["To"] = "care@mc.gov.sa"
    msg["Subject"] = "Re: your request" if in_reply_to else "Commercial registration"
    msg["Date"] = format_datetime(utcnow())
    msg["Message-ID"] = f"<{message_id}>"
    if in_reply_to:
        msg["In-Reply-To"] = f"<{in_reply_to}>"
        msg["References"] = f"<{in_reply_to}>"
    msg.set_content(text)
    return RawPayload(
        channel=Channel.EMAIL,
        account="care",
        payload=msg.as_bytes(),
        received_at=utcnow(),
        source=f"imap:INBOX:{message_id}",
    )


def phone_of(sender: str) -> str:
    """A customer's one phone number: the same sender gives the same number each time (a new
    number per form would pile identities on repeat customers, which people do not do)."""
    return f"+96650{zlib.crc32(sender.encode()) % 10**7:07d}"  # 050: a valid mobile prefix


def web(text: str, sender: str, phone: str) -> RawPayload:
    form = {"message": text, "email": sender, "phone": phone, "name": "مراجع"}
    return RawPayload(
        channel=Channel.WEB,
        account="site",
        payload=json.dumps(form, ensure_ascii=False).encode(),
        received_at=utcnow(),
        source="bench:web",
    )


class Traffic:
    """New tickets, follow-ups and resolutions, keeping `open_target` tickets open."""

    def __init__(self, runtime: Runtime, open_target: int, seed: int = 7) -> None:
        self.runtime = runtime
        self.store = runtime.store
        self.open_target = open_target
        self.rnd = random.Random(seed)
        self.opened = 0
        self.n = 0
        self.open: dict[str, str | None] = {}  # ticket id -> its first e-mail's Message-ID
        self.repeat = [f"repeat{i}@example.sa" for i in range(2000)]

    def sender(self) -> str:
        if self.rnd.random() < 0.33:
            return self.rnd.choice(self.repeat)
        self.n += 1
        return f"c{self.n}@example.sa"

    def new_batch(self) -> None:
        payloads, mids = [], []
        for _ in range(BATCH):
            self.n += 1
            text = self.rnd.choice(TEXTS) + f" ({self.n})"
            sender = self.sender()
            if self.rnd.random() < 0.6:
                mid = f"m{self.n}.{uuid.uuid4().hex[:8]}@mail.example.sa"
                payloads.append(email(mid, text, sender))
                mids.append(mid)
            else:
                payloads.append(web(text, sender, phone_of(sender)))
                mids.append(None)
        results = self.runtime.process(payloads).results
        for result, mid in zip(results, mids, strict=True):
            if result.outcome == "opened" and result.ticket_id:
                self.open[result.ticket_id] = mid
                self.opened += 1

    def follow_ups(self, count: int) -> None:
        threads = [(t, m) for t, m in self.open.items() if m]
        payloads = []
        for _, mid in self.rnd.sample(threads, min(count, len(threads))):
            self.n += 1
            sender = f"f{self.n}@example.sa"  # threading is by In-Reply-To, not by sender
            reply = f"r{self.n}.{uuid.uuid4().hex[:8]}@mail.example.sa"
            payloads.append(email(reply, "Any news on this? " + TEXTS[0], sender, mid))
        if payloads:
            self.runtime.process(payloads)

    def resolve_oldest(self) -> None:
        """Reply to and resolve (one in ten: close) the oldest open tickets over the target."""
        extra = len(self.open) - self.open_target
        if extra <= 0:
            return
        for tid in list(self.open)[:extra]:
            mid = self.open.pop(tid)
            out = Outbound(
                id=f"M-out-{uuid.uuid4().hex[:12]}",
                ticket_id=tid,
                channel="email" if mid else "web",
                account="care" if mid else "site",
                text="شكرا لتواصلكم، تم تنفيذ الطلب. Thank you, your request is done.",
            )
            self.store.add_outbound_message(out, author="agent1")
            self.store.set_delivery(out.id, "sent")
            self.store.set_status(tid, "closed" if self.rnd.random() < 0.1 else "resolved")


# ---------------------------------------------------------------- where the bytes go


def breakdown(
    r: redis.Redis, store: Store, open_ids: list[str], sample: int = 200
) -> dict[str, int]:
    """Mean bytes per open ticket by kind of key, from MEMORY USAGE of a sample; the shared
    hashes (thread, seen, identity) and zsets pro rata to their entries."""
    ids = random.Random(1).sample(open_ids, min(sample, len(open_ids)))
    out: dict[str, float] = defaultdict(float)
    for tid in ids:
        key = store.key("ticket", tid)
        out["ticket hash"] += r.memory_usage(key, samples=0) or 0
        out["ticket :msgs list"] += r.memory_usage(key + ":msgs", samples=0) or 0
        out["ticket :posts list"] += r.memory_usage(key + ":posts", samples=0) or 0
        for mid in r.lrange(key + ":msgs", 0, -1):
            out["message hashes"] += r.memory_usage(store.key("msg", mid.decode()), samples=0) or 0
        cid = r.hget(key, "customer_id")
        if cid:
            ckey = store.key("customer", cid.decode())
            n = max(1, r.zcard(ckey + ":tickets"))
            for suffix in ("", ":ids", ":tickets"):
                out["customer keys (shared by its tickets)"] += (
                    r.memory_usage(ckey + suffix, samples=0) or 0
                ) / n
    result = {k: round(v / max(1, len(ids))) for k, v in out.items()}
    n_open = max(1, len(open_ids))
    for name in ("thread", "seen", "identity", "tickets", "customers"):
        result[f"{name} (share)"] = round((r.memory_usage(store.key(name)) or 0) / n_open)
    sla = 0
    for key in r.scan_iter(match=store.key("sla", "*"), count=1000):
        sla += r.memory_usage(key, samples=0) or 0
    result["sla records (share)"] = round(sla / n_open)
    idx = 0
    for pattern in ("status:*", "queue:*"):
        for key in r.scan_iter(match=store.key(pattern), count=1000):
            idx += r.memory_usage(key, samples=0) or 0
    result["status/queue indexes (share)"] = round(idx / n_open)
    result["events stream"] = round((r.memory_usage(store.key("events")) or 0) / n_open)
    return result


def settle(writer: RecordWriter, eviction: Eviction, window: float) -> None:
    """Wait out the reopen window, write everything, evict what is due."""
    time.sleep(window + 0.2)
    asyncio.run(writer.drain())
    eviction.run()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tickets", type=int, default=200_000, help="tickets at the end")
    ap.add_argument("--open", type=int, default=None, help="kept open (default: tickets / 20)")
    ap.add_argument("--window", type=float, default=2.0, help="reopen window, seconds")
    ap.add_argument(
        "--listpack",
        type=int,
        default=LISTPACK_VALUE,
        help="redis hash-max-listpack-value (64: Redis's default; the service advises 1024)",
    )
    ap.add_argument("--keep", action="store_true", help="keep the PostgreSQL database")
    args = ap.parse_args()
    clean_up_on_signals()  # the redis-server child and the database go too
    # a writer drain and an eviction pass every `step` tickets (1,000; less in a quick run)
    step = min(ROUND, max(BATCH, args.tickets // 10 // BATCH * BATCH))
    total = max(2 * step, args.tickets // step * step)
    half = total // 2
    open_target = args.open if args.open is not None else max(100, total // 20)
    workdir = tempfile.mkdtemp(prefix="bench-memory-")
    proc, redis_url = start_redis(workdir, args.listpack)
    dbname, info = create_database()
    started = time.monotonic()
    try:
        loaded = parse_config(
            CONFIG.format(redis_url=redis_url, state=workdir), Path(workdir) / "bench.yaml"
        )
        store = Store.from_url(redis_url, PREFIX)
        records = Records(info)
        runtime = Runtime.for_service(loaded, store=store, records=records)
        runtime.archive = None  # raw payloads go to disk: neither Redis nor PostgreSQL
        window = timedelta(seconds=args.window)
        runtime.intake.reopen_window = window
        eviction = Eviction(store, records, reopen_window=window, customer_grace=window)
        writer = RecordWriter(store, info)
        r = redis.Redis.from_url(redis_url)
        r.memory_purge()
        mem0, pg0 = used_memory(r), pg_size(info)
        traffic = Traffic(runtime, open_target)
        marks: dict[str, Any] = {}
        while traffic.opened < total:
            for _ in range(step // BATCH):
                traffic.new_batch()
                traffic.follow_ups(BATCH // 5)
                traffic.resolve_oldest()
            asyncio.run(writer.drain())
            eviction.run()
            if traffic.opened >= half and "half" not in marks:
                settle(writer, eviction, args.window)
                marks["half"] = (used_memory(r), traffic.opened, len(traffic.open))
                print(
                    f"{traffic.opened} tickets, {len(traffic.open)} open: "
                    f"redis {marks['half'][0] - mem0} B over the empty store "
                    f"({time.monotonic() - started:.0f} s)",
                    file=sys.stderr,
                )
        settle(writer, eviction, args.window)
        mem_end, tickets_end, open_end = used_memory(r), traffic.opened, len(traffic.open)
        mem_half, tickets_half, open_half = marks["half"]
        in_redis = int(store.r.zcard(store.key("tickets")))
        with psycopg.connect(info) as conn:
            row = conn.execute("SELECT count(*), count(*) FILTER (WHERE hot) FROM tickets")
            pg_tickets, pg_hot = row.fetchone() or (0, 0)
        pg_bytes = pg_size(info) - pg0
        parts = breakdown(r, store, list(traffic.open))
        print(
            f"{tickets_end} tickets ({pg_tickets} in PostgreSQL, {pg_hot} hot), {open_end} open,"
            f" {in_redis} in Redis; {time.monotonic() - started:.0f} s",
            file=sys.stderr,
        )
        print("bytes per open ticket, by key (MEMORY USAGE, sampled):", file=sys.stderr)
        for name, size in sorted(parts.items(), key=lambda kv: -kv[1]):
            print(f"  {name:40s} {size:7d}", file=sys.stderr)
        per_open = (mem_half - mem0) / max(1, open_half)
        done_between = (tickets_end - open_end) - (tickets_half - open_half)
        per_closed = max(0.0, (mem_end - mem_half) / max(1, done_between))
        figures = {
            "redis_bytes_per_open": round(per_open),
            "redis_bytes_per_closed": round(per_closed, 1),
            "redis_growth_ratio": round((mem_end - mem_half) / max(1, mem_half - mem0), 4),
            "pg_bytes_per_ticket": round(pg_bytes / max(1, tickets_end)),
        }
        print(f"redis hash-max-listpack-value {args.listpack}", file=sys.stderr)
        print(json.dumps(figures))
        return 0
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)
        if not args.keep:
            drop_database(dbname)


if __name__ == "__main__":
    raise SystemExit(main())
