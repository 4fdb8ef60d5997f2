"""Overload made explicit: whether intake should take more work right now.

The ingest backlog (dramatiq messages waiting or in flight on the `ingest` queue), Redis
memory and Redis reachability are probed together, at most once per `ttl` seconds however many
requests ask, so a burst of web posts costs one small Redis round trip per half second.
When intake must wait, `admit()` raises `Overloaded` (a TransientError carrying Retry-After):
the web endpoint answers 503, and the connectors' reconnect loop sleeps and pulls again later
without advancing their cursors, so nothing is dropped.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

import redis
import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry, Counter, Gauge

from omnidesk.errors import TransientError

log = logging.getLogger("omnidesk.overload")

# With `noeviction`, writes fail once used memory passes maxmemory. Intake stops a little
# earlier so the workers still have room to turn the backlog into tickets.
MEMORY_HEADROOM = 0.95
PROBE_TIMEOUT_S = 1.0

BACKLOG = "backlog"
REDIS_OOM = "redis_oom"
REDIS_DOWN = "redis_down"


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

    def health(self) -> dict[str, Any]:
        """The /healthz block: status ok/degraded, why, and the backlog figures."""
        return {
            "status": "degraded" if self.reason else "ok",
            "degraded": [self.reason] if self.reason else [],
            "ingest_backlog": self.backlog,
            "ingest_max_backlog": self.max_backlog,
        }


class IntakeGate:
    """Caches one probe of the broker's Redis; `admit()` raises Overloaded when it says so."""

    def __init__(
        self,
        client: aioredis.Redis | None,
        backlog_keys: list[str],
        *,
        max_backlog: int,
        retry_after: float,
        registry: CollectorRegistry | None = None,
        ttl: float = 0.5,
    ) -> None:
        self.client = client  # None: the broker is not Redis (RabbitMQ) and is not probed
        self.backlog_keys = backlog_keys
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
        """A gate on a dramatiq RedisBroker's queue at `url`: its `<ns>:<queue>.msgs` hash holds
        every message not yet acked, and `<queue>.DQ.msgs` the ones waiting for a retry."""
        from dramatiq.brokers.redis import RedisBroker

        if not isinstance(broker, RedisBroker):  # omnidesk.redisbroker's is a subclass
            return cls(None, [], max_backlog=max_backlog, retry_after=retry_after, **kwargs)
        client = aioredis.Redis.from_url(
            url, socket_timeout=PROBE_TIMEOUT_S, socket_connect_timeout=PROBE_TIMEOUT_S
        )
        keys = [f"{broker.namespace}:{queue}.msgs", f"{broker.namespace}:{queue}.DQ.msgs"]
        return cls(client, keys, max_backlog=max_backlog, retry_after=retry_after, **kwargs)

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
        self._last = Pressure(reason, self._last.backlog, self.max_backlog)
        self._last_at = time.monotonic()

    async def close(self) -> None:
        if self.client is not None:
            await self.client.aclose()

    async def _probe(self) -> Pressure:
        assert self.client is not None
        self._sent_since_probe = 0
        try:
            async with asyncio.timeout(PROBE_TIMEOUT_S * 2):
                pipe = self.client.pipeline(transaction=False)
                for key in self.backlog_keys:
                    pipe.hlen(key)
                pipe.info("memory")
                *lengths, memory = await pipe.execute()
        except (redis.RedisError, OSError, TimeoutError) as exc:
            log.warning("intake gate: redis unreachable: %s", exc)
            pressure = Pressure(REDIS_DOWN, None, self.max_backlog)
        else:
            backlog = int(sum(lengths))
            self.backlog_gauge.set(backlog)
            pressure = Pressure(self._reason(backlog, memory), backlog, self.max_backlog)
        self._last, self._last_at = pressure, time.monotonic()
        return pressure

    def _reason(self, backlog: int, memory: dict[str, Any]) -> str | None:
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
