"""dramatiq's Redis broker made safe for Redis outages and restarts: nothing is acked that was
not applied, and what a dead or disconnected worker held comes back within a bound.

dramatiq's own paths, read in dramatiq 2.x (worker.py, brokers/redis.py, dispatch.lua,
middleware/retries.py), and what this module changes:

- `Retries` enqueues the retry copy, then the consumer acks the original. With Redis down the
  enqueue fails, is only logged, and the ack is retried until Redis is back: the message is
  gone. `DurableRetries` does not return until the retry copy is written.
- The consumer treats only `redis.ConnectionError` as a broker outage. A socket timeout or
  ``OOM command not allowed`` (Redis at maxmemory) on an ack is "a bug in Dramatiq": the
  message is left in the ack set of a live worker for good. `DurableRedisBroker` turns every
  transient Redis error into dramatiq's `ConnectionClosed`, which each path retries.
- A fetch whose reply is lost (Redis killed after writing it) leaves messages in this
  worker's ack set that it never saw; a consumer restart drops its delayed messages from
  memory. After a consumer's call fails the broker takes a new worker id when the current
  one may hold something (a call under it succeeded, or failed in a way that may have run
  it), so whatever the old id held is a dead worker's, and maintenance puts it back. A call
  refused at connect time was never sent and costs no id: an outage costs one or two. A
  failed send elsewhere (a hand-over, a retry copy) restarts no consumer and keeps the id.
- Dead workers' messages come back only when a 0.1 % random maintenance pass fires after a
  60 s heartbeat timeout. `BrokerKeeper` heartbeats and runs maintenance on every queue at
  worker start and every few seconds, so recovery takes at most heartbeat + interval.

Redeliveries are harmless: intake is idempotent (omnidesk/lua/intake.lua).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
import weakref
from collections import deque
from collections.abc import Callable
from typing import Any

import redis
from dramatiq.brokers.redis import RedisBroker, _RedisConsumer
from dramatiq.common import current_millis, dq_name, xq_name
from dramatiq.errors import BrokerConnectionError, ConnectionClosed
from dramatiq.middleware import Middleware, Retries, TimeLimit
from dramatiq.worker import _ConsumerThread  # private: which thread a failure restarts
from redis.commands.core import Script

from omnidesk.redispack import PACKER
from omnidesk.store import is_transient, lua

log = logging.getLogger("omnidesk.broker")

DEFAULT_HEARTBEAT_TIMEOUT_MS = 15_000
DEFAULT_MAINTENANCE_INTERVAL_MS = 5_000
# What consumers send: a failure there restarts the consumer (see `_failed`). A delay-queue
# consumer also enqueues (due messages), so its thread counts too.
CONSUMER_COMMANDS = frozenset({"fetch", "ack", "nack", "requeue"})
BROKER_SOCKET_TIMEOUT_S = 10.0  # as the store's client: far above any broker call's time
FORMER_IDS = 16  # worker ids an ack still tries after outages took them
RETRY_WRITE_PAUSE_S = 0.5  # between attempts to write a retry copy while Redis is away


class RedisUnavailable(ConnectionClosed):
    """A transient Redis failure as dramatiq's `ConnectionClosed`; `full` when Redis refused
    for want of memory (maxmemory with noeviction) rather than being away."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(cause)
        self.full = isinstance(cause, redis.exceptions.OutOfMemoryError)


def broker_down(exc: BaseException) -> bool:
    """Whether `exc` is a broker outage to wait out (dramatiq's connection errors, and the
    Redis errors `store.is_transient` calls transient): the one answer for the pipeline."""
    return isinstance(exc, BrokerConnectionError) or is_transient(exc)


def may_have_run(exc: BaseException) -> bool:
    """Whether a call that failed with `exc` may have run in Redis with its reply lost. A
    reply (OOM, LOADING...) means Redis refused it; a refused connection, that it was never
    sent. Anything else (reset, EOF, timeout) may have come after Redis ran it."""
    if isinstance(exc, redis.ResponseError | redis.BusyLoadingError):
        return False
    return not isinstance(exc.__cause__, ConnectionRefusedError)


class DurableRedisBroker(RedisBroker):
    """A RedisBroker whose every transient Redis failure is a `ConnectionClosed` (so dramatiq
    retries acks and restarts consumers) and costs the worker its id when that id may hold
    something (see the module doc)."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.former_ids: deque[str] = deque(maxlen=FORMER_IDS)
        # Whether Redis may hold something under the current id: a call under it succeeded,
        # or failed after it may have run. A fresh broker counts as used (a predecessor's
        # consumer state is unknown); a fresh id after a rotation does not.
        self._id_used = True
        self._id_lock = threading.Lock()
        self._ack_script = self.client.register_script(lua("broker_ack"))

    @property
    def consumer_class(self) -> type[_RedisConsumer]:
        return _DurableConsumer

    def _dispatch(self, command: str) -> Callable[..., Any]:
        call = super()._dispatch(command)

        def guarded(queue_name: str, *args: Any) -> Any:
            called_as = self.broker_id
            try:
                reply = call(queue_name, *args)
            except (redis.RedisError, OSError) as exc:
                if not is_transient(exc):
                    raise
                self._failed(called_as, exc, consumer_side=command in CONSUMER_COMMANDS)
                raise RedisUnavailable(exc) from None
            self._mark_used(called_as)
            return reply

        return guarded

    def _mark_used(self, called_as: str) -> None:
        with self._id_lock:
            if self.broker_id == called_as:
                self._id_used = True

    def _failed(self, called_as: str, exc: BaseException, *, consumer_side: bool) -> None:
        """A call under `called_as` failed. A consumer's failure restarts it, and it drops
        what it held in memory, so the id goes if it may hold anything, this call included.
        A failed send elsewhere (the web form, a retry copy) restarts nothing: the id stays,
        and the batches this worker is running keep their lease."""
        if may_have_run(exc):
            self._mark_used(called_as)
        if consumer_side or isinstance(threading.current_thread(), _ConsumerThread):
            self.rotate_id()

    def rotate_id(self) -> None:
        """Take a new worker id if the current one may hold something: its unacked messages
        go back through maintenance once its heartbeat is older than the timeout, whether
        this process saw them or not. Acks still try the former ids (`ack`)."""
        with self._id_lock:
            if self._id_used:
                self._id_used = False
                self.former_ids.appendleft(self.broker_id)
                self.broker_id = str(uuid.uuid4())

    def ack(self, queue_name: str, redis_message_id: str) -> None:
        """Ack under the current id or a former one, whichever fetched the message."""
        args = [self.namespace, queue_name, redis_message_id, self.broker_id, *self.former_ids]
        try:
            self._ack_script(keys=[], args=args)
        except (redis.RedisError, OSError) as exc:
            if not is_transient(exc):
                raise
            self._failed(args[3], exc, consumer_side=True)  # the consumer thread acks
            raise RedisUnavailable(exc) from None

    def heartbeat(self) -> None:
        """Mark this worker alive, whatever its consumers are doing."""
        self.client.zadd(f"{self.namespace}:__heartbeats__", {self.broker_id: current_millis()})

    def maintain(self) -> None:
        """Requeue dead workers' unacked messages and expire old dead letters, on every queue
        and delay queue (dramatiq's maintenance pass, run now rather than by chance)."""
        dispatch = self.scripts["dispatch"]
        for queue in sorted(self.queues | self.delay_queues):
            args = [
                "qsize",  # read-only: only the maintenance part of the script does anything
                current_millis(),
                queue,
                self.broker_id,
                self.heartbeat_timeout,
                self.dead_message_ttl,
                1,
                self._max_unpack_size(),
            ]
            dispatch(args=args, keys=[self.namespace])


class _DurableConsumer(_RedisConsumer):
    """dramatiq's Redis consumer with the broker's ack (see `DurableRedisBroker.ack`)."""

    def ack(self, message: Any) -> None:
        try:
            self.broker.ack(self.queue_name, message.options["redis_message_id"])
        finally:
            self.queued_message_ids.discard(message.message_id)


class DurableRetries(Retries):
    """`Retries` that returns only once the retry copy is in the broker, so the original is
    never acked without it. The actor's time limit is lifted first: it must not interrupt
    the write."""

    def after_process_message(
        self, broker: Any, message: Any, *, result: Any = None, exception: Any = None
    ) -> None:
        if exception is None:
            return
        for middleware in broker.middleware:
            if isinstance(middleware, TimeLimit):
                middleware.after_process_message(broker, message)
        saved = dict(message.options)
        while True:
            try:
                super().after_process_message(broker, message, result=result, exception=exception)
                return
            except (BrokerConnectionError, redis.RedisError, OSError) as exc:
                message.options.clear()
                message.options.update(saved)
                log.warning(
                    "retry of %s#%s not written yet (%s); trying again",
                    message.actor_name,
                    message.message_id,
                    exc,
                )
                time.sleep(RETRY_WRITE_PAUSE_S)


class BrokerKeeper(Middleware):
    """While a worker runs: a heartbeat and a maintenance pass at start and then every
    `interval_ms`, in a thread of its own, so a batch that runs long keeps its lease and a
    dead worker's batches are back within heartbeat timeout + interval."""

    def __init__(self, interval_ms: int = DEFAULT_MAINTENANCE_INTERVAL_MS) -> None:
        self.interval_s = interval_ms / 1000
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def after_worker_boot(self, broker: Any, worker: Any) -> None:
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run, args=(broker,), name="broker-keeper", daemon=True
        )
        self._thread.start()

    def after_worker_shutdown(self, broker: Any, worker: Any) -> None:
        """Only now: while dramatiq drains, running batches keep their heartbeat (consumers
        that are full fetch nothing, so they would not keep it)."""
        self._stop.set()

    def _run(self, broker: DurableRedisBroker) -> None:
        while True:
            try:
                broker.heartbeat()
                broker.maintain()
            except (redis.RedisError, OSError) as exc:
                log.warning("broker maintenance skipped: %s", exc)
            if self._stop.wait(self.interval_s):
                return


def redis_broker(
    url: str,
    namespace: str,
    *,
    heartbeat_timeout_ms: int | None = None,
    maintenance_chance: int | None = None,
    maintenance_interval_ms: int | None = None,
    socket_timeout_s: float = BROKER_SOCKET_TIMEOUT_S,
) -> DurableRedisBroker:
    """The Redis broker with the safe retries and the keeper in place of dramatiq's. Its
    client has its own timeout (redis-py's default differs by version): a Redis that hangs is an
    outage like any other, not a worker stalled until it answers."""
    client = redis.Redis.from_url(
        url,
        socket_timeout=socket_timeout_s,
        socket_connect_timeout=socket_timeout_s,
        command_packer=PACKER,
    )
    options: dict[str, Any] = {
        "client": client,
        "namespace": namespace,
        "heartbeat_timeout": heartbeat_timeout_ms or DEFAULT_HEARTBEAT_TIMEOUT_MS,
    }
    if maintenance_chance is not None:
        options["maintenance_chance"] = maintenance_chance
    broker = DurableRedisBroker(**options)
    for index, middleware in enumerate(broker.middleware):
        if type(middleware) is Retries:
            broker.middleware[index] = DurableRetries(
                max_retries=middleware.max_retries,
                min_backoff=middleware.min_backoff,
                max_backoff=middleware.max_backoff,
                retry_when=middleware.retry_when,
            )
    broker.add_middleware(BrokerKeeper(maintenance_interval_ms or DEFAULT_MAINTENANCE_INTERVAL_MS))
    return broker


# ---------------------------------------------------------------- what /metrics shows

# No "retrying": only retries are delayed here (dramatiq's Retries puts each in the delay
# queue), and telling a retry from a first try costs reading every message body.
FIGURES = ("queued", "in_flight", "delayed", "dead", "oldest_age_s")


def queue_figures(broker: Any) -> dict[str, dict[str, float]]:
    """Per queue: messages queued, in flight (fetched, not acked), delayed (retries waiting
    out their backoff), dead-lettered, and the age in seconds of the oldest one still to be
    done, as sampled (omnidesk/lua/broker_figures.lua). Empty for a broker that is not Redis."""
    if not isinstance(broker, RedisBroker):
        return {}
    script = _figures_script(broker)
    return {
        queue: parse_figures(script(keys=[], args=figures_args(broker.namespace, queue)))
        for queue in sorted(broker.queues)
    }


def figures_args(namespace: str, queue: str) -> list[Any]:
    """The figures script's ARGV for one queue, now."""
    return [namespace, queue, dq_name(queue), xq_name(queue), current_millis()]


def parse_figures(reply: list[Any]) -> dict[str, float]:
    """The figures script's reply as FIGURES (an unknown oldest age is 0)."""
    values = [int(v) for v in reply]
    figures = dict(zip(FIGURES[:4], (float(v) for v in values[:4]), strict=True))
    figures["oldest_age_s"] = values[4] / 1000 if values[4] >= 0 else 0.0
    return figures


FIGURES_TIMEOUT_S = 2.0  # /healthz answers quickly when Redis hangs (the broker waits 10 s)


# Each broker's figures script, made once; it goes with its broker.
_FIGURES: weakref.WeakKeyDictionary[RedisBroker, Script] = weakref.WeakKeyDictionary()


def _figures_script(broker: RedisBroker) -> Script:
    """The figures script on a client of the broker's server with short timeouts, made once
    per broker."""
    script = _FIGURES.get(broker)
    if script is None:
        pool = broker.client.connection_pool
        kwargs = {
            **pool.connection_kwargs,
            "socket_timeout": FIGURES_TIMEOUT_S,
            "socket_connect_timeout": FIGURES_TIMEOUT_S,
        }
        client = redis.Redis(
            connection_pool=redis.ConnectionPool(connection_class=pool.connection_class, **kwargs)
        )
        script = client.register_script(lua("broker_figures"))
        _FIGURES[broker] = script
    return script
