"""The outbox writer: the Redis events stream, written into PostgreSQL.

Every change to a ticket is an event in ``P:events``, added by the same Lua script or MULTI
that made the change, so the stream is the outbox. This writer reads it through a consumer
group (``records``), takes a snapshot from Redis of every ticket, message and customer the
events name (of a recorded ticket named only by message-only events, its messages), and
writes snapshot and events into PostgreSQL in one transaction; only then does it
acknowledge the entries. So:

- exactly once across daemons: each entry goes to one consumer; an entry whose consumer
  died unacknowledged is claimed by another after `claim_idle_ms` (looked for every
  `CLAIM_EVERY_S`); writing an entry twice
  changes nothing (events are keyed by stream id, rows by id, and a snapshot older than
  the row's `synced_pos` never overwrites it);
- PostgreSQL down: nothing is acknowledged, intake goes on in Redis, the backlog is shown
  in /healthz and /metrics, and the stream is not trimmed past what was written;
- the stream is trimmed up to the oldest entry some consumer group still needs (this
  group's oldest pending or next entry, and any other group's);
  the group forgets dead daemons' consumers once they hold nothing.

Kept whole though over 500 lines: the records writer is one consumer-group loop whose steps
(read, write rows, acknowledge, trim, partitions) share one transaction and its failures.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import msgspec
import psycopg
import redis
from redis.utils import str_if_bytes

from omnidesk.db.connect import RecordsUnavailable, connect_async, is_transient, records_errors
from omnidesk.db.migrate import upgrade
from omnidesk.db.searchtext import message_document
from omnidesk.db.staging import Stage, ensure_stages, stage_rows
from omnidesk.errors import OmnideskError, StoreUnavailable
from omnidesk.events import MESSAGE_ONLY_TYPES, EventType
from omnidesk.intake import post_key
from omnidesk.model import SYSTEM_ACTORS
from omnidesk.replies import entries, read_entries, text_fields
from omnidesk.store import Store, from_ms, guarded, lua, ms

log = logging.getLogger("omnidesk.records")

GROUP = "records"
CLAIM_EVERY_S = 5.0  # how often a writer looks for a dead consumer's entries (read)
POS_SCALE = 1_000_000  # stream position as one bigint: ms * POS_SCALE + seq
# Event fields that are columns of their own; the rest go to events.data.
EVENT_COLUMNS = ("type", "ticket", "queue", "channel", "actor")

# Each batch's rows, COPYed in before one INSERT ... SELECT per table (omnidesk.db.staging).
CUSTOMER_STAGE = Stage(
    "od_stage_customers", "customers", ("id", "name", "segment", "region", "tags", "created_at")
)
IDENTITY_STAGE = Stage("od_stage_identities", "identities", ("kind", "value", "customer_id"))
TICKET_COLUMNS = (
    "id", "customer_id", "channel", "account", "queue", "status", "priority", "sla_policy",
    "rule", "assignee", "subject", "preview", "language", "segment", "region", "tags",
    "cr_number", "created_at", "updated_at", "resolved_at", "due_at", "data", "synced_pos",
)  # fmt: skip
TICKET_STAGE = Stage("od_stage_tickets", "tickets", TICKET_COLUMNS)
MESSAGE_COLUMNS = (
    "id", "ticket_id", "direction", "channel", "account", "external_id", "created_at",
    "sent_at", "author", "subject", "body", "delivery", "raw_ref", "attachments",
)  # fmt: skip
# the search document as text: PostgreSQL makes the tsvector from it in the INSERT
MESSAGE_STAGE = Stage(
    "od_stage_messages", "messages", MESSAGE_COLUMNS, ("search_text text", "synced_pos bigint")
)
EVENT_STAGE = Stage(
    "od_stage_events",
    "events",
    ("ts", "stream_id", "type", "ticket_id", "queue", "channel", "actor", "data"),
)
STAGES = (CUSTOMER_STAGE, IDENTITY_STAGE, TICKET_STAGE, MESSAGE_STAGE, EVENT_STAGE)


# the position of a ticket row written only so its messages' rows can refer to it
MESSAGES_ONLY_POS = 1


def stream_pos(entry_id: str) -> int:
    ms, _, seq = entry_id.partition("-")
    return int(ms) * POS_SCALE + int(seq or 0)


def entry_time(entry_id: str) -> datetime:
    return from_ms(int(entry_id.partition("-")[0]))


def _ts(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value)


def _ms_ts(value: str | None) -> datetime | None:
    return from_ms(int(value)) if value else None


def _json_list(value: str | None) -> list[Any]:
    if not value:
        return []
    try:
        out = msgspec.json.decode(value)
    except ValueError:
        return []
    return out if isinstance(out, list) else []


def _json_dict(value: str | None) -> dict[str, Any]:
    if not value:
        return {}
    try:
        out = msgspec.json.decode(value)
    except ValueError:
        return {}
    return out if isinstance(out, dict) else {}


@dataclass
class Snapshot:
    """What Redis holds now of everything one batch of events names."""

    tickets: dict[str, dict[str, str]] = field(default_factory=dict)
    messages: dict[str, dict[str, str]] = field(default_factory=dict)
    customers: dict[str, dict[str, str]] = field(default_factory=dict)
    identities: dict[str, set[str]] = field(default_factory=dict)  # customer -> kind:value
    # tickets PostgreSQL holds already that the batch names by message-only events alone:
    # their rows stay as they are; id -> account, for their messages' rows
    recorded: dict[str, str] = field(default_factory=dict)


def message_only_tickets(entries: Sequence[tuple[str, dict[str, str]]]) -> list[str]:
    """The tickets a batch names by message-only events alone (a receipt, its delivery):
    nothing of their rows or customers changed."""
    named = [(f["ticket"], f.get("type")) for _, f in entries if f.get("ticket")]
    changed = {tid for tid, kind in named if kind not in MESSAGE_ONLY_TYPES}
    return sorted({tid for tid, _ in named} - changed)


def status_only_messages(entries: Sequence[tuple[str, dict[str, str]]]) -> list[str]:
    """The messages a batch names only by their delivery status (`delivery`): the entry
    that added the message (a reply, a receipt) is not in this batch."""
    named = [(f["message"], f.get("type")) for _, f in entries if f.get("message")]
    added = {mid for mid, kind in named if kind != EventType.DELIVERY}
    return sorted({mid for mid, _ in named} - added)


@dataclass
class WriterState:
    """What /healthz and /metrics show of the writer."""

    up: bool | None = None  # the last round reached PostgreSQL (None: no round yet)
    backlog: int = 0  # stream entries not yet written (undelivered + pending)
    written: int = 0  # entries written by this process
    duplicates: int = 0  # messages PostgreSQL already held under another id
    failed: int = 0  # entries set aside in records:failed (they could not be written)
    error: str = ""


class RecordWriter:
    def __init__(
        self,
        store: Store,
        info: str,
        *,
        consumer: str | None = None,
        batch: int = 500,
        claim_idle_ms: int = 30_000,
        defer_s: float = 1.0,
    ) -> None:
        self.store = store
        self.info = info
        self.stream = store.keys.events()
        self.consumer = consumer or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.batch = batch
        self.claim_idle_ms = claim_idle_ms
        # Dead consumers' entries are looked for every few seconds, not at every read: Redis
        # checks each pending entry of the group against the stream, about 6 ms a call in a
        # burst (11 % of Redis's time, measured). One idle for `claim_idle_ms` is claimed
        # within `_claim_every_s` more; the scan goes on from `_claim_from`.
        self._claim_every_s = min(CLAIM_EVERY_S, claim_idle_ms / 2000)
        self._next_claim = 0.0
        self._claim_from = "0-0"
        self.state = WriterState()
        self._months: set[str] = set()
        self._own_pending = True  # read this consumer's unacknowledged entries first
        # Entries held back a round (`_hold_back`), still pending to this consumer: stream
        # id -> (the entry, when it was first held back, monotonic seconds).
        self.defer_s = defer_s
        self._deferred: dict[str, tuple[tuple[str, dict[str, str]], float]] = {}
        # the last read found fewer entries than a batch: the stream is written up to now
        self._caught_up = True
        self._upgraded = False
        self._prune = store.r.register_script(lua("records_prune"))

    # ------------------------------------------------------------ Redis side

    @guarded
    def ensure_group(self) -> None:
        try:
            self.store.r.xgroup_create(self.stream, GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    @guarded
    def read(self) -> list[tuple[str, dict[str, str]]]:
        """Entries to write: this consumer's own unacknowledged ones (after a failed write),
        else those a dead consumer left pending, else new ones."""
        r = self.store.r
        if self._own_pending:
            # the entries held back (`_hold_back`) are pending to this consumer too, and
            # are not read again here
            count = self.batch + len(self._deferred)
            reply = r.xreadgroup(GROUP, self.consumer, {self.stream: "0"}, count=count)
            own = [
                (eid, f)
                for eid, f in read_entries(reply)
                if f and eid not in self._deferred  # trimmed ones have no fields
            ]
            if own:
                return own
            self._own_pending = False
        if time.monotonic() >= self._next_claim:
            claimed = r.xautoclaim(self.stream, GROUP, self.consumer, self.claim_idle_ms,
                                   self._claim_from, count=self.batch)  # fmt: skip
            self._claim_from = str_if_bytes(claimed[0])  # "0-0": the whole list was looked at
            if self._claim_from == "0-0":
                self._next_claim = time.monotonic() + self._claim_every_s
            left = [(eid, f) for eid, f in entries(claimed[1]) if f]
            gone = claimed[2] if len(claimed) > 2 else []  # trimmed while pending (Redis 7)
            if gone:
                r.xack(self.stream, GROUP, *gone)
            if left:
                return left
        reply = r.xreadgroup(GROUP, self.consumer, {self.stream: ">"}, count=self.batch)
        return read_entries(reply)

    @guarded
    def snapshot(
        self,
        entries: Sequence[tuple[str, dict[str, str]]],
        held: dict[str, str] | None = None,
    ) -> Snapshot:
        """Two pipelined round trips, whatever the batch size. The tickets in `held` (rows
        PostgreSQL holds, named by message-only events alone; id -> account) are not read,
        nor their customers: every other change to a ticket, its due time included
        (`due_changed`), comes with an event of its own."""
        r, keys = self.store.r, self.store.keys
        held = held or {}
        named = (f["ticket"] for _, f in entries if f.get("ticket"))
        tids = [tid for tid in dict.fromkeys(named) if tid not in held]
        merged_into = [f["ticket"] for _, f in entries if f.get("type") == EventType.MERGED]
        pipe = r.pipeline(transaction=False)
        for tid in tids:
            pipe.hgetall(keys.ticket(tid))
        for tid in merged_into:  # a merge moves every message of the source here
            pipe.lrange(keys.ticket_msgs(tid), 0, -1)
        replies = pipe.execute()
        tickets, merged = replies[: len(tids)], replies[len(tids) :]
        snap = Snapshot(
            tickets={t: h for t, h in zip(tids, tickets, strict=True) if h}, recorded=dict(held)
        )
        mids = [f["message"] for _, f in entries if f.get("message")]
        for ids in merged:
            mids += ids
        cids = {t["customer_id"] for t in snap.tickets.values() if t.get("customer_id")}
        cids |= {f["customer"] for _, f in entries if f.get("customer")}
        mids = list(dict.fromkeys(mids))
        cid_list = sorted(cids)
        pipe = r.pipeline(transaction=False)
        for mid in mids:
            pipe.hgetall(keys.msg(mid))
        for cid in cid_list:
            pipe.hgetall(keys.customer(cid))
            pipe.smembers(keys.customer_ids(cid))
        replies = pipe.execute()
        snap.messages = {m: h for m, h in zip(mids, replies, strict=False) if h}
        rest = replies[len(mids) :]
        for cid, fields, ids in zip(cid_list, rest[::2], rest[1::2], strict=True):
            if fields:
                snap.customers[cid] = fields
                snap.identities[cid] = set(ids)
        return snap

    @guarded
    def acknowledge(self, entry_ids: Sequence[str]) -> None:
        if entry_ids:
            self.store.r.xack(self.stream, GROUP, *entry_ids)

    @guarded
    def backlog(self) -> int:
        """Entries not yet written: not yet delivered to the group, plus delivered and
        pending (Redis 7's XINFO GROUPS `lag`; counted by XRANGE when it is unknown)."""
        # set aside and not yet retried or dropped, by any daemon (omnidesk db failed)
        self.state.failed = int(self.store.r.hlen(self.store.keys.records_failed()))
        for group in self.store.r.xinfo_groups(self.stream):
            if group["name"] == GROUP:
                lag = group.get("lag")
                if lag is None:
                    last = group["last-delivered-id"]
                    lag = len(self.store.r.xrange(self.stream, min=f"({last}", count=100_000) or [])
                return int(lag) + int(group["pending"])
        return int(self.store.r.xlen(self.stream))

    @guarded
    def trim(self) -> int:
        """Drop the entries every consumer has taken: below each consumer group's oldest
        pending or next undelivered entry (this writer's, and any other an operator or a
        tool has attached to the stream); the dead consumers are forgotten first. Returns
        how many entries."""
        r = self.store.r
        groups = r.xinfo_groups(self.stream)
        if not any(g["name"] == GROUP for g in groups):
            return 0
        self.prune()
        keeps = []
        for group in groups:
            if int(group["pending"]):
                oldest = r.xpending(self.stream, group["name"])["min"]
                keeps.append(min(group["last-delivered-id"], oldest, key=stream_pos))
            else:
                keeps.append(_next_id(group["last-delivered-id"]))
        keep = min(keeps, key=stream_pos)
        if stream_pos(keep) <= 1:
            return 0
        return int(r.xtrim(self.stream, minid=keep, approximate=False))

    @guarded
    def prune(self) -> int:
        """Forget the group's consumers that hold nothing and were idle longer than
        `claim_idle_ms`: each daemon start adds one (its name has its pid), so without this
        the group would keep one per restart forever. A live one that is forgotten comes
        back with its next read. Returns how many were forgotten."""
        gone = 0
        for consumer in self.store.r.xinfo_consumers(self.stream, GROUP):
            name = consumer["name"]
            if name == self.consumer or int(consumer["pending"]):
                continue
            if int(consumer["idle"]) <= self.claim_idle_ms:
                continue
            gone += int(self._prune(keys=[self.stream], args=[GROUP, name]))
        return gone

    # ------------------------------------------------------------ PostgreSQL side

    async def write(
        self,
        conn: psycopg.AsyncConnection[Any],
        entries: Sequence[tuple[str, dict[str, str]]],
        snap: Snapshot,
    ) -> None:
        """One transaction: customers, identities, tickets, messages, then the events."""
        last_pos: dict[str, int] = {}
        for eid, f in entries:
            if f.get("ticket"):
                last_pos[f["ticket"]] = stream_pos(eid)
        # A ticket named only by message-only events and not recorded yet is written for its
        # messages' sake (their rows need it) at position 1, below every real one: the row of
        # the writer still committing the batch that opened it replaces it, or stays when it
        # is there first. Nothing is lost: every other change to the ticket has its own event,
        # written at its own position. (0 is an imported ticket's: importarchive.py.)
        ticket_pos = last_pos | dict.fromkeys(message_only_tickets(entries), MESSAGES_ONLY_POS)
        async with conn.transaction():
            made = await self._ensure_partitions(conn, {entry_time(eid) for eid, _ in entries})
            async with conn.cursor() as cur:
                await ensure_stages(cur, STAGES)
                await self._write_customers(cur, snap)
                await self._write_tickets(cur, snap, ticket_pos)
                await self._write_messages(cur, snap, last_pos)
                await self._write_events(cur, entries)
        # Remembered only once committed: a partition made in a transaction that failed was
        # rolled back with it, and the month's events would go to events_default (where
        # they would then keep the partition from ever being made).
        self._months |= made

    async def _ensure_partitions(
        self, conn: psycopg.AsyncConnection[Any], moments: Iterable[datetime]
    ) -> set[str]:
        """A partition per month, made before the first event of that month arrives (and
        the month after, so the default partition stays empty), by the schema's
        ensure_event_partitions. Returns the months made or found in this transaction, for
        the caller to remember once it commits."""
        months = {_month_start(m) for m in moments}
        wanted = {m.strftime("%Y-%m") for m in months | {_next_month(m) for m in months}}
        todo = sorted(wanted - self._months)
        if todo:
            first = datetime.strptime(todo[0], "%Y-%m").replace(tzinfo=UTC)
            last = datetime.strptime(todo[-1], "%Y-%m").replace(tzinfo=UTC)
            await conn.execute("SELECT ensure_event_partitions(%s, %s)", (first, last))
        return set(todo)

    async def _write_customers(self, cur: psycopg.AsyncCursor[Any], snap: Snapshot) -> None:
        rows = [
            (
                cid,
                c.get("name", ""),
                c.get("segment") or "unknown",
                c.get("region") or None,
                _json_list(c.get("tags")),
                _ts(c.get("created_at")) or datetime.now(UTC),
            )
            for cid, c in sorted(snap.customers.items())  # one lock order for every writer
        ]
        if rows:
            # tags only on insert: the CRM writes them to PostgreSQL (the truth) and to the
            # Redis copy, and a snapshot read before that must not put the old ones back; a
            # customer whose fields are as recorded is not rewritten (most batches name one)
            await stage_rows(cur, CUSTOMER_STAGE, rows)
            await cur.execute(
                "INSERT INTO customers (id, name, segment, region, tags, created_at)"
                " SELECT * FROM od_stage_customers ORDER BY id ON CONFLICT (id) DO UPDATE SET"
                " name = EXCLUDED.name, segment = EXCLUDED.segment,"
                " region = EXCLUDED.region, updated_at = now()"
                " WHERE customers.erased_at IS NULL AND"
                " (customers.name, customers.segment, customers.region) IS DISTINCT FROM"
                " (EXCLUDED.name, EXCLUDED.segment, EXCLUDED.region)"
            )
        ids = sorted(
            (kind, value, cid)
            for cid, keys in snap.identities.items()
            for kind, _, value in (k.partition(":") for k in keys)
        )
        if ids:  # an identity PostgreSQL gives to someone else keeps its owner (merges)
            await stage_rows(cur, IDENTITY_STAGE, ids)
            await cur.execute(
                "INSERT INTO identities (kind, value, customer_id)"
                " SELECT * FROM od_stage_identities ORDER BY kind, value, customer_id"
                " ON CONFLICT (kind, value) DO NOTHING"
            )

    async def _write_tickets(
        self, cur: psycopg.AsyncCursor[Any], snap: Snapshot, last_pos: dict[str, int]
    ) -> None:
        rows = []
        for tid, t in sorted(snap.tickets.items()):  # one lock order for every writer
            meta = _json_dict(t.get("meta"))
            data = {
                "thread_keys": _json_list(t.get("thread_keys")),
                "meta": meta,
                # what the ticket came in with: track-my-request answers these only
                "contacts": _json_list(t.get("contacts")),
                **{k: t[k] for k in ("merged_into", "last_assignee") if t.get(k)},
            }
            rows.append(
                (
                    tid,
                    t.get("customer_id", ""),
                    t.get("channel", ""),
                    t.get("account", ""),
                    t.get("queue", ""),
                    t.get("status", "new"),
                    t.get("priority", "normal"),
                    t.get("sla_policy", ""),
                    t.get("rule") or None,
                    t.get("assignee") or None,
                    t.get("subject", ""),
                    t.get("preview", ""),
                    t.get("language", "unknown"),
                    t.get("segment", "unknown"),
                    t.get("region") or None,
                    _json_list(t.get("tags")),
                    meta.get("cr_number") or None,
                    _ts(t.get("created_at")),
                    _ts(t.get("updated_at")) or _ts(t.get("created_at")),
                    _ms_ts(t.get("resolved_ms")),
                    _ts(t.get("due_at")),
                    msgspec.json.encode(data).decode(),
                    last_pos.get(tid, 0),
                )
            )
        if rows:
            await stage_rows(cur, TICKET_STAGE, rows)
            await cur.execute(
                f"INSERT INTO tickets ({', '.join(TICKET_COLUMNS)})"
                " SELECT * FROM od_stage_tickets ORDER BY id ON CONFLICT (id) DO UPDATE SET"
                " customer_id = EXCLUDED.customer_id, queue = EXCLUDED.queue,"
                " status = EXCLUDED.status, priority = EXCLUDED.priority,"
                " sla_policy = EXCLUDED.sla_policy, rule = EXCLUDED.rule,"
                " assignee = EXCLUDED.assignee, subject = EXCLUDED.subject,"
                " preview = EXCLUDED.preview, language = EXCLUDED.language,"
                " segment = EXCLUDED.segment, region = EXCLUDED.region, tags = EXCLUDED.tags,"
                " cr_number = EXCLUDED.cr_number, updated_at = EXCLUDED.updated_at,"
                " resolved_at = EXCLUDED.resolved_at, due_at = EXCLUDED.due_at,"
                " data = EXCLUDED.data, synced_pos = EXCLUDED.synced_pos, hot = true"
                " WHERE tickets.synced_pos < EXCLUDED.synced_pos"
            )

    async def _write_messages(
        self, cur: psycopg.AsyncCursor[Any], snap: Snapshot, last_pos: dict[str, int]
    ) -> None:
        accounts = {tid: t.get("account", "") for tid, t in snap.tickets.items()}
        accounts.update(snap.recorded)
        candidates = {mid: m for mid, m in snap.messages.items() if m.get("ticket_id")}
        # A message whose ticket is neither in this batch nor already recorded cannot be
        # written yet (it is, with its ticket's next event).
        unknown = sorted({m["ticket_id"] for m in candidates.values()} - set(accounts))
        if unknown:
            await cur.execute("SELECT id, account FROM tickets WHERE id = ANY(%s)", (unknown,))
            accounts.update(dict(await cur.fetchall()))
        rows = []
        for mid, m in sorted(candidates.items()):
            if m["ticket_id"] not in accounts:
                continue
            account = m.get("account") or accounts[m["ticket_id"]]
            external = m.get("external_id") or None
            if external and m.get("content_id") == "1":
                # a hash of the content: each POST is its own message (post_key), and a
                # redelivery of one POST carries the same receive time
                external = post_key(external, ms(datetime.fromisoformat(m["created_at"])))
            rows.append(
                [
                    mid,
                    m["ticket_id"],
                    m.get("direction", "in"),
                    m.get("channel", ""),
                    account,
                    external,
                    _ts(m.get("created_at")),
                    _ts(m.get("sent_at")),
                    m.get("author", ""),
                    m.get("subject", ""),
                    m.get("text", ""),
                    m.get("delivery") or None,
                    m.get("raw_ref") or None,
                    m.get("attachments") or "[]",
                    message_document(
                        m.get("direction", "in"),
                        m.get("author", ""),
                        m.get("subject", ""),
                        m.get("text", ""),
                    ),
                    last_pos.get(m["ticket_id"], 0),
                ]
            )
        # PostgreSQL's unique (channel, account, external_id) is the dedupe backstop once
        # Redis has forgotten a message: a second copy under a new id is left out, counted.
        keyed = [r for r in rows if r[5] is not None]
        if keyed:
            await cur.execute(
                "SELECT id, channel, account, external_id FROM messages"
                " WHERE (channel, account, external_id) IN"
                " (SELECT * FROM unnest(%s::text[], %s::text[], %s::text[]))",
                ([r[3] for r in keyed], [r[4] for r in keyed], [r[5] for r in keyed]),
            )
            owner = {(c, a, e): i for i, c, a, e in await cur.fetchall()}
            kept = []
            for r in rows:
                held = owner.get((r[3], r[4], r[5])) if r[5] is not None else None
                if held is not None and held != r[0]:
                    self.state.duplicates += 1
                    log.warning("message %s is a copy of recorded %s; left out", r[0], held)
                    continue
                kept.append(r)
            rows = kept
        if rows:
            await stage_rows(cur, MESSAGE_STAGE, rows)
            columns = ", ".join(MESSAGE_COLUMNS)
            await cur.execute(
                f"INSERT INTO messages ({columns}, search, synced_pos)"
                f" SELECT {columns}, to_tsvector('simple', search_text), synced_pos"
                " FROM od_stage_messages ORDER BY id ON CONFLICT (id) DO UPDATE SET"
                " ticket_id = EXCLUDED.ticket_id, subject = EXCLUDED.subject,"
                " body = EXCLUDED.body, delivery = EXCLUDED.delivery,"
                " attachments = EXCLUDED.attachments, search = EXCLUDED.search,"
                " synced_pos = EXCLUDED.synced_pos"
                " WHERE messages.synced_pos <= EXCLUDED.synced_pos"
            )

    async def _write_events(
        self, cur: psycopg.AsyncCursor[Any], entries: Sequence[tuple[str, dict[str, str]]]
    ) -> None:
        rows = []
        for eid, f in entries:
            data = {k: v for k, v in f.items() if k not in EVENT_COLUMNS}
            rows.append(
                (
                    entry_time(eid),
                    eid,
                    f.get("type", ""),
                    f.get("ticket") or None,
                    f.get("queue") or None,
                    f.get("channel") or None,
                    f.get("actor") or None,
                    msgspec.json.encode(data).decode(),
                )
            )
        await stage_rows(cur, EVENT_STAGE, rows)
        await cur.execute(
            "INSERT INTO events (ts, stream_id, type, ticket_id, queue, channel, actor, data)"
            " SELECT * FROM od_stage_events ON CONFLICT DO NOTHING"
        )
        # facts a ticket row keeps from its events: the first reply (a person's: the CSAT
        # survey is a `replied` by "csat"), the close
        firsts = [
            (ts, tid)
            for ts, _, kind, tid, _, _, actor, _ in rows
            if kind == EventType.REPLIED and tid and (actor or "") not in SYSTEM_ACTORS
        ]
        if firsts:
            await cur.executemany(
                "UPDATE tickets SET first_response_at = %s"
                " WHERE id = %s AND first_response_at IS NULL",
                firsts,
            )
        closes = [
            (entry_time(eid), f["ticket"])
            for eid, f in entries
            if f.get("ticket") and f.get("to") == "closed"
        ]
        if closes:
            await cur.executemany(
                "UPDATE tickets SET closed_at = %s WHERE id = %s AND closed_at IS NULL", closes
            )

    # ------------------------------------------------------------ running

    async def write_once(self, conn: psycopg.AsyncConnection[Any], *, defer: bool = True) -> int:
        """Read, snapshot, write, acknowledge one batch; returns how many entries were written
        (entries held back for a later round, `_hold_back`, are not counted; `defer=False`
        holds nothing back, and writes those held back before too)."""
        read = await asyncio.to_thread(self.read)
        self._caught_up = len(read) < self.batch
        return await self._write_batch(conn, self._with_deferred(read), defer=defer)

    async def _write_batch(
        self,
        conn: psycopg.AsyncConnection[Any],
        entries: list[tuple[str, dict[str, str]]],
        *,
        defer: bool,
    ) -> int:
        """Write and acknowledge `entries` (but those held back); how many were written.

        A batch that fails for a reason other than PostgreSQL being away is written again
        one entry at a time, and an entry that still fails is set aside in Redis
        (`P:records:failed`, with its error) and acknowledged: one bad record must not stop
        every record behind it, and nothing is dropped. Held-back entries are noted only
        once the rest is written: an outage changes nothing of them."""
        if not entries:
            return 0
        held: list[tuple[str, dict[str, str]]] = []
        try:
            entries, held = await self._write_entries(conn, entries, defer=defer)
        except Exception as exc:
            if _is_outage(exc):
                self._own_pending = True  # they stay pending to this consumer: read again
                raise
            log.warning("records: a batch of %d failed (%s); one by one", len(entries), exc)
            for entry in entries:
                try:
                    await self._write_entries(conn, [entry], defer=False)
                except Exception as one:
                    if _is_outage(one):
                        self._own_pending = True
                        raise
                    log.exception("records: entry %s cannot be written; set aside", entry[0])
                    await asyncio.to_thread(self.set_aside, entry, one)
        if entries:
            try:
                await asyncio.to_thread(self.acknowledge, [eid for eid, _ in entries])
            except StoreUnavailable:
                self._own_pending = True  # written, not acknowledged: read again, rewritten
                raise
        self._note_held(entries, held)
        self.state.written += len(entries)
        return len(entries)

    def _with_deferred(
        self, entries: list[tuple[str, dict[str, str]]]
    ) -> list[tuple[str, dict[str, str]]]:
        """The entries held back before with those just read, in stream order, each once
        (one held back past `claim_idle_ms`, an outage long, may come back in a claim)."""
        if not self._deferred:
            return entries
        fresh = {eid for eid, _ in entries}
        held = [entry for eid, (entry, _) in self._deferred.items() if eid not in fresh]
        return sorted(held + entries, key=lambda entry: stream_pos(entry[0]))

    def _hold_back(
        self,
        entries: Sequence[tuple[str, dict[str, str]]],
        tickets: set[str],
        messages: set[str],
    ) -> tuple[list[tuple[str, dict[str, str]]], list[tuple[str, dict[str, str]]]]:
        """The entries to write now, and those to hold back a round, for up to `defer_s`:
        those of the `tickets` named by message-only events alone (a receipt, its delivery)
        and not recorded yet, and the delivery statuses of the `messages` not recorded yet.
        Such a ticket or message is most often being written at this moment by another
        consumer, in the batch that opened the ticket or added the message, and writing its
        row here as well would wait on that transaction's row locks (the ticket's customer
        and ticket, the message), so that the consumers would take turns. Once it is
        recorded, the entries are written as messages only. One still not recorded after
        `defer_s` (the batch that made it was set aside) is written whole, as before."""
        now = time.monotonic()
        kept: list[tuple[str, dict[str, str]]] = []
        held: list[tuple[str, dict[str, str]]] = []
        for entry in entries:
            eid, fields = entry
            since = self._deferred[eid][1] if eid in self._deferred else now
            waits = fields.get("ticket") in tickets or (
                fields.get("type") == EventType.DELIVERY and fields.get("message") in messages
            )
            (held if waits and now - since < self.defer_s else kept).append(entry)
        return kept, held

    def _note_held(
        self,
        written: Sequence[tuple[str, dict[str, str]]],
        held: Sequence[tuple[str, dict[str, str]]],
    ) -> None:
        """After a batch: the entries written are no longer held back; those held back are,
        from the first round they were (their `defer_s` counts from then)."""
        for eid, _ in written:
            self._deferred.pop(eid, None)
        now = time.monotonic()
        for entry in held:
            since = self._deferred[entry[0]][1] if entry[0] in self._deferred else now
            self._deferred[entry[0]] = (entry, since)

    async def _write_entries(
        self,
        conn: psycopg.AsyncConnection[Any],
        entries: Sequence[tuple[str, dict[str, str]]],
        *,
        defer: bool,
    ) -> tuple[list[tuple[str, dict[str, str]]], list[tuple[str, dict[str, str]]]]:
        """Write `entries`, but those held back (`_hold_back`); returns those written and
        those held back."""
        tickets = message_only_tickets(entries)
        messages = status_only_messages(entries) if defer else []
        with records_errors(self.info):
            held, messages_held = await self._recorded(conn, tickets, messages)
        kept: list[tuple[str, dict[str, str]]] = list(entries)
        waiting: list[tuple[str, dict[str, str]]] = []
        if defer:
            kept, waiting = self._hold_back(
                entries, set(tickets) - held.keys(), set(messages) - messages_held
            )
        if kept:
            snap = await asyncio.to_thread(self.snapshot, kept, held)
            with records_errors(self.info):
                await self.write(conn, kept, snap)
        return kept, waiting

    async def _recorded(
        self, conn: psycopg.AsyncConnection[Any], ticket_ids: list[str], message_ids: list[str]
    ) -> tuple[dict[str, str], set[str]]:
        """Those of `ticket_ids` PostgreSQL holds, with their accounts, and those of
        `message_ids` it holds; in one round trip."""
        if not ticket_ids and not message_ids:
            return {}, set()
        async with conn.transaction():  # not left open: `write` would nest in it
            cur = await conn.execute(
                "SELECT 't', id, account FROM tickets WHERE id = ANY(%s)"
                " UNION ALL SELECT 'm', id, '' FROM messages WHERE id = ANY(%s)",
                (ticket_ids, message_ids),
            )
            rows = await cur.fetchall()
        tickets = {row_id: account for kind, row_id, account in rows if kind == "t"}
        return tickets, {row_id for kind, row_id, _ in rows if kind == "m"}

    @guarded
    def set_aside(self, entry: tuple[str, dict[str, str]], exc: BaseException) -> None:
        """Keep an entry that cannot be written, with why, for an operator (never trimmed:
        the stream entry itself goes once acknowledged)."""
        eid, fields = entry
        record = {"fields": fields, "error": _first_line(exc), "at": datetime.now(UTC).isoformat()}
        pipe = self.store.r.pipeline(transaction=True)
        pipe.hset(self.store.keys.records_failed(), eid, json.dumps(record, ensure_ascii=False))
        pipe.hincrby(self.store.keys.stats(), "records_failed", 1)
        pipe.execute()
        self.state.failed += 1

    @guarded
    def failed_entries(self) -> dict[str, dict[str, Any]]:
        """The entries set aside: stream id -> {"fields", "error", "at"}."""
        raw = text_fields(self.store.r.hgetall(self.store.keys.records_failed()))
        return {eid: json.loads(text) for eid, text in sorted(raw.items(), key=_by_pos)}

    @guarded
    def retry_failed(self, entry_ids: Sequence[str]) -> list[str]:
        """Put set-aside entries back in the stream (as new entries, so the writer takes them
        again once the cause is fixed); returns the ids found and re-added."""
        key = self.store.keys.records_failed()
        done = []
        for eid in entry_ids:
            text = self.store.r.hget(key, eid)
            if text is None:
                continue
            pipe = self.store.r.pipeline(transaction=True)
            pipe.xadd(self.stream, json.loads(text)["fields"])
            pipe.hdel(key, eid)
            pipe.execute()
            done.append(eid)
        return done

    @guarded
    def drop_failed(self, entry_ids: Sequence[str]) -> int:
        """Forget set-aside entries (an operator decided they are not needed)."""
        if not entry_ids:
            return 0
        return int(self.store.r.hdel(self.store.keys.records_failed(), *entry_ids))

    async def probe(self, conn: psycopg.AsyncConnection[Any]) -> None:
        """One round trip, so an idle writer notices PostgreSQL going away: a connection
        the server closed looks open until it is used, and /healthz would say ok for as long
        as nothing happens. In a transaction of its own: an implicit one left open would turn
        the next batch's into a savepoint that never commits."""
        with records_errors(self.info):
            async with conn.transaction():
                await conn.execute("SELECT 1")

    async def drain(self, *, trim: bool = True) -> int:
        """Write everything pending now (the CLI, tests, a daemon's last round)."""
        await asyncio.to_thread(self._prepare)
        conn = await connect_async(self.info)
        total = 0
        try:
            while n := await self.write_once(conn, defer=False):
                total += n
        finally:
            await conn.close()
        if trim:
            await asyncio.to_thread(self.trim)
        return total

    def _prepare(self) -> None:
        if not self._upgraded:
            upgrade(self.info)
            self._upgraded = True
        self.ensure_group()

    async def _failed(self, exc: Exception, *, already_down: bool) -> None:
        """Called in the except clause of a failed round. PostgreSQL away: one log line per
        outage. Anything else (a record that cannot be written, a bug): a traceback, and the
        batch stays pending to be tried again."""
        away = isinstance(exc, RecordsUnavailable) or (
            isinstance(exc, psycopg.Error) and is_transient(exc)
        )
        if not away:
            log.exception("records: a batch failed; it stays pending")
        elif not already_down:
            log.error("records writer waiting: %s", exc)
        self.state.up, self.state.error = False, _first_line(exc)
        with contextlib.suppress(OmnideskError):
            self.state.backlog = await asyncio.to_thread(self.backlog)

    async def run(self, stop: asyncio.Event, *, idle_s: float = 0.2, trim_s: float = 5.0) -> None:
        """The daemon's loop: write while there is anything, trim every `trim_s` (and, when
        idle, probe PostgreSQL then), wait out PostgreSQL or Redis being away (one log line
        per outage)."""
        conn: psycopg.AsyncConnection[Any] | None = None
        delay, last_trim, down = 0.5, 0.0, False
        while not stop.is_set():
            written = 0
            try:
                if conn is None or conn.closed:
                    await asyncio.to_thread(self._prepare)
                    conn = await connect_async(self.info)
                written = await self.write_once(conn)
                if written or self.state.backlog:  # /healthz: not a figure 5 s old
                    self.state.backlog = await asyncio.to_thread(self.backlog)
                if time.monotonic() - last_trim >= trim_s:
                    if not written:  # nothing to write: ask PostgreSQL anyway (/healthz)
                        await self.probe(conn)
                    await asyncio.to_thread(self.trim)
                    self.state.backlog = await asyncio.to_thread(self.backlog)
                    last_trim = time.monotonic()
                if down:
                    log.warning("postgresql back: writing the backlog")
                self.state.up, self.state.error, down, delay = True, "", False, 0.5
            except StoreUnavailable:  # Redis away: the daemon's health says so already
                await _sleep(stop, delay)
                delay = min(delay * 2, 5.0)
                continue
            except Exception as exc:
                # the loop must not end, or /healthz would show its last state while the
                # backlog grows unseen
                await self._failed(exc, already_down=down)
                down = True
                await _close_quietly(conn)
                conn = None
                await _sleep(stop, delay)
                delay = min(delay * 2, 5.0)
                continue
            if self._caught_up:  # not `written`: entries held back do not mean idle
                await _sleep(stop, idle_s)
        if conn is not None:
            await self._write_deferred(conn)
            await conn.close()

    async def _write_deferred(self, conn: psycopg.AsyncConnection[Any]) -> None:
        """On the way out, the entries held back (`_hold_back`) are written now, as any
        entry is (whole if their ticket is still not recorded): left pending, they would
        wait `claim_idle_ms` for another consumer to claim them, as they do when this
        fails or the daemon stops without a connection."""
        entries = [entry for entry, _ in self._deferred.values()]
        try:
            await self._write_batch(conn, entries, defer=False)
        except Exception as exc:  # they stay pending: another consumer claims them
            log.warning("records: %d held-back entries left pending: %s", len(entries), exc)


async def _close_quietly(conn: psycopg.AsyncConnection[Any] | None) -> None:
    if conn is not None:
        with contextlib.suppress(Exception):
            await conn.close()


def _by_pos(item: tuple[str, str]) -> int:
    return stream_pos(item[0])


def _is_outage(exc: BaseException) -> bool:
    """PostgreSQL or Redis away: wait and write the same batch again."""
    return isinstance(exc, RecordsUnavailable | StoreUnavailable) or (
        isinstance(exc, psycopg.Error) and is_transient(exc)
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


async def _sleep(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


def _next_id(entry_id: str) -> str:
    ms, _, seq = entry_id.partition("-")
    return f"{ms}-{int(seq or 0) + 1}"


def _month_start(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def _next_month(moment: datetime) -> datetime:
    start = _month_start(moment)
    return start.replace(year=start.year + (start.month == 12), month=start.month % 12 + 1)
