"""The dramatiq pipeline: the broker, the actors, the connectors' hand-over and workers.

    broker = make_broker(url, namespace)      # redis://... (default) or amqp://... (RabbitMQ)
    pipe = Pipeline(runtime, broker)          # declares ingest, deliver, escalate, notify
    await pipe.handover(raws)                 # the connectors' Sink: batches of RawPayload
    worker = pipe.start_worker(threads=4)     # in-process; worker.stop() to drain
    python -m omnidesk.pipeline --config queue_config.yaml --threads 2   # a worker process

Connectors hand over *batches* (up to `batch_size` payloads per dramatiq message) so a burst
does not cost one broker round trip, nor one Redis round trip per intake, per message.
Messages carry msgspec JSON; bytes travel as base64.

Kept whole though over 500 lines: the actors, their retries and the hand-over share the
broker, the codecs and the wait-out-an-outage helpers; each actor is short.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import functools
import logging
import signal
import threading
import time
from collections.abc import Callable, Collection, Coroutine, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import dramatiq
import msgspec
import redis
from dramatiq.middleware import CurrentMessage

from omnidesk import gctune
from omnidesk.backoff import jittered_delay
from omnidesk.config import Limits
from omnidesk.errors import (
    ConfigError,
    MissingExtra,
    PermanentError,
    StoreFull,
    StoreUnavailable,
    TransientError,
)
from omnidesk.events import EventType
from omnidesk.logs import hide_message_bodies
from omnidesk.model import Channel, Outbound, RawPayload, Receipt
from omnidesk.redisbroker import RedisUnavailable, broker_down, redis_broker
from omnidesk.runtime import Runtime

if TYPE_CHECKING:
    from omnidesk.writer_process import WriterProcess

log = logging.getLogger("omnidesk.pipeline")

_T = TypeVar("_T")
SendFn = Callable[[Outbound], Coroutine[Any, Any, Receipt]]
SendManyFn = Callable[[list[Outbound]], Coroutine[Any, Any, list[Receipt | Exception]]]
NotifyFn = Callable[[dict[str, str]], None]

INGEST_MAX_RETRIES = 1000  # store outages are waited out, not given up on
INGEST_TIME_LIMIT_MS = 10 * 60_000
INGEST_WAIT_S = INGEST_TIME_LIMIT_MS * 0.8 / 1000  # waited in place before a durable retry
WAIT_MIN_PAUSE_S = 0.2
WAIT_MAX_PAUSE_S = 5.0
# What an `omnidesk worker` process takes; `deliver` stays with the daemons, which hold the
# connectors that send.
WORKER_QUEUES = ("ingest", "sla")
DELIVER_MAX_ATTEMPTS = 8
# the channels whose statuses for a sent message come back later (WhatsApp's delivered and
# read): only their sends' ids are noted (Store.remember_sent)
STATUS_CHANNELS = frozenset({Channel.WHATSAPP})
# A batch's receipts (at most an ingest batch's, 100) at their 120 s send timeout each, and
# the status write's wait for the store: never cut short by dramatiq's 10-minute default.
DELIVER_MANY_TIME_LIMIT_MS = 6 * 3600 * 1000
DELIVER_MIN_BACKOFF_MS = 1_000
DELIVER_MAX_BACKOFF_MS = 15 * 60_000

_batch_codec = msgspec.json.Encoder()
_batch_decoder = msgspec.json.Decoder(list[RawPayload])
_outbound_decoder = msgspec.json.Decoder(Outbound)
_outbounds_decoder = msgspec.json.Decoder(list[Outbound])
_BROKER_ERRORS = (redis.RedisError, OSError, dramatiq.errors.BrokerConnectionError)


def make_broker(
    url: str,
    namespace: str = "od",
    *,
    heartbeat_timeout_ms: int | None = None,
    maintenance_chance: int | None = None,
    maintenance_interval_ms: int | None = None,
) -> dramatiq.Broker:
    """A broker from a URL. Redis keys go under ``<namespace>:dramatiq`` so runs sharing a
    Redis stay apart. On Redis, a dead worker's messages come back within the heartbeat
    timeout plus the maintenance interval (omnidesk.redisbroker: 15 s + 5 s by default)."""
    if url.startswith(("redis://", "rediss://", "unix://")):
        broker: dramatiq.Broker = redis_broker(
            url,
            f"{namespace}:dramatiq",
            heartbeat_timeout_ms=heartbeat_timeout_ms,
            maintenance_chance=maintenance_chance,
            maintenance_interval_ms=maintenance_interval_ms,
        )
    elif url.startswith(("amqp://", "amqps://")):
        try:
            from dramatiq.brokers.rabbitmq import RabbitmqBroker
        except ImportError:
            missing = MissingExtra("service.broker_url: amqp (RabbitMQ)", "rabbitmq")
            raise ConfigError([str(missing)]) from None
        # confirm_delivery: a hand-over returns only once RabbitMQ has the message, as the
        # connectors' cursor contract needs. Queue names carry the namespace instead of keys.
        broker = RabbitmqBroker(url=url, confirm_delivery=True)
        # queue_name() reads this; RabbitmqBroker (pika, an optional import) has no such field
        broker.omnidesk_queue_prefix = f"{namespace}."  # type: ignore[attr-defined]
    else:
        raise ConfigError([f"service.broker_url: unsupported scheme in {url.split('://')[0]!r}"])
    broker.add_middleware(CurrentMessage())
    return broker


def _unavailable(exc: Exception) -> Exception:
    """A failed send as ours: StoreFull when Redis refused for want of memory, so intake
    says redis_oom rather than redis_down; StoreUnavailable for an outage; else as it was."""
    if not broker_down(exc):
        return exc
    if isinstance(exc, RedisUnavailable) and exc.full:
        return StoreFull(f"broker full: {exc}")
    return StoreUnavailable(f"broker unavailable: {exc}")


def queue_name(broker: dramatiq.Broker, name: str) -> str:
    """The broker-side name of one of our queues: plain on Redis (its keys carry the
    namespace), ``<namespace>.<name>`` on RabbitMQ, where runs sharing a vhost stay apart."""
    return f"{getattr(broker, 'omnidesk_queue_prefix', '')}{name}"


# ---------------------------------------------------------------- senders and notifiers


@dataclass(frozen=True)
class _Sender:
    send: SendFn
    loop: asyncio.AbstractEventLoop | None
    # a whole batch's messages in one call (a connector that writes files: one thread hop
    # for the lot, not one per message); each message's receipt or error, in order
    send_many: SendManyFn | None = None


_senders: dict[tuple[str, str], _Sender] = {}
_notifiers: list[NotifyFn] = []


def register_sender(
    channel: Channel | str,
    account: str,
    send: SendFn,
    loop: asyncio.AbstractEventLoop | None = None,
    send_many: SendManyFn | None = None,
) -> None:
    """Who sends replies for (channel, account); account ``*`` is the channel's fallback.
    Give the event loop the sender lives on (the daemon's) and `deliver` runs it there;
    `send_many`, when the sender has one, takes all of a batch's messages at once."""
    _senders[(Channel(channel).value, account)] = _Sender(send, loop, send_many)


def unregister_sender(channel: Channel | str, account: str) -> None:
    _senders.pop((Channel(channel).value, account), None)


def register_notifier(fn: NotifyFn) -> None:
    """Called with each `notify` event (the SLA issue plugs e-mail/Telegram alerts in here)."""
    _notifiers.append(fn)


def _find_sender(outbound: Outbound) -> _Sender | None:
    channel = Channel(outbound.channel).value
    return _senders.get((channel, outbound.account)) or _senders.get((channel, "*"))


def _send_in_turn(outbounds: list[Outbound], timeout: float = 120.0) -> list[Receipt | Exception]:
    """Send each outbound through its sender, one after another, on the sender's event
    loop (the daemon's: one hop for the lot) or, without one, on a loop of our own; a sender
    with `send_many` gets all of its outbounds in one call. Returns each one's receipt or
    error, in order."""
    outcomes: list[Receipt | Exception | None] = [None] * len(outbounds)
    by_loop: dict[asyncio.AbstractEventLoop | None, list[tuple[int, _Sender]]] = {}
    for n, outbound in enumerate(outbounds):
        sender = _find_sender(outbound)
        if sender is None:
            outcomes[n] = TransientError(f"no sender for {outbound.channel}:{outbound.account}")
            continue
        loop = sender.loop if sender.loop is not None and sender.loop.is_running() else None
        by_loop.setdefault(loop, []).append((n, sender))

    async def in_turn(jobs: list[tuple[int, _Sender]]) -> None:
        at_once: dict[int, tuple[_Sender, list[int]]] = {}  # by the registered sender
        for n, sender in jobs:
            if sender.send_many is not None:
                at_once.setdefault(id(sender), (sender, []))[1].append(n)
            else:
                (outcomes[n],) = await _sent(sender, [outbounds[n]], timeout)
        for sender, numbers in at_once.values():
            sent = await _sent(sender, [outbounds[n] for n in numbers], timeout)
            for n, outcome in zip(numbers, sent, strict=True):
                outcomes[n] = outcome

    for loop, jobs in by_loop.items():
        if loop is None:
            asyncio.run(in_turn(jobs))
            continue
        future = asyncio.run_coroutine_threadsafe(in_turn(jobs), loop)
        try:  # each send has its own timeout; this one is for a loop that stopped meanwhile
            future.result(timeout * len(jobs) + 30)
        except concurrent.futures.TimeoutError:
            future.cancel()
    return [o if o is not None else TransientError("not sent") for o in outcomes]


async def _sent(
    sender: _Sender, outbounds: list[Outbound], timeout: float
) -> list[Receipt | Exception]:
    """Each outbound's receipt or error: one through `send`, several through `send_many`,
    within `timeout` per message. Whatever goes wrong is each message's error: the batch
    must end with every message's outcome recorded."""
    limit = timeout * len(outbounds)
    try:
        if sender.send_many is None:
            return [await asyncio.wait_for(sender.send(outbounds[0]), limit)]
        sent = await asyncio.wait_for(sender.send_many(outbounds), limit)
        if len(sent) == len(outbounds):
            return sent
        error: Exception = TransientError(f"the sender answered {len(sent)} of {len(outbounds)}")
    except TimeoutError:
        error = TransientError(f"no answer from the channel in {limit:.0f} s")
    except Exception as exc:
        error = exc
    return [error] * len(outbounds)


def delivery_status(outcome: Receipt | PermanentError) -> str:
    """What `set_delivery` records for a send's outcome."""
    if isinstance(outcome, PermanentError):
        return f"failed: {outcome}"
    if outcome.status == "sent":
        return "sent"
    return f"{outcome.status}: {outcome.detail}".rstrip(": ")


def retrying_status(error: Exception, attempt: int) -> str:
    """What is recorded while a send that failed for now waits for its next attempt:
    ``retrying: <reason> (attempt k of N)``, k the attempt that failed (the console shows
    the word and the count in the agent's language, and styles it as a warning)."""
    return f"retrying: {error} (attempt {attempt} of {DELIVER_MAX_ATTEMPTS})"


def backoff_ms(attempt: int, retry_after: float | None = None) -> int:
    """The delivery retry delay (omnidesk.backoff); the server's Retry-After wins when given."""
    if retry_after is not None:
        return int(retry_after * 1000)
    return int(jittered_delay(attempt, DELIVER_MIN_BACKOFF_MS, DELIVER_MAX_BACKOFF_MS))


def until_applied(apply: Callable[[], _T], budget_s: float, what: str) -> _T:
    """`apply()`, again and again with backoff while it raises a TransientError (Redis away,
    loading or out of memory), for at most `budget_s`; then the last error is raised."""
    deadline = time.monotonic() + budget_s
    attempt = 0
    while True:
        try:
            return apply()
        except TransientError as exc:
            pause = jittered_delay(attempt, WAIT_MIN_PAUSE_S, WAIT_MAX_PAUSE_S)
            if time.monotonic() + pause > deadline:
                raise
            log.warning("%s: %s; trying again in %.1fs", what, exc, pause)
            time.sleep(pause)
            attempt += 1


# ---------------------------------------------------------------- the pipeline


class Pipeline:
    """The actors bound to one broker and one runtime."""

    def __init__(self, runtime: Runtime, broker: dramatiq.Broker) -> None:
        self.runtime = runtime
        self.broker = broker
        if runtime.send_replies is None:  # the ingest actor's receipts go out through deliver
            runtime.send_replies = self.send_replies
        hide_message_bodies()  # dramatiq would log whole batches on a failure
        dramatiq.set_broker(broker)
        # dramatiq types actor(fn, **options) only in its decorator form: options first
        self.ingest = dramatiq.actor(
            broker=broker,
            actor_name="ingest",
            queue_name=queue_name(broker, "ingest"),
            max_retries=INGEST_MAX_RETRIES,
            min_backoff=500,
            max_backoff=60_000,
            time_limit=INGEST_TIME_LIMIT_MS,
        )(self._ingest)
        self.deliver = dramatiq.actor(
            broker=broker,
            actor_name="deliver",
            queue_name=queue_name(broker, "deliver"),
            max_retries=DELIVER_MAX_ATTEMPTS + 2,  # our own count below decides first
        )(self._deliver)
        # a batch's receipts: one broker message, sent in turn, statuses in one script; what
        # must be tried again goes on as single `deliver` messages, with their retry count
        self.deliver_many = dramatiq.actor(
            broker=broker,
            actor_name="deliver_many",
            queue_name=queue_name(broker, "deliver"),
            max_retries=0,  # never sends twice: see _deliver_many
            time_limit=DELIVER_MANY_TIME_LIMIT_MS,
        )(self._deliver_many)
        self.escalate = dramatiq.actor(
            broker=broker, actor_name="escalate", queue_name=queue_name(broker, "sla")
        )(self._escalate)
        self.notify = dramatiq.actor(
            broker=broker, actor_name="notify", queue_name=queue_name(broker, "sla")
        )(self._notify)

    # -------------------------------------------------------- hand-over (the connectors' Sink)

    async def handover(
        self, items: list[RawPayload], batch_size: int = 100, max_batch_bytes: int | None = None
    ) -> None:
        """Send `items` as `ingest` messages of up to `batch_size`; returns once the broker
        has accepted them all. Raises StoreUnavailable when the broker cannot be reached."""
        if items:
            await asyncio.to_thread(self.handover_sync, items, batch_size, max_batch_bytes)

    def handover_sync(
        self, items: list[RawPayload], batch_size: int = 100, max_batch_bytes: int | None = None
    ) -> None:
        """Each message holds at most `batch_size` payloads and at most `max_batch_bytes`
        of JSON (default: limits.max_batch_bytes), so none comes near Redis's 512 MB bulk
        limit; a single payload larger than that goes alone (connectors cap its size)."""
        cap = max_batch_bytes or self._max_batch_bytes()
        for batch_json in self._batches(items, batch_size, cap):
            try:
                self.ingest.send(batch_json)
            except _BROKER_ERRORS as exc:
                raise _unavailable(exc) from None

    def _max_batch_bytes(self) -> int:
        config = self.runtime.config
        return (config.data.limits if config else Limits()).max_batch_bytes

    @staticmethod
    def _batches(items: list[RawPayload], batch_size: int, max_bytes: int) -> Iterator[str]:
        """`items` as JSON arrays cut by count and by size; each payload is encoded once."""
        batch: list[bytes] = []
        size = 2  # the brackets
        for item in items:
            encoded = _batch_codec.encode(item)
            if batch and (len(batch) >= batch_size or size + 1 + len(encoded) > max_bytes):
                yield (b"[" + b",".join(batch) + b"]").decode()
                batch, size = [], 2
            batch.append(encoded)
            size += len(encoded) + 1
        if batch:
            yield (b"[" + b",".join(batch) + b"]").decode()

    async def __call__(self, items: list[RawPayload]) -> None:
        await self.handover(items)

    def send_reply(self, outbound: Outbound) -> None:
        """Queue an outbound reply for `deliver` (record it first: store.add_outbound_message)."""
        try:
            self.deliver.send(_batch_codec.encode(outbound).decode())
        except _BROKER_ERRORS as exc:
            raise _unavailable(exc) from None

    def send_replies(self, outbounds: list[Outbound]) -> None:
        """Queue recorded outbound messages in one broker message (`deliver_many`): a
        batch's receipts cost one round trip here and one message for the daemon."""
        if len(outbounds) == 1:
            self.send_reply(outbounds[0])
        elif outbounds:
            try:
                self.deliver_many.send(_batch_codec.encode(outbounds).decode())
            except _BROKER_ERRORS as exc:
                raise _unavailable(exc) from None

    # -------------------------------------------------------- actors

    def _ingest(self, batch_json: str) -> None:
        """Apply a batch; a store outage is waited out here, so the message is acked only
        once the batch is in (past the wait, DurableRetries writes the retry before the ack)."""
        batch = _batch_decoder.decode(batch_json)
        report = until_applied(lambda: self.runtime.process(batch), INGEST_WAIT_S, "ingest")
        log.info(
            "ingested %d payloads: %s; quarantined %d",
            len(batch),
            dict(report.outcomes),
            len(report.quarantined),
        )

    def _deliver(self, outbound_json: str) -> None:
        outbound = _outbound_decoder.decode(outbound_json)
        message = CurrentMessage.get_current_message()
        attempt = message.options.get("retries", 0) if message else 0
        (outcome,) = _send_in_turn([outbound])
        if isinstance(outcome, Exception) and not isinstance(outcome, PermanentError):
            # for now (TransientError), or a fault nobody foresaw: tried again, then recorded
            if not isinstance(outcome, TransientError):
                log.error("deliver %s: %s: %s", outbound.id, type(outcome).__name__, outcome)
            if attempt + 1 >= DELIVER_MAX_ATTEMPTS:
                status = f"failed: {outcome} (after {attempt + 1} attempts)"
                self._record([(outbound.id, status)])
                return
            retry_after = outcome.retry_after if isinstance(outcome, TransientError) else None
            delay = backoff_ms(attempt, retry_after)
            log.warning("deliver %s: %s; retry in %d ms", outbound.id, outcome, delay)
            self._note_retry(outbound.id, retrying_status(outcome, attempt + 1))
            raise dramatiq.Retry(str(outcome), delay=delay) from None
        self._record([(outbound.id, delivery_status(outcome))], [(outbound, outcome)])

    def _note_retry(self, message_id: str, status: str) -> None:
        """A `retrying` status, at once and once: the retry is not held up by a store
        outage for it (the next attempt's outcome is recorded with the wait)."""
        try:
            gone = self.runtime.store.set_deliveries([(message_id, status)])
        except TransientError as exc:
            log.warning("deliver %s: its retrying status was not recorded: %s", message_id, exc)
            return
        if gone:
            log.warning("deliver: message %s is gone; its delivery was not recorded", message_id)

    def _record(
        self,
        statuses: list[tuple[str, str]],
        sent: list[tuple[Outbound, Receipt | PermanentError]] | None = None,
    ) -> None:
        """The delivery statuses, waiting out a store outage: what was sent is never sent
        again for want of its status. A message gone meanwhile (erased) is logged. The
        channel's ids of what was `sent` are noted first (Store.remember_sent), so the
        channel's later statuses (delivered, read) find the message; one that came before
        (a fast `delivered` while the rest of a batch was still being sent) is applied
        after its `sent`."""
        by_channel: dict[str, list[tuple[str, str]]] = {}
        for outbound, outcome in sent or []:
            if Channel(outbound.channel) not in STATUS_CHANNELS:
                continue
            if isinstance(outcome, Receipt) and outcome.status == "sent":
                ids = dict.fromkeys([outcome.external_id or "", *outcome.external_ids])
                by_channel.setdefault(Channel(outbound.channel).value, []).extend(
                    (external_id, outbound.id) for external_id in ids if external_id
                )

        early: list[tuple[str, str]] = []  # kept across a retry of apply: taken once

        def apply() -> list[str]:
            store = self.runtime.store
            for channel, pairs in by_channel.items():
                early.extend(store.remember_sent(channel, pairs))
            return store.set_deliveries(statuses + early)

        gone = until_applied(apply, INGEST_WAIT_S, "deliver")
        for message_id in gone:
            log.warning("deliver: message %s is gone; its delivery was not recorded", message_id)

    def _deliver_many(self, outbounds_json: str) -> None:
        """Each message once, in turn; the statuses in one script. One that failed for now
        goes on alone as a `deliver` message that counts this as its first attempt, and
        shows `retrying` meanwhile. Never run twice (max_retries 0): once anything is sent,
        every message ends with a status or its own `deliver` message, so a retry of the
        batch could only send again."""
        outbounds = _outbounds_decoder.decode(outbounds_json)
        statuses: list[tuple[str, str]] = []
        sent: list[tuple[Outbound, Receipt | PermanentError]] = []
        for outbound, outcome in zip(outbounds, _send_in_turn(outbounds), strict=True):
            if isinstance(outcome, Receipt | PermanentError):
                statuses.append((outbound.id, delivery_status(outcome)))
                sent.append((outbound, outcome))
                continue
            retry_after = outcome.retry_after if isinstance(outcome, TransientError) else None
            delay = backoff_ms(0, retry_after)
            log.warning("deliver %s: %s; retry in %d ms", outbound.id, outcome, delay)
            self._note_retry(outbound.id, retrying_status(outcome, 1))  # before it can run
            encoded = _batch_codec.encode(outbound).decode()
            try:
                until_applied(
                    functools.partial(self._send_retry, encoded, delay),
                    INGEST_WAIT_S,
                    "deliver retry",
                )
            except TransientError as exc:
                statuses.append((outbound.id, f"failed: not queued: {exc}"))
        if statuses:
            self._record(statuses, sent)

    def _send_retry(self, outbound_json: str, delay_ms: int) -> None:
        """One message of a batch on its own, its first attempt counted (`retries`)."""
        try:
            self.deliver.send_with_options(args=(outbound_json,), delay=delay_ms, retries=1)
        except _BROKER_ERRORS as exc:
            raise _unavailable(exc) from None

    def _escalate(self, ticket_id: str, queue: str, reason: str = "", actor: str = "sla") -> None:
        """Move a ticket to another queue with an ``escalated`` event."""
        self.runtime.store.move(ticket_id, queue, actor, event=EventType.ESCALATED, reason=reason)

    def _notify(self, ticket_id: str, target: str, text: str, via: str = "log") -> None:
        """Record a ``notified`` event, log it, and hand it to the registered notifiers."""
        store = self.runtime.store
        ticket = store.get_ticket(ticket_id)
        queue = ticket.queue if ticket else ""
        store.add_event(
            EventType.NOTIFIED, ticket_id, queue=queue, actor="sla", target=target, via=via
        )
        log.info("notify %s about %s via %s: %s", target, ticket_id, via, text)
        event = {"ticket": ticket_id, "queue": queue, "target": target, "via": via, "text": text}
        for fn in list(_notifiers):
            try:
                fn(event)
            except Exception:
                log.exception("notifier failed for %s", ticket_id)

    # -------------------------------------------------------- workers

    def start_worker(
        self,
        threads: int = 4,
        worker_timeout_ms: int = 100,
        queues: Collection[str] | None = None,
    ) -> dramatiq.Worker:
        """Worker threads on `queues` (our names: ``ingest``, ``deliver``, ``sla``; None:
        all); call `.stop(timeout=ms)` to drain and stop them."""
        names = None if queues is None else {queue_name(self.broker, q) for q in queues}
        worker = dramatiq.Worker(
            self.broker, queues=names, worker_threads=threads, worker_timeout=worker_timeout_ms
        )
        worker.start()
        return worker


# A worker process's threads: ingest batches are CPU-bound under one GIL, so more threads only
# add hand-offs; two keep one batch going while another waits on Redis or PostgreSQL
# (issue 16: with 4, CPU per ticket was higher in 6 of 7 interleaved bursts).
WORKER_THREADS = 2


def run_worker(
    pipeline: Pipeline, threads: int = WORKER_THREADS, stop: threading.Event | None = None
) -> None:
    """Run workers until `stop` is set or SIGTERM/SIGINT arrives (`omnidesk worker`). They
    take intake and the SLA ladder, never `deliver`: the senders are the connectors, which
    live in the daemons (a reply taken here could only fail and wait for its retry)."""
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    worker = pipeline.start_worker(threads, queues=WORKER_QUEUES)
    try:
        stop.wait()
    finally:
        worker.stop(timeout=30_000)
        pipeline.broker.close()


def main(argv: list[str] | None = None) -> int:
    """A worker process: ``python -m omnidesk.pipeline [--config FILE] [--threads N]``."""
    from omnidesk.configload import load_config

    parser = argparse.ArgumentParser(prog="omnidesk-worker")
    parser.add_argument("--config", default=None)
    parser.add_argument("--threads", type=int, default=WORKER_THREADS)
    parser.add_argument("--heartbeat-timeout-ms", type=int, default=None)
    parser.add_argument("--maintenance-chance", type=int, default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    loaded = load_config(args.config)  # registers its secrets and masks them on the handler
    service = loaded.data.service
    broker = make_broker(
        service.broker_url or service.redis_url,
        service.key_prefix,
        heartbeat_timeout_ms=args.heartbeat_timeout_ms or int(service.broker_heartbeat_s * 1000),
        maintenance_chance=args.maintenance_chance,
        maintenance_interval_ms=int(service.broker_maintenance_s * 1000),
    )
    runtime = Runtime.for_service(loaded)
    writer = None
    try:
        writer = _records_writer(runtime, args.config)
        pipeline = Pipeline(runtime, broker)
        gctune.settle()  # start-up is done: what it made lives as long as the process
        run_worker(pipeline, args.threads)
    finally:
        if writer is not None:
            writer.stop()
    return 0


def _records_writer(runtime: Runtime, config: str | None) -> WriterProcess | None:
    """This worker's share of writing the events stream into PostgreSQL (one more consumer
    of the `records` group), in a process of its own (omnidesk.writer_process), when the
    runtime has records."""
    from omnidesk.writer_process import WriterProcess

    if runtime.records is None:
        return None
    process = WriterProcess(config)
    process.start()
    return process


if __name__ == "__main__":
    raise SystemExit(main())
