"""Live events for the console and the dashboard (in the core, so the agents and reports
plugins share one reader without importing each other): GET /v1/events/stream, Server-Sent
Events of what happens to the tickets of the agent's queues (a new message, a transfer, a
claim, a delivery status, an SLA warning or breach, ...), each within a second or two.

One `EventHub` per process reads the Redis events stream with plain XREAD (no consumer
group: every browser sees everything) and fans each entry out to the subscribers, so a
hundred open consoles cost one Redis connection. The SSE id is the stream id: a browser
that reconnects sends it back as Last-Event-ID and gets what it missed, from the stream,
or from PostgreSQL's `events` for entries the records writer has already trimmed; where
neither can prove nothing is missing, it gets a `resync` event (reload the view).
A subscriber too slow to keep up is cut off and resumes the same way.
Each stream checks its token every `heartbeat_s` by the clock, however busy (a revoked
token gets `logout`), and reads the agent's queues from the config as it is now.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from omnidesk.errors import OmnideskError, StoreUnavailable
from omnidesk.events import EventType
from omnidesk.replies import entries
from omnidesk.store import Store
from omnidesk.text import display_safe_tree

log = logging.getLogger("omnidesk.agents.events")

Entry = tuple[str, dict[str, str]]

# what the console shows live; others (presence, tokens, routing internals) are not sent.
# `acknowledged` and `status_replied` are the messages the system sends by itself (a receipt,
# a status answer: omnidesk.outbound.send_automatic): a message on the ticket like a reply.
LIVE_TYPES = frozenset(
    {
        EventType.TICKET_OPENED, EventType.MESSAGE_ADDED, EventType.MESSAGE_EDITED,
        EventType.REPLIED, EventType.NOTED, EventType.DELIVERY, EventType.ACKNOWLEDGED,
        EventType.STATUS_REPLIED, EventType.ASSIGNED, EventType.TRANSFERRED, EventType.ESCALATED,
        EventType.STATUS_CHANGED, EventType.MERGED, EventType.PRIORITY_CHANGED, EventType.TAGGED,
        EventType.SLA_WARNED, EventType.SLA_BREACHED, EventType.CSAT, EventType.CUSTOMER_CHANGED,
        EventType.GUIDE_ANSWERED, EventType.RELEASED,
    }
)  # fmt: skip
HEARTBEAT_S = 15.0
RETRY_MS = 2000  # EventSource's reconnect delay
SUBSCRIBER_BACKLOG = 1000  # entries waiting for one slow browser before it is cut off
MAX_REPLAY = 10_000  # entries a reconnect may replay; more: resync
MAX_REPLAY_AGE = timedelta(days=1)  # a Last-Event-ID older than this: resync


def stream_pos(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def valid_id(value: str) -> bool:
    ms, dash, seq = value.partition("-")
    return ms.isdigit() and len(ms) <= 15 and (not dash or (seq.isdigit() and len(seq) <= 15))


def visible(fields: dict[str, str], queues: set[str], agent: str = "") -> bool:
    """An entry the agent may see: a live type on a ticket of one of its queues (a transfer
    also to the queue it left), or a call it answered (its screen-pop, for it alone)."""
    if fields.get("type") == EventType.CALL_ANSWERED:
        return bool(agent) and fields.get("agent") == agent
    if fields.get("type") not in LIVE_TYPES or not fields.get("ticket"):
        return False
    return fields.get("queue") in queues or (
        fields.get("type") in (EventType.TRANSFERRED, EventType.ESCALATED)
        and fields.get("from") in queues
    )


def frame(entry_id: str, fields: dict[str, str]) -> bytes:
    """One SSE message: id (the stream id), event (its type), data (the fields as JSON)."""
    data = {k: v for k, v in fields.items() if "token" not in k}
    data = display_safe_tree({"id": entry_id, **data})
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return f"id: {entry_id}\nevent: {fields.get('type', 'message')}\ndata: {text}\n\n".encode()


@dataclass(eq=False)
class Subscriber:
    queue: asyncio.Queue[Entry | None] = field(
        default_factory=lambda: asyncio.Queue(SUBSCRIBER_BACKLOG)
    )
    overflowed: bool = False


class EventHub:
    """The process's one reader of the events stream, started by the first subscriber."""

    def __init__(
        self, store: Store, *, block_ms: int = 1000, heartbeat_s: float = HEARTBEAT_S
    ) -> None:
        self.store = store
        self.block_ms = block_ms
        self.heartbeat_s = heartbeat_s  # each stream's keep-alive comment and token check
        self.subscribers: set[Subscriber] = set()
        self.position: str | None = None  # the last stream id read
        self._task: asyncio.Task[None] | None = None

    def subscribe(self) -> Subscriber:
        self._ensure_running()
        sub = Subscriber()
        self.subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        self.subscribers.discard(sub)

    async def started(self, timeout_s: float = 5.0) -> str:
        """Wait until the reader knows where the stream ends (the first subscriber's events
        are the ones after that); StoreUnavailable when Redis does not answer in time."""
        self._ensure_running()
        deadline = asyncio.get_running_loop().time() + timeout_s
        while self.position is None:
            if asyncio.get_running_loop().time() > deadline:
                raise StoreUnavailable("the events stream cannot be read")
            await asyncio.sleep(0.01)
        return self.position

    def _ensure_running(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for sub in list(self.subscribers):
            sub.overflowed = True  # its stream ends; a browser reconnects elsewhere
            with contextlib.suppress(asyncio.QueueFull):
                sub.queue.put_nowait(None)
        self.subscribers.clear()

    async def _run(self) -> None:
        while True:
            try:
                if self.position is None:
                    self.position = await asyncio.to_thread(self._tail)
                entries = await asyncio.to_thread(
                    self.store.events, self.position, 500, self.block_ms
                )
            except OmnideskError as exc:  # Redis away: the consoles wait, then catch up
                log.warning("events stream: %s", exc)
                await asyncio.sleep(1.0)
                continue
            except Exception:  # a bug: logged; the reader must outlive it for every console
                log.exception("events stream reader")
                await asyncio.sleep(1.0)
                continue
            for entry in entries:
                self.position = entry[0]
                self._fan_out(entry)

    def _tail(self) -> str:
        last = entries(self.store.r.xrevrange(self.store.keys.events(), count=1))
        return last[0][0] if last else "0-0"

    def _fan_out(self, entry: Entry) -> None:
        for sub in list(self.subscribers):
            try:
                sub.queue.put_nowait(entry)
            except asyncio.QueueFull:  # cut off: it reconnects with Last-Event-ID
                sub.overflowed = True
                self.subscribers.discard(sub)


def replay(store: Store, records: Any, since: str) -> list[Entry] | None:
    """The entries after `since`, oldest first: from the stream, and from PostgreSQL for the
    part already trimmed from it. None when that cannot be done completely (no records,
    too many): the client must reload instead."""
    key = store.keys.events()
    if stream_pos(since)[0] < (datetime.now(UTC) - MAX_REPLAY_AGE).timestamp() * 1000:
        return None
    head = entries(store.r.xrange(key, count=1))
    first = head[0][0] if head else None
    out: list[Entry] = []
    if first is None or stream_pos(first) > stream_pos(since):
        # the stream starts after `since`: what lies between was trimmed, once written
        older = _recorded_between(records, since, first)
        if older is None:
            return None
        out += older
    out += entries(store.r.xrange(key, min=f"({since}", count=MAX_REPLAY + 1))
    return out if len(out) <= MAX_REPLAY else None


def _recorded_between(records: Any, after: str, before: str | None) -> list[Entry] | None:
    """Events PostgreSQL holds with stream ids in (after, before), as stream entries
    (before None: up to now)."""
    if records is None:
        return None
    before = before or f"{int(datetime.now(UTC).timestamp() * 1000) + 1000}-0"
    low = datetime.fromtimestamp(stream_pos(after)[0] / 1000, UTC) - timedelta(seconds=1)
    high = datetime.fromtimestamp(stream_pos(before)[0] / 1000, UTC) + timedelta(seconds=1)
    try:
        with records.connection() as conn:
            rows = conn.execute(
                "SELECT stream_id, type, ticket_id, queue, channel, actor, data FROM events"
                " WHERE ts >= %s AND ts <= %s ORDER BY ts LIMIT %s",
                (low, high, MAX_REPLAY + 1),
            ).fetchall()
    except OmnideskError as exc:
        log.warning("events replay from the records: %s", exc)
        return None
    if len(rows) > MAX_REPLAY:
        return None
    lo, hi = stream_pos(after), stream_pos(before)
    out = []
    for stream_id, kind, ticket, queue, channel, actor, data in rows:
        if not lo < stream_pos(stream_id) < hi:
            continue
        fields = {str(k): str(v) for k, v in (data or {}).items()}
        fields.update(type=kind, ticket=ticket or "", queue=queue or "", channel=channel or "",
                      actor=actor or "")  # fmt: skip
        out.append((stream_id, fields))
    out.sort(key=lambda e: stream_pos(e[0]))
    return out


# The app key under which the agents plugin keeps its hub, for the dashboard to share.
HUB_KEY = web.AppKey("events_hub", EventHub)
