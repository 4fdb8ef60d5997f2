"""Overload made explicit: whether intake should take more work right now.

The broker's queue figures (omnidesk/lua/broker_figures.lua: the ingest backlog is the
`ingest` queue's messages queued, in flight or delayed), Redis memory and Redis reachability
are probed together, at most once per `ttl` seconds however many requests or /healthz and
/metrics scrapes ask, so a burst of web posts costs one small Redis round trip per half second.
A Redis whose `maxmemory-policy` may evict keys is reported (`redis_evicts`): eviction could
drop broker messages and tickets silently. Refused figures (an ACL without INFO) are unknown,
not an outage.
When intake must wait, `admit()` raises `Overloaded` (a TransientError carrying Retry-After):
the web endpoint answers 503, and the connectors' reconnect loop sleeps and pulls again later
without advancing their cursors, so nothing is dropped.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field, replace
from typing import Any

import redis
import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry, Counter, Gauge

from omnidesk.errors import TransientError
from omnidesk.redisbroker import figures_args, parse_figures
from omnidesk.store import is_transient, lua

log = logging.getLogger("omnidesk.overload")

# With `noeviction`, writes fail once used memory passes maxmemory. Intake stops a little
# earlier so the workers still have room to turn the backlog into tickets.
MEMORY_HEADROOM = 0.95
PROBE_TIMEOUT_S = 1.0

BACKLOG = "backlog"
REDIS_OOM = "redis_oom"
REDIS_DOWN = "redis_down"
REDIS_EVICTS = "redis_evicts"  # degraded, not refused: maxmemory-policy is not noeviction


class Overloaded(TransientError):
    """Intake refused for now; `reason` is backlog, redis_oom or redis_down."""

    def __init__(self, message: str, *, reason: str, retry_after: float) -> None:
        super().__init__(message, retry_after=retry_after)
        self.reason = reason


@dataclass(frozen=True)
class Pressure:
    """One probe's result: `reason` is None when intake may go on."""

    reason: str | None
    backlog: int | None  # ingest messages queued, in flight or delayed; None when unknown
    max_backlog: int
    queues: dict[str, dict[str, float]] = field(default_factory=dict)  # broker figures
    notes: tuple[str, ...] = ()  # degraded without refusing: redis_evicts

    def health(self) -> dict[str, Any]:
        """The /healthz block: status ok/degraded, why, and the backlog figures."""
        degraded = ([self.reason] if self.reason else []) + list(self.notes)
        return {
            "status": "degraded" if degraded else "ok",
            "degraded": degraded,
            "ingest_backlog": self.backlog,
            "ingest_max_backlog": self.max_backlog,
        }


class IntakeGate:
    """Caches one probe of the broker's Redis; `admit()` raises Overloaded when it says so."""

    def __init__(
        self,
        client: aioredis.Redis | None,
        broker: Any = None,
        backlog_queue: str = "ingest",
        *,
        max_backlog: int,
        retry_after: float,
        registry: CollectorRegistry | None = None,
        ttl: float = 0.5,
    ) -> None:
        self.client = client  # None: the broker is not Redis (RabbitMQ) and is not probed
        self.broker = broker  # its declared queues are the ones whose figures are read
        self.backlog_queue = backlog_queue
        self._figures = client.register_script(lua("broker_figures")) if client else None
        self._warned: set[str] = set()  # what was logged once: evicts, refused reads
        self.max_backlog = max_backlog
        self.retry_after = retry_after
        self.ttl = ttl
        self._last: Pressure = Pressure(None, None, max_backlog)
        self._last_at = float("-inf")
        self._probing: asyncio.Task[Pressure] | None = None
        self._sent_since_probe = 0
        self.refused = Counter(
            "omnidesk_intake_refused",
            "Hand-overs refused with 503/Retry-After, by reason (backlog, redis_oom, redis_down)",
            ["reason"],
            registry=registry,
        )
        self.backlog_gauge = Gauge(
            "omnidesk_intake_backlog",
            "Ingest messages queued, in flight or delayed, as the intake gate last saw them",
            registry=registry,
        )

    @classmethod
    def for_broker(
        cls,
        broker: Any,
        url: str,
        queue: str,
        *,
        max_backlog: int,
        retry_after: float,
        **kwargs: Any,
    ) -> IntakeGate:
        """A gate on a dramatiq RedisBroker at `url` whose backlog is `queue`'s; it reads every
        declared queue's figures, for /healthz and /metrics too."""
        from dramatiq.brokers.redis import RedisBroker

        if not isinstance(broker, RedisBroker):  # omnidesk.redisbroker's is a subclass
            return cls(None, max_backlog=max_backlog, retry_after=retry_after, **kwargs)
        client = aioredis.Redis.from_url(
            url, socket_timeout=PROBE_TIMEOUT_S, socket_connect_timeout=PROBE_TIMEOUT_S
        )
        return cls(
            client, broker, queue, max_backlog=max_backlog, retry_after=retry_after, **kwargs
        )

    async def pressure(self) -> Pressure:
        """The latest probe, refreshed when older than `ttl`; concurrent callers share one."""
        if self.client is None or time.monotonic() - self._last_at < self.ttl:
            return self._last
        if self._probing is None or self._probing.done():
            self._probing = asyncio.ensure_future(self._probe())
        return await asyncio.shield(self._probing)

    async def admit(self, *, count: bool = True) -> None:
        """Return when intake may hand over; raise Overloaded (with Retry-After) when not.
        `count=False` for a connector's look before pulling: nothing was refused yet."""
        pressure = await self.pressure()
        reason = pressure.reason
        if reason is None and self._over_bound(pressure.backlog):
            reason = BACKLOG
        if reason is None:
            return
        if count:
            raise self.refuse(reason)
        raise Overloaded(_MESSAGES[reason], reason=reason, retry_after=self.retry_after)

    def sent(self, messages: int) -> None:
        """Count messages handed over since the last probe, so that a burst between two
        probes does not run far past the bound."""
        self._sent_since_probe += messages

    def _over_bound(self, backlog: int | None) -> bool:
        if not self.max_backlog or backlog is None:
            return False
        return backlog + self._sent_since_probe >= self.max_backlog

    def refuse(self, reason: str) -> Overloaded:
        """Count a refusal and build its error; a failed hand-over also lands here."""
        self.refused.labels(reason=reason).inc()
        return Overloaded(_MESSAGES[reason], reason=reason, retry_after=self.retry_after)

    def saw_failure(self, reason: str) -> None:
        """A hand-over met Redis trouble: report it until the next probe says otherwise."""
        self._last = replace(self._last, reason=reason)
        self._last_at = time.monotonic()

    async def close(self) -> None:
        if self.client is not None:
            await self.client.aclose()

    async def _probe(self) -> Pressure:
        assert self.client is not None
        self._sent_since_probe = 0
        try:
            async with asyncio.timeout(PROBE_TIMEOUT_S * 2):
                queues = self._queues()
                *figures, memory = await self._read(queues)
        except (redis.RedisError, OSError) as exc:  # asyncio's TimeoutError is an OSError
            if is_transient(exc):
                log.warning("intake gate: redis unreachable: %s", exc)
                pressure = Pressure(REDIS_DOWN, None, self.max_backlog)
            else:  # refused for good (ACL): not an outage, and no figures
                self._warn_once("refused", "intake gate: redis refuses the probe: %s", exc)
                pressure = Pressure(None, None, self.max_backlog)
        else:
            pressure = self._pressure(queues, figures, memory)
        self._last, self._last_at = pressure, time.monotonic()
        return pressure

    async def _read(self, queues: list[str]) -> list[Any]:
        """Each declared queue's figures and INFO memory in one round trip; a command's
        error comes back in its place."""
        assert self.client is not None and self._figures is not None
        pipe = self.client.pipeline(transaction=False)
        # loaded first if a restart emptied the script cache; redis-py types an asyncio
        # pipeline's scripts as the sync Script, though it holds (and loads) an AsyncScript
        pipe.scripts.add(self._figures)  # type: ignore[arg-type]
        for queue in queues:
            pipe.evalsha(self._figures.sha, 0, *figures_args(self.broker.namespace, queue))
        pipe.info("memory")
        return list(await pipe.execute(raise_on_error=False))

    def _queues(self) -> list[str]:
        return sorted(self.broker.get_declared_queues() | {self.backlog_queue})

    def _pressure(self, names: list[str], replies: list[Any], memory: Any) -> Pressure:
        queues: dict[str, dict[str, float]] = {}
        for queue, reply in zip(names, replies, strict=True):
            if isinstance(reply, Exception):
                if is_transient(reply):
                    return Pressure(REDIS_DOWN, None, self.max_backlog)
                self._warn_once("figures", "intake gate: broker figures refused: %s", reply)
                continue
            queues[queue] = parse_figures(reply)
        ingest = queues.get(self.backlog_queue)
        backlog = None
        if ingest is not None:
            backlog = int(ingest["queued"] + ingest["in_flight"] + ingest["delayed"])
            self.backlog_gauge.set(backlog)
        if isinstance(memory, Exception):
            if is_transient(memory):
                return Pressure(REDIS_DOWN, backlog, self.max_backlog, queues)
            self._warn_once(
                "memory", "intake gate: INFO memory refused, memory unknown: %s", memory
            )
            memory = {}
        notes = self._notes(memory)
        return Pressure(self._reason(backlog, memory), backlog, self.max_backlog, queues, notes)

    def _notes(self, memory: dict[str, Any]) -> tuple[str, ...]:
        policy = memory.get("maxmemory_policy", "noeviction")
        if isinstance(policy, bytes):
            policy = policy.decode()
        if policy == "noeviction":
            return ()
        self._warn_once(
            REDIS_EVICTS,
            "redis maxmemory-policy is %s, not noeviction: at its memory limit Redis may evict "
            "broker messages and tickets; set maxmemory-policy noeviction",
            policy,
        )
        return (REDIS_EVICTS,)

    def _warn_once(self, what: str, text: str, *args: Any) -> None:
        if what not in self._warned:
            self._warned.add(what)
            log.warning(text, *args)

    def _reason(self, backlog: int | None, memory: dict[str, Any]) -> str | None:
        if _memory_full(memory):
            return REDIS_OOM
        return BACKLOG if self._over_bound(backlog) else None


def _memory_full(memory: dict[str, Any]) -> bool:
    """True when Redis refuses (or is about to refuse) writes: noeviction near maxmemory."""
    limit = int(memory.get("maxmemory", 0) or 0)
    if not limit or memory.get("maxmemory_policy", "noeviction") != "noeviction":
        return False
    return int(memory.get("used_memory", 0)) >= limit * MEMORY_HEADROOM


_MESSAGES = {
    BACKLOG: "the ingest backlog is over its bound",
    REDIS_OOM: "redis is out of memory",
    REDIS_DOWN: "redis is unreachable",
}
