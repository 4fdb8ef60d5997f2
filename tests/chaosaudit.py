"""Where every chaos payload ended up (the accounting half of tests/chaoskit.py).

Each payload carries a unique marker (``CHX<run>-<source>-<n>``) in its subject or text.
`StoreWatcher` follows the events stream and notes when each marker's message is stored,
which gives the recovery times; `count_markers` is the final, authoritative count over every
ticket's messages; `broker_places` and `quarantine_markers` say where a marker that is not
in the store is instead, so a failure names the path that dropped it.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterable

import redis

MARKER = re.compile(r"CHX[0-9a-f]{6}-[dwi]-\d{5}")
MARKER_BYTES = re.compile(MARKER.pattern.encode())
STORED_EVENTS = frozenset({"ticket_opened", "message_added"})
WATCH_GROUP = "chaos-watch"
STALE_HEARTBEAT_MS = 5_000  # a worker silent this long is taken for dead in the diagnosis


def markers_in(text: str | bytes | None) -> set[str]:
    if not text:
        return set()
    if isinstance(text, bytes):
        return {m.decode() for m in MARKER_BYTES.findall(text)}
    return set(MARKER.findall(text))


def client_for(url: str) -> redis.Redis:
    """A client that gives up quickly: the harness polls through Redis outages."""
    return redis.Redis.from_url(
        url, decode_responses=True, socket_timeout=5, socket_connect_timeout=2
    )


class StoreWatcher(threading.Thread):
    """Follows ``P:events`` and notes, per marker, the monotonic time its message was first
    seen stored and the ids of every message that carries it. Redis outages are waited out:
    the stream is persistent, so reading resumes after the last id seen."""

    def __init__(self, redis_url: str, prefix: str, every_s: float = 0.25) -> None:
        super().__init__(name="chaos-store-watcher", daemon=True)
        self.redis_url = redis_url
        self.prefix = prefix
        self.every_ms = int(every_s * 1000)
        self.first_seen: dict[str, float] = {}
        self.messages: defaultdict[str, set[str]] = defaultdict(set)
        self._lock = threading.Lock()
        self._halt = threading.Event()

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=10)

    def seen(self) -> dict[str, float]:
        with self._lock:
            return dict(self.first_seen)

    def attach(self) -> None:
        """Join the stream as a consumer group of its own before anything is added: the
        daemon trims the stream behind every group, so no entry goes before it is read
        here, however far this thread lags on a loaded machine."""
        client = client_for(self.redis_url)
        try:
            client.xgroup_create(f"{self.prefix}:events", WATCH_GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def run(self) -> None:
        client = client_for(self.redis_url)
        key = f"{self.prefix}:events"
        own_pending = False  # after an error: entries delivered here but not yet noted
        while not self._halt.is_set():
            try:
                start = "0" if own_pending else ">"
                reply = client.xreadgroup(
                    WATCH_GROUP, "watcher", {key: start}, count=1000, block=self.every_ms
                )
                entries = [(eid, f) for _, batch in reply for eid, f in batch if f]
                if own_pending and not entries:
                    own_pending = False
                if entries:
                    self._note(client, entries)
                    client.xack(key, WATCH_GROUP, *[eid for eid, _ in entries])
            except redis.RedisError:
                own_pending = True  # a Redis restart mid-read: read what was delivered again
                self._halt.wait(0.2)

    def _note(self, client: redis.Redis, entries: list[tuple[str, dict[str, str]]]) -> None:
        mids = [f["message"] for _, f in entries if f.get("type") in STORED_EVENTS]
        if not mids:
            return
        pipe = client.pipeline(transaction=False)
        for mid in mids:
            pipe.hmget(f"{self.prefix}:msg:{mid}", "subject", "text")
        now = time.monotonic()
        with self._lock:
            for mid, (subject, text) in zip(mids, pipe.execute(), strict=True):
                for marker in markers_in(subject) | markers_in(text):
                    self.first_seen.setdefault(marker, now)
                    self.messages[marker].add(mid)


def count_markers(client: redis.Redis, prefix: str, chunk: int = 500) -> Counter[str]:
    """How many stored messages carry each marker, over every ticket in the store."""
    tickets = client.zrange(f"{prefix}:tickets", 0, -1)
    mids: list[str] = []
    for part in _chunks(tickets, chunk):
        pipe = client.pipeline(transaction=False)
        for tid in part:
            pipe.lrange(f"{prefix}:ticket:{tid}:msgs", 0, -1)
        for found in pipe.execute():
            mids.extend(found)
    counts: Counter[str] = Counter()
    for part in _chunks(mids, chunk):
        pipe = client.pipeline(transaction=False)
        for mid in part:
            pipe.hmget(f"{prefix}:msg:{mid}", "subject", "text")
        for subject, text in pipe.execute():
            counts.update(markers_in(subject) | markers_in(text))
    return counts


def live_brokers(client: redis.Redis, prefix: str, fresh_ms: int = 1_500) -> dict[str, int]:
    """Brokers with a heartbeat within `fresh_ms` (workers, and a daemon that sends) -> how
    many `ingest` messages each holds. A fault is armed on this, so it lands while batches
    are in a worker's hands."""
    ns = f"{prefix}:dramatiq"
    now_ms = time.time() * 1000
    live = [w for w, beat in client.zrange(f"{ns}:__heartbeats__", 0, -1, withscores=True)
            if now_ms - beat <= fresh_ms]  # fmt: skip
    pipe = client.pipeline(transaction=False)
    for worker in live:
        pipe.scard(f"{ns}:__acks__.{worker}.ingest")
    return dict(zip(live, pipe.execute(), strict=True))


def broker_places(client: redis.Redis, prefix: str) -> dict[str, str]:
    """Marker -> where its dramatiq message is: queued, waiting for a retry, held by a
    worker (live, or silent: dead), or dead-lettered. Only the Redis broker is read."""
    ns = f"{prefix}:dramatiq"
    now_ms = int(time.time() * 1000)
    beats = dict(client.zrange(f"{ns}:__heartbeats__", 0, -1, withscores=True))
    holder: dict[str, str] = {}
    for key in client.scan_iter(match=f"{ns}:__acks__.*", count=1000):
        worker = key[len(f"{ns}:__acks__.") :].split(".", 1)[0]
        for message_id in client.smembers(key):
            holder[message_id] = worker
    places: dict[str, str] = {}
    for key in client.scan_iter(match=f"{ns}:*.msgs", count=1000):
        queue = key[len(ns) + 1 : -len(".msgs")]
        for message_id, body in client.hscan_iter(key):
            state = _message_state(queue, holder.get(message_id), beats, now_ms)
            for marker in _batch_markers(body):
                places.setdefault(marker, state)
    return places


def _message_state(queue: str, worker: str | None, beats: dict[str, float], now_ms: int) -> str:
    if queue.endswith(".XQ"):
        return f"dead-lettered in {queue}"
    if worker is not None:
        silent_ms = now_ms - int(beats.get(worker, 0))
        if silent_ms > STALE_HEARTBEAT_MS:
            return (
                f"held by dead worker {worker[:8]} in {queue} "
                f"(no heartbeat for {silent_ms / 1000:.0f} s)"
            )
        return f"being processed by worker {worker[:8]} in {queue}"
    if queue.endswith(".DQ"):
        return f"waiting for a retry in {queue}"
    return f"queued in {queue}"


def _batch_markers(body: str) -> set[str]:
    """Markers in one dramatiq message: its first argument is an `ingest` batch, a JSON
    list of raw payloads whose bytes travel as base64."""
    try:
        args = json.loads(body).get("args") or []
        items = json.loads(args[0]) if args and isinstance(args[0], str) else []
    except (ValueError, AttributeError):
        return markers_in(body)
    found: set[str] = set()
    for item in items if isinstance(items, list) else []:
        payload = item.get("payload", "") if isinstance(item, dict) else ""
        try:
            found |= markers_in(base64.b64decode(payload))
        except (binascii.Error, ValueError, TypeError):
            found |= markers_in(str(payload))
    return found


def quarantine_markers(client: redis.Redis, prefix: str) -> dict[str, str]:
    """Marker -> the quarantine item and reason it sits under."""
    binary = redis.Redis(connection_pool=redis.ConnectionPool(
        **{**client.connection_pool.connection_kwargs, "decode_responses": False}
    ))  # fmt: skip
    found: dict[str, str] = {}
    try:
        for qid in client.zrange(f"{prefix}:quarantine", 0, -1):
            payload, reason = binary.hmget(f"{prefix}:quarantine:{qid}", "payload", "reason")
            why = (reason or b"?").decode(errors="replace")
            for marker in markers_in(payload or b""):
                found[marker] = f"quarantined as {qid} ({why})"
    finally:
        binary.close()
    return found


def _chunks(items: list[str], size: int) -> Iterable[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
