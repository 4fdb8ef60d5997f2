"""The Redis ticket store: tickets, messages, customers, queues and the events stream.

Every key lives under one prefix (`service.key_prefix`, default ``od``) so several
deployments or test runs share one Redis. With prefix ``P``:

    P:ticket:<id>             hash   one ticket; scalar fields as strings, lists/dicts as JSON,
                                     plus created_ms (the customer's message time),
                                     opened_ms (intake's), score (queue urgency), resolved_ms,
                                     sla_n (where omnidesk.sla.records counts it)
    P:ticket:<id>:msgs        list   message ids in arrival order
    P:ticket:<id>:posts       list   per-POST dedupe keys of forms known by content (intake)
    P:msg:<mid>               hash   one message (in, out or note); `mkeys`: the P:thread keys
                                     it added, `edits`: its edits' dedupe keys (eviction)
    P:tickets                 zset   every ticket id by creation time (ms)
    P:status:<status>         zset   ticket ids with that status, by creation time
    P:queue:<q>:all           zset   ticket ids routed to queue q, by creation time
    P:queue:<q>:waiting       zset   unassigned open tickets of q, by urgency score (lowest first)
    P:queues                  set    every queue name a ticket was ever routed to
    P:customer:<cid>          hash   name, segment, region, created_at; tags (JSON list, the
                                     CRM's); seen_ms (a message last found it: omnidesk.known).
                                     A customer with no ticket here leaves once PostgreSQL has
                                     it (omnidesk.db.customer_evict) and is loaded back on its
                                     next message
    P:customer:<cid>:ids      set    identity keys (``email:a@b``, ``phone:+966...``)
    P:customer:<cid>:tickets  zset   the customer's ticket ids by creation time
    P:customers               zset   customer ids by creation time
    P:identity                hash   identity key ``<kind>:<value>`` -> customer id
    P:thread                  hash   thread/message key (``email:<msgid>``, ``ticket:OD-..``,
                                     ``telegram:chat:1``) -> ticket id
    P:seen                    hash   dedupe key ``channel:account:external_id`` -> message id;
                                     a ticket's entries go when it is evicted (lua/evict.lua)
    P:seen:auto:<dedupe key>  string ``-``: an auto-reply that opened nothing, for
                                     `service.dedupe_window_days` (a TTL)
    P:evict:customers         set    owners of evicted tickets not yet gone themselves: each
                                     eviction pass offers them to evict_customers (db/evict.py)
    P:seq:ticket:<year>       string INCR counter behind ``OD-<year>-<NNNNNN>`` ids
    P:seq:customer            string INCR counter behind ``C-<NNNNNNNN>`` ids
    P:receipts:sender:<cid>   zset   ticket ids the customer got a receipt for, by ms, for the
                                     last hour only (expires with it): omnidesk.receipts; the
                                     ticket's `receipt` field says it was decided (claimed,
                                     limited)
    P:stats                   hash   counters: opened, duplicates, auto_ignored, in:<channel>,
                                     quarantined, skipped:<reason>, delivery:<status>,
                                     records_lookup_skipped, customers_evicted,
                                     receipts_limited, receipts_failed
    P:events                  stream append-only: type, ticket, queue, channel, actor, ts(ms), ...
    P:quarantine[:<id>]       see omnidesk.quarantine

Every key family, with its owner and lifetime, is listed in omnidesk.keys and built there.

Redis holds hot state only: a done ticket, with everything above that names it or its
messages, leaves once PostgreSQL holds it (omnidesk.db.evict), and customers with no ticket
left go with it. What is left grows with open work, not with history.

Urgency score: ``(3 - priority rank) * 1e13 + due_ms``, so urgent tickets sort first and,
within a priority, the earliest SLA due time first (intake stores a new ticket with its
first one; the message time for a ticket without clocks). Mutations that touch several keys
are Lua scripts (omnidesk/lua/). Keys are built inside the scripts, so this targets a single
Redis, not Redis Cluster.

Kept whole though over 500 lines: one Store class over one key layout, the single door
to the ticket data in Redis for every part.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib import resources
from typing import Any, ParamSpec, TypeVar

import msgspec
import redis
from redis.commands.core import Script

from omnidesk.errors import StoreFull, StoreUnavailable
from omnidesk.events import EventType
from omnidesk.keys import Keys
from omnidesk.model import (
    Customer,
    Direction,
    Identity,
    IdentityKind,
    Message,
    Outbound,
    Priority,
    Status,
    Ticket,
    utcnow,
)
from omnidesk.redispack import PACKER
from omnidesk.replies import entries, read_entries, text, text_fields, text_or_none, texts

# What a ticket id can be (``OD-<year>-<NNNNNN>``, or an imported one): no ``:``, so an id
# from a URL or the command line never names another key (``<id>:msgs`` is a list).
TICKET_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
JSON_FIELDS = frozenset({"tags", "thread_keys", "meta", "attachments", "identities", "contacts"})
# How long a channel's id for a message we sent leads back to it (`Store.remember_sent`): a
# WhatsApp status (delivered, read, failed) comes within days of the send.
SENT_ID_TTL_S = 7 * 86_400
# a channel's status for an id not noted yet waits this long for its send to be noted: a
# batch of replies is sent in turn and noted together, after the last one
EARLY_STATUS_TTL_S = 15 * 60
# A message's delivery status only moves forward along this order (set_deliveries.lua); failed
# and refused are final. A word not listed (a channel's own) is always recorded.
DELIVERY_ORDER = {
    "queued": 0, "retrying": 1, "sent": 2, "delivered": 3, "read": 4, "failed": 5, "refused": 5,
}  # fmt: skip
_DELIVERY_ORDER_JSON = msgspec.json.encode(DELIVERY_ORDER).decode()  # for lua/set_deliveries.lua


_P = ParamSpec("_P")
_R = TypeVar("_R")


def lua(name: str) -> str:
    """A script's source; a line `--@include other` is replaced by other.lua (shared helpers:
    Redis scripts cannot call each other)."""
    text = resources.files("omnidesk.lua").joinpath(f"{name}.lua").read_text("utf-8")
    return _INCLUDE.sub(lambda m: lua(m.group(1)), text)


_INCLUDE = re.compile(r"^--@include (\w+)$", re.M)


def run_script(script: Any, prefix: str, **named: Any) -> Any:
    """Run a ticket script the way they all take their input: the key prefix as KEYS[1] (the
    script builds its names from it as omnidesk.keys does) and the arguments by name, as one
    JSON object in ARGV[1]. Scalars go as strings, as redis-py sent positional ones, so a
    script reads the same values; lists stay lists."""
    args = {k: v if isinstance(v, list | dict) else str(v) for k, v in named.items()}
    return script(keys=[prefix], args=[msgspec.json.encode(args)])


def raise_item_error(replies: list[Any]) -> None:
    """A batch script's first failed item (``["error", message]``) as the error one call per
    item raised, its reply code kept (an OOM stays transient); the items after it ran."""
    for reply in replies:
        if isinstance(reply, list) and len(reply) == 2 and reply[0] == "error":
            raise redis.ResponseError(str(reply[1]))


def urgency_score(priority: Priority, due_ms: int) -> int:
    """One ZSET score: priority first (urgent lowest), then SLA due time."""
    return (3 - priority.rank) * 10**13 + int(due_ms)


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def from_ms(stamp: int) -> datetime:
    """The instant `ms` gave, in UTC."""
    return datetime.fromtimestamp(stamp / 1000, UTC)


# A ticket's or message's hash holds text (preview, subject, body) longer than Redis's
# default `hash-max-listpack-value` (64 bytes): with it, every such hash becomes a hashtable,
# two to three times the memory of a listpack. The embedded redis-server and the benchmark
# run with this value; `Store.listpack_advice` says so when a server has less.
LISTPACK_VALUE = 1024


# Replies that say "not now": at maxmemory (OOM), loading its data, a replica cut off, a
# script cache emptied by a restart.
TRANSIENT_REPLIES = frozenset(
    {"OOM", "LOADING", "MASTERDOWN", "READONLY", "TRYAGAIN", "BUSY", "NOSCRIPT"}
)


def is_transient(exc: BaseException) -> bool:
    """Redis errors that pass: connection loss, timeouts (socket errors as redis-py raises
    them or not), and the refusals above (an OOM is an overload to wait out, not a permanent
    failure). The one answer for the store, the broker and the intake gate."""
    if isinstance(exc, redis.ConnectionError | redis.TimeoutError | OSError):
        return True
    if isinstance(exc, redis.ResponseError):  # redis-py strips the code it maps to a class
        code = getattr(exc, "status_code", None) or str(exc).split(" ", 1)[0]
        return code in TRANSIENT_REPLIES or isinstance(exc, _TRANSIENT_REPLY_CLASSES)
    return False


_TRANSIENT_REPLY_CLASSES = (
    redis.exceptions.OutOfMemoryError,
    redis.exceptions.ReadOnlyError,
    redis.exceptions.NoScriptError,
    redis.exceptions.TryAgainError,
)


@contextmanager
def redis_errors() -> Iterator[None]:
    """Redis connection trouble, or a Redis out of memory, becomes StoreUnavailable, a
    TransientError (retry later); out of memory is StoreFull, so intake can say which."""
    try:
        yield
    except redis.RedisError as exc:
        if not is_transient(exc):
            raise
        if isinstance(exc, redis.exceptions.OutOfMemoryError) or str(exc).startswith("OOM"):
            raise StoreFull(f"redis full: {exc}") from None
        raise StoreUnavailable(f"redis unavailable: {exc}") from None


def guarded(fn: Callable[_P, _R]) -> Callable[_P, _R]:
    @functools.wraps(fn)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        with redis_errors():
            return fn(*args, **kwargs)

    return wrapper


def encode_fields(obj: msgspec.Struct, skip: frozenset[str] = frozenset()) -> list[str]:
    """A struct as flat HSET arguments for a new hash: strings as-is, lists/dicts as JSON;
    None and empty lists/dicts are omitted (they decode to the defaults, and every field
    less is memory per hot ticket or message). Read field by field, not through asdict: it
    runs for every ticket and message, and a plain string (most fields) is checked first."""
    out: list[str] = []
    for name in obj.__struct_fields__:
        value = getattr(obj, name)
        if value is None or name in skip:
            continue
        if type(value) is str and name not in JSON_FIELDS:
            out += (name, value)
            continue
        if isinstance(value, list | dict):
            if not value:
                continue
            text = msgspec.json.encode(value).decode()
        elif name in JSON_FIELDS:
            text = msgspec.json.encode(value).decode()
        elif isinstance(value, datetime):
            text = value.isoformat()
        elif isinstance(value, bool):
            text = "1" if value else "0"
        else:
            text = str(value)  # an enum's value, a number
        out += (name, text)
    return out


def decode_fields(fields: dict[str, str], type_: type[_R]) -> _R:
    data: dict[str, Any] = {}
    for name, value in fields.items():
        data[name] = msgspec.json.decode(value) if name in JSON_FIELDS else value
    return msgspec.convert(data, type_, strict=False)


class Store:
    """All reads and writes of tickets; one instance per process is enough (thread-safe)."""

    def __init__(self, client: redis.Redis, prefix: str = "od") -> None:
        self.r = client
        self.prefix = prefix
        self.keys = Keys(prefix)
        self._binary: redis.Redis | None = None
        self._scripts = {
            name: client.register_script(lua(name)) for name in ("intake", "set_status", "move")
        }

    def binary(self) -> redis.Redis:
        """A client on the same server and settings whose replies stay bytes (msgpack SLA
        records, raw payloads); made once per store."""
        if self._binary is None:
            pool = self.r.connection_pool
            kwargs = {**pool.connection_kwargs, "decode_responses": False}
            self._binary = redis.Redis(
                connection_pool=redis.ConnectionPool(
                    connection_class=pool.connection_class, **kwargs
                )
            )
        return self._binary

    @classmethod
    def from_url(cls, url: str, prefix: str = "od", **kwargs: Any) -> Store:
        kwargs.setdefault("socket_timeout", 10)
        kwargs.setdefault("socket_connect_timeout", 5)
        kwargs.setdefault("health_check_interval", 30)
        kwargs.setdefault("command_packer", PACKER)
        client = redis.Redis.from_url(url, decode_responses=True, **kwargs)
        return cls(client, prefix)

    def key(self, *parts: str) -> str:
        """A raw name joined under the prefix, for tests and tools that look at Redis as it
        is; the product builds every name with `keys` (omnidesk.keys, tests/test_keys.py)."""
        return ":".join((self.prefix, *parts))

    def script(self, name: str) -> Script:
        """omnidesk/lua/<name>.lua on this store's client, registered on first use (a
        race registers it twice, harmlessly)."""
        found = self._scripts.get(name)
        if found is None:
            found = self._scripts[name] = self.r.register_script(lua(name))
        return found

    def listpack_advice(self) -> str | None:
        """A line for the log when the server keeps small hashes with text values as
        hashtables (`hash-max-listpack-value` below LISTPACK_VALUE); None when it does not,
        or when CONFIG GET is not allowed (a managed Redis)."""
        try:
            reply = self.r.config_get("hash-max-listpack-value")
            value = int(text(next(iter(reply.values()))))
        except (redis.RedisError, StopIteration, ValueError):
            return None
        if value >= LISTPACK_VALUE:
            return None
        return (
            f"redis hash-max-listpack-value is {value}: tickets and messages take about twice"
            f" the memory; set it to {LISTPACK_VALUE} in redis.conf"
        )

    @guarded
    def ping(self) -> bool:
        return bool(self.r.ping())

    # ------------------------------------------------------------ tickets

    @guarded
    def get_ticket(self, ticket_id: str) -> Ticket | None:
        if not TICKET_ID.fullmatch(ticket_id):
            return None
        pipe = self.r.pipeline(transaction=False)
        pipe.hgetall(self.keys.ticket(ticket_id))
        pipe.lrange(self.keys.ticket_msgs(ticket_id), 0, -1)
        fields, mids = pipe.execute()
        if not fields:
            return None
        ticket = decode_fields(fields, Ticket)
        ticket.message_ids = mids
        return ticket

    @guarded
    def get_tickets(self, ticket_ids: list[str]) -> list[Ticket]:
        pipe = self.r.pipeline(transaction=False)
        for tid in ticket_ids:
            pipe.hgetall(self.keys.ticket(tid))
            pipe.lrange(self.keys.ticket_msgs(tid), 0, -1)
        replies = pipe.execute()
        out = []
        for fields, mids in zip(replies[::2], replies[1::2], strict=True):
            if fields:
                ticket = decode_fields(fields, Ticket)
                ticket.message_ids = mids
                out.append(ticket)
        return out

    # What hooks after intake need of a ticket: routing, not the thread or the tags.
    HEAD_FIELDS = (
        "id",
        "channel",
        "account",
        "customer_id",
        "created_at",
        "updated_at",
        "status",
        "queue",
        "priority",
        "sla_policy",
        "language",
        "assignee",
    )

    @guarded
    def opened_at(self, ticket_ids: list[str]) -> dict[str, datetime]:
        """When intake opened each ticket (its hash's `opened_ms`), for those it opened under
        an SLA policy: the hash has the first due time intake stored (`due_at`). `updated_at`
        moves with every follow-up, `created_at` is the customer's own time; a ticket that
        had no policy then (one given it later, by a transfer or a reload) is left out, its
        clocks are not owed from its opening. One pipelined round trip."""
        pipe = self.r.pipeline(transaction=False)
        for tid in ticket_ids:
            pipe.hmget(self.keys.ticket(tid), "opened_ms", "due_at")
        return {
            tid: from_ms(int(opened))
            for tid, (opened, due) in zip(ticket_ids, pipe.execute(), strict=True)
            if opened and due
        }

    @guarded
    def ticket_heads(self, ticket_ids: list[str]) -> list[Ticket]:
        """Tickets with their routing fields only (one HMGET each, pipelined): the cheap
        read for intake's batch hooks; lists such as tags and message ids are left empty."""
        pipe = self.r.pipeline(transaction=False)
        for tid in ticket_ids:
            pipe.hmget(self.keys.ticket(tid), self.HEAD_FIELDS)
        out = []
        for values in pipe.execute():
            if values[0] is not None:
                fields = {
                    k: v for k, v in zip(self.HEAD_FIELDS, values, strict=True) if v is not None
                }
                out.append(decode_fields(fields, Ticket))
        return out

    @guarded
    def list_tickets(
        self, queue: str | None = None, status: Status | str | None = None, limit: int = 50
    ) -> list[Ticket]:
        """Newest first, filtered by queue and/or status."""
        if queue is not None:
            index = self.keys.queue_all(queue)
        elif status is not None:
            index = self.keys.status(str(status))
        else:
            index = self.keys.tickets()
        if queue is not None and status is not None:
            ids = self._in_both(index, self.keys.status(str(status)), limit)
        else:
            ids = texts(self.r.zrevrange(index, 0, max(0, limit - 1))) if limit else []
        return self.get_tickets(ids)

    def _in_both(self, index: str, status_index: str, limit: int, page: int = 500) -> list[str]:
        """The newest `limit` ids of `index` that are also in `status_index`: a page of ids
        at a time, each page checked with one ZMSCORE (one round trip per page, not per
        ticket; both sets hold hot tickets only, bounded by open work)."""
        out: list[str] = []
        start = 0
        while len(out) < limit:
            ids = texts(self.r.zrevrange(index, start, start + page - 1))
            if not ids:
                break
            scores = self.r.zmscore(status_index, ids)
            out += [tid for tid, score in zip(ids, scores, strict=True) if score is not None]
            start += page
        return out[:limit]

    @guarded
    def waiting(self, queue: str, limit: int = 50) -> list[str]:
        """Unassigned open ticket ids of `queue`, most urgent first."""
        return texts(self.r.zrange(self.keys.queue_waiting(queue), 0, max(0, limit - 1)))

    @guarded
    def queues(self) -> list[str]:
        return sorted(texts(self.r.smembers(self.keys.queues())))

    @guarded
    def queue_depths(self, queues: list[str] | None = None) -> dict[str, int]:
        """Waiting (unassigned open) tickets per queue."""
        names = queues if queues is not None else self.queues()
        pipe = self.r.pipeline(transaction=False)
        for q in names:
            pipe.zcard(self.keys.queue_waiting(q))
        return dict(zip(names, pipe.execute(), strict=True))

    @guarded
    def ticket_count(self) -> int:
        return int(self.r.zcard(self.keys.tickets()))

    @guarded
    def counts(self) -> dict[str, Any]:
        """Figures for /metrics: counters, tickets by status, by queue, waiting per queue."""
        names = self.queues()
        pipe = self.r.pipeline(transaction=False)
        pipe.hgetall(self.keys.stats())
        for s in Status:
            pipe.zcard(self.keys.status(s.value))
        for q in names:
            pipe.zcard(self.keys.queue_all(q))
        for q in names:
            pipe.zcard(self.keys.queue_waiting(q))
        pipe.zcard(self.keys.quarantine())
        replies = pipe.execute()
        stats = {k: int(v) for k, v in replies[0].items()}
        by_status = dict(zip([s.value for s in Status], replies[1 : 1 + len(Status)], strict=True))
        rest = replies[1 + len(Status) :]
        return {
            "stats": stats,
            "tickets_by_status": by_status,
            "tickets_by_queue": dict(zip(names, rest[: len(names)], strict=True)),
            "waiting_by_queue": dict(zip(names, rest[len(names) : 2 * len(names)], strict=True)),
            "quarantine": rest[-1],
        }

    @guarded
    def set_status(
        self, ticket_id: str, status: Status | str, actor: str = "system", reason: str = ""
    ) -> str | None:
        """Set the status (with why, in the same event); returns the previous one (None: no
        such ticket)."""
        now = utcnow()
        old = run_script(
            self.script("set_status"), self.prefix, ticket=ticket_id, status=Status(status).value,
            actor=actor, now_ms=ms(now), now_iso=now.isoformat(), reason=reason,
        )  # fmt: skip
        return old or None

    @guarded
    def move(
        self,
        ticket_id: str,
        queue: str,
        actor: str = "system",
        *,
        event: EventType = EventType.TRANSFERRED,
        reason: str = "",
    ) -> str | None:
        """Move to another queue (unassigning); returns the previous queue (None: no ticket)."""
        now = utcnow()
        old = run_script(
            self.script("move"), self.prefix, ticket=ticket_id, queue=queue, actor=actor,
            now_ms=ms(now), event=EventType(event).value, reason=reason, now_iso=now.isoformat(),
        )  # fmt: skip
        return old or None

    @guarded
    def assign(self, ticket_id: str, agent: str, actor: str = "system") -> bool:
        """Give the ticket to an agent: it leaves its queue's waiting set."""
        queue, channel = self.r.hmget(self.keys.ticket(ticket_id), "queue", "channel")
        if queue is None:
            return False
        queue = text(queue)
        pipe = self.r.pipeline(transaction=True)
        pipe.hset(self.keys.ticket(ticket_id), mapping={"assignee": agent})
        pipe.zrem(self.keys.queue_waiting(queue), ticket_id)
        channel = text_or_none(channel) or ""
        self._event(pipe, EventType.ASSIGNED, ticket_id, queue, channel, actor, {"agent": agent})
        pipe.execute()
        return True

    @guarded
    def set_due(self, ticket_id: str, due_at: datetime) -> None:
        """Reorder the ticket in its waiting set by a due time (tools and tests; the SLA hooks
        set theirs in their compare-and-set script, sla_write.lua)."""
        self.set_due_many([(ticket_id, due_at)])

    @guarded
    def set_due_many(self, dues: list[tuple[str, datetime]]) -> int:
        """`set_due` for many tickets in one script (lua/set_due.lua). A due time that moved
        comes with a `due_changed` event, which the records writer follows. Returns how many
        moved."""
        if not dues:
            return 0
        args: list[str | int] = [int(time.time() * 1000)]
        for ticket_id, due_at in dues:
            args += [ticket_id, ms(due_at), due_at.isoformat()]
        return int(self.script("set_due")(keys=[self.prefix], args=args))

    # ------------------------------------------------------------ messages

    @guarded
    def ticket_messages(self, ticket_id: str) -> list[Message]:
        mids = texts(self.r.lrange(self.keys.ticket_msgs(ticket_id), 0, -1))
        pipe = self.r.pipeline(transaction=False)
        for mid in mids:
            pipe.hgetall(self.keys.msg(mid))
        return [decode_fields(f, Message) for f in pipe.execute() if f]

    @guarded
    def messages_of(self, message_ids: Mapping[str, list[str]]) -> dict[str, list[Message]]:
        """Tickets' messages by the ids their ticket lists (`Ticket.message_ids`, read with
        the ticket), in one round trip (a batch's receipts); a message gone is left out."""
        pipe = self.r.pipeline(transaction=False)
        for ids in message_ids.values():
            for mid in ids:
                pipe.hgetall(self.keys.msg(mid))
        replies = iter(pipe.execute())
        return {
            tid: [decode_fields(f, Message) for f in [next(replies) for _ in ids] if f]
            for tid, ids in message_ids.items()
        }

    @guarded
    def get_message(self, message_id: str) -> Message | None:
        fields = self.r.hgetall(self.keys.msg(message_id))
        return decode_fields(text_fields(fields), Message) if fields else None

    @guarded
    def add_outbound_message(
        self,
        outbound: Outbound,
        author: str,
        direction: Direction = Direction.OUT,
        *,
        event: EventType | None = None,
    ) -> Message:
        """Record an agent's reply (delivery "queued") or note; event ``replied``/``noted``,
        or `event` for a message the system sends by itself (omnidesk.outbound.send_automatic:
        reports and the first-response facts count only ``replied`` as an agent's reply)."""
        (message,) = self.add_outbound_messages([outbound], author, direction, event=event)
        if message is None:
            raise KeyError(f"no ticket {outbound.ticket_id}")
        return message

    @guarded
    def add_outbound_messages(
        self,
        outbounds: list[Outbound],
        author: str,
        direction: Direction = Direction.OUT,
        *,
        event: EventType | None = None,
    ) -> list[Message | None]:
        """`add_outbound_message` for many, in two round trips whatever their number (a
        batch's receipts): their tickets' queue and channel, then one MULTI. One on a ticket
        that is gone (erased, merged away meanwhile) is not written: None in its place."""
        now = utcnow()
        pipe = self.r.pipeline(transaction=False)
        for outbound in outbounds:
            pipe.hmget(self.keys.ticket(outbound.ticket_id), "queue", "channel")
        tickets = pipe.execute()
        kind = event or (EventType.REPLIED if direction == Direction.OUT else EventType.NOTED)
        messages: list[Message | None] = []
        pipe = self.r.pipeline(transaction=True)
        for outbound, t in zip(outbounds, tickets, strict=True):
            if t[0] is None:
                messages.append(None)
                continue
            msg = Message(
                id=outbound.id,
                ticket_id=outbound.ticket_id,
                direction=direction,
                channel=outbound.channel,
                created_at=now,
                text=outbound.text,
                subject=outbound.subject,
                author=author,
                delivery="queued" if direction == Direction.OUT else None,
            )
            messages.append(msg)
            pipe.hset(self.keys.msg(msg.id), mapping=dict(_pairs(encode_fields(msg))))
            pipe.rpush(self.keys.ticket_msgs(outbound.ticket_id), msg.id)
            if event is None:  # what the system sends by itself is no update on the request
                pipe.hset(self.keys.ticket(outbound.ticket_id), "updated_at", now.isoformat())
            self._event(pipe, kind, outbound.ticket_id, t[0], t[1], author, {"message": msg.id})
        if any(m is not None for m in messages):
            pipe.execute()
        return messages

    def set_delivery(self, message_id: str, status: str, actor: str = "deliver") -> None:
        """Record what the channel said: sent, failed: <reason>, refused: <reason>, ..."""
        if self.set_deliveries([(message_id, status)], actor):
            raise KeyError(f"no message {message_id}")

    @guarded
    def set_deliveries(self, statuses: list[tuple[str, str]], actor: str = "deliver") -> list[str]:
        """`set_delivery` for many messages (a batch of receipts) in one script
        (lua/set_deliveries.lua): each status checked and written with its event together,
        so two statuses for one message at once cannot undo each other. Returns the ids of
        the messages not found (nothing is recorded for those). A status never moves back,
        nor is the same one written twice: one that would, such as a channel's `delivered`
        arriving after its `read`, is left out, and no event is written for it."""
        if not statuses:
            return []
        args: list[str] = [actor, str(int(time.time() * 1000)), _DELIVERY_ORDER_JSON]
        for message_id, status in statuses:
            args += (message_id, status)
        missing = self.script("set_deliveries")(keys=[self.prefix], args=args)
        return [str(m) for m in missing]

    @guarded
    def remember_sent(self, channel: str, pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """Note which of our messages each channel message id (`Receipt.external_id`, a
        WhatsApp wamid) is, for SENT_ID_TTL_S: the channel's later statuses name its id.
        Returns the statuses that came before this (`hold_early`), as (our id, status)."""
        if not pairs:
            return []
        pipe = self.r.pipeline(transaction=False)
        for external_id, message_id in pairs:
            pipe.set(self.keys.sent(channel, external_id), message_id, ex=SENT_ID_TTL_S)
            pipe.lrange(self.keys.early(channel, external_id), 0, -1)
            pipe.delete(self.keys.early(channel, external_id))
        replies = pipe.execute()
        return [
            (message_id, text_or_none(status) or "")
            for (_, message_id), held in zip(pairs, replies[1::3], strict=True)
            for status in held
        ]

    @guarded
    def hold_early(self, channel: str, statuses: list[tuple[str, str]]) -> None:
        """A channel's statuses for ids no send has noted yet, kept EARLY_STATUS_TTL_S for
        `remember_sent`: a fast `delivered` may come before its batch's sends are noted."""
        pipe = self.r.pipeline(transaction=False)
        for external_id, status in statuses:
            pipe.rpush(self.keys.early(channel, external_id), status)
            pipe.expire(self.keys.early(channel, external_id), EARLY_STATUS_TTL_S)
        if statuses:
            pipe.execute()

    @guarded
    def sent_messages(self, channel: str, external_ids: list[str]) -> dict[str, str]:
        """Our message ids for the channel's ids `remember_sent` noted (the others left out)."""
        if not external_ids:
            return {}
        found = self.r.mget([self.keys.sent(channel, e) for e in external_ids])
        pairs = zip(external_ids, (text_or_none(m) for m in found), strict=True)
        return {e: m for e, m in pairs if m}

    # ------------------------------------------------------------ customers

    @guarded
    def get_customer(self, customer_id: str) -> Customer | None:
        return self.get_customers([customer_id]).get(customer_id)

    @guarded
    def get_customers(self, customer_ids: list[str]) -> dict[str, Customer]:
        """Customers with their identities, in one round trip; unknown ids are left out."""
        pipe = self.r.pipeline(transaction=False)
        for cid in customer_ids:
            pipe.hgetall(self.keys.customer(cid))
            pipe.smembers(self.keys.customer_ids(cid))
        replies = pipe.execute()
        out: dict[str, Customer] = {}
        for cid, fields, ids in zip(customer_ids, replies[::2], replies[1::2], strict=True):
            if not fields:
                continue
            customer = decode_fields(fields, Customer)
            identities = []
            for key in sorted(ids):
                kind, _, value = key.partition(":")
                identities.append(Identity(kind=IdentityKind(kind), value=value))
            customer.identities = identities
            out[cid] = customer
        return out

    @guarded
    def find_customer(self, identity: Identity) -> str | None:
        return text_or_none(self.r.hget(self.keys.identity(), identity.key))

    @guarded
    def customer_tickets(self, customer_id: str, limit: int = 50) -> list[Ticket]:
        ids = self.r.zrevrange(self.keys.customer_tickets(customer_id), 0, max(0, limit - 1))
        return self.get_tickets(texts(ids))

    # ------------------------------------------------------------ events and counters

    @guarded
    def add_event(
        self,
        kind: EventType,
        ticket_id: str = "",
        *,
        queue: str = "",
        channel: str = "",
        actor: str = "system",
        **extra: str | int,
    ) -> str:
        """Append one event (sla_warned, sla_breached, csat, notify, ...); returns its id. An
        unknown type raises ValueError: every type is an omnidesk.events.EventType. The stream
        keeps text: an `extra` count is written as its decimal string."""
        pipe = self.r.pipeline(transaction=False)
        self._event(pipe, kind, ticket_id, queue, channel, actor, extra)
        return pipe.execute()[0]

    def _event(
        self,
        pipe: Any,
        kind: EventType,
        ticket_id: str,
        queue: str,
        channel: str,
        actor: str,
        extra: dict[str, Any],
    ) -> None:
        fields = {
            "type": EventType(kind).value,
            "ticket": ticket_id,
            "queue": queue or "",
            "channel": channel or "",
            "actor": actor,
            "ts": int(time.time() * 1000),
        }
        fields.update({k: str(v) for k, v in extra.items()})
        pipe.xadd(self.keys.events(), fields)

    @guarded
    def events(
        self, since: str = "0-0", count: int = 1000, block_ms: int | None = None
    ) -> list[tuple[str, dict[str, str]]]:
        """Events after stream id `since` (exclusive), oldest first; pass the last id back."""
        if block_ms is not None:
            reply = self.r.xread({self.keys.events(): since}, count=count, block=block_ms)
            return read_entries(reply)
        return entries(self.r.xrange(self.keys.events(), min=f"({since}", count=count))

    @guarded
    def incr(self, counter: str, amount: int = 1) -> None:
        self.r.hincrby(self.keys.stats(), counter, amount)

    # ------------------------------------------------------------ housekeeping

    @guarded
    def delete_all(self) -> int:
        """Delete every key under the prefix (tests and `omnidesk reset`); returns the count."""
        deleted = 0
        batch: list[str] = []
        for key in self.r.scan_iter(match=self.keys.all_pattern(), count=1000):
            batch.append(key)
            if len(batch) >= 500:
                deleted += self.r.unlink(*batch)
                batch = []
        if batch:
            deleted += self.r.unlink(*batch)
        return deleted


def _pairs(flat: list[str]) -> Iterator[tuple[str, str]]:
    it = iter(flat)
    return zip(it, it, strict=True)
