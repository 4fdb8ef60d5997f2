"""The Connector interface every channel implements, and the reconnect loop they share.

A connector owns one account on one channel. It receives raw payloads, hands them
to the sink in batches, and only then advances its cursor; it can also send a reply.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Self

from omnidesk.backoff import Backoff
from omnidesk.errors import AuthError, OmnideskError, TransientError
from omnidesk.model import Outbound, RawPayload, Receipt, utcnow

if TYPE_CHECKING:
    from connectors.state import Lease

log = logging.getLogger("omnidesk.connectors")

# Hands a batch over (a dramatiq `ingest` message). Returns only once it is safe to
# advance the cursor; raises TransientError when the hand-over failed. A sink may also have
# an async `admit()` that raises TransientError (with retry_after) while intake is overloaded:
# the reconnect loop asks it before each pull, so nothing is fetched that cannot be handed over.
Sink = Callable[[list[RawPayload]], Awaitable[None]]


@dataclass
class ConnectorStatus:
    """What /healthz and `omnidesk connectors` show for one connector."""

    name: str
    kind: str
    state: str = "idle"  # idle, standby, running, backoff, auth_error, stopped
    last_error: str | None = None
    last_error_kind: str | None = None  # transient, permanent, auth
    last_fetch: datetime | None = None
    received: int = 0
    handed_over: int = 0
    errors: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "state": self.state,
            "last_error": self.last_error,
            "last_error_kind": self.last_error_kind,
            "last_fetch": self.last_fetch.isoformat() if self.last_fetch else None,
            "received": self.received,
            "handed_over": self.handed_over,
            "errors": dict(self.errors),
        }


class Connector(ABC):
    """initialize → start → stop → shutdown, usable as ``async with``."""

    kind: ClassVar[str]
    uses_lease: ClassVar[bool] = True  # False for push-only (webhook) connectors

    def __init__(self, name: str, lease: Lease | None = None) -> None:
        self.name = name
        # With a lease, the shared loop polls only while this instance holds it.
        self.lease = lease
        self.status = ConnectorStatus(name=name, kind=self.kind)
        self._stopping = asyncio.Event()
        # The sink while started: webhook handlers hand over through it, and answer 503
        # (so the sender retries) when it is None because the daemon is starting or draining.
        self.sink: Sink | None = None

    async def initialize(self) -> None:
        """Open what `start` needs; a missing secret is raised here, before anything runs."""

    @abstractmethod
    async def run_once(self, sink: Sink) -> float | None:
        """Receive once and hand over; return seconds to wait before the next call
        (None: call again at once, e.g. after an IDLE wake-up)."""

    async def send(self, reply: Outbound) -> Receipt:
        raise NotImplementedError(f"{self.kind} connector {self.name!r} cannot send")

    async def check(self) -> None:
        """Connect once; raise a typed error naming the bad field."""

    async def start(self, sink: Sink) -> None:
        """Receive until stopped, through the shared reconnect loop."""
        self.sink = sink
        try:
            await reconnect_loop(self, sink)
        finally:
            self.sink = None

    async def stop(self) -> None:
        self.sink = None
        self._stopping.set()

    async def shutdown(self) -> None:
        """Release what `initialize` opened; idempotent."""

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    async def sleep(self, seconds: float) -> None:
        """Sleep, waking early when stopped."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=max(0.0, seconds))

    async def __aenter__(self) -> Self:
        await self.initialize()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
        await self.shutdown()


class LeaseLost(TransientError):
    """Another instance holds this account's lease now; this one steps back."""


async def reconnect_loop(
    connector: Connector, sink: Sink, backoff: Backoff | None = None, auth_retry: float = 900.0
) -> None:
    """One loop for every connector: run, back off with jitter on transient errors,
    honour Retry-After, and on bad credentials stop hammering (retry rarely, report it).

    With `connector.lease` set, it runs only while holding the lease (state "standby"
    otherwise), renews it every ttl/3 while run_once and the waits between runs go on,
    cancels run_once when the lease is lost, and releases it on the way out.
    """
    backoff = backoff or Backoff()
    status = connector.status
    lease = connector.lease
    try:
        while not connector.stopping:
            try:
                if lease is not None and not await lease.acquire():
                    status.state = "standby"
                    await connector.sleep(lease.ttl / 4)
                    continue
                await _admit(sink)
                status.state = "running"
                wait = await _holding(lease, connector.run_once(sink))
                status.last_fetch = utcnow()
                backoff.reset()
                if wait:
                    await _holding(lease, connector.sleep(wait))
            except asyncio.CancelledError:
                raise
            except AuthError as exc:
                _record(status, "auth", exc)
                status.state = "auth_error"
                log.error("connector %s: authentication failed: %s", connector.name, exc)
                await _release(lease)  # let an instance with working credentials try
                await connector.sleep(auth_retry)
            except TransientError as exc:
                _record(status, "transient", exc)
                status.state = "backoff"
                delay = backoff.next(exc.retry_after)
                log.warning("connector %s: %s; retrying in %.1fs", connector.name, exc, delay)
                await connector.sleep(delay)
            except OmnideskError as exc:
                _record(status, "permanent", exc)
                status.state = "backoff"
                delay = backoff.next()
                log.error("connector %s: %s; retrying in %.1fs", connector.name, exc, delay)
                await connector.sleep(delay)
            except Exception as exc:  # a bug must not kill the daemon; it is logged and retried
                _record(status, "unexpected", exc)
                status.state = "backoff"
                delay = backoff.next()
                log.exception(
                    "connector %s: unexpected error; retrying in %.1fs", connector.name, delay
                )
                await connector.sleep(delay)
    finally:
        status.state = "stopped"
        await _release(lease)


async def _admit(sink: Sink) -> None:
    """Backpressure: the sink's `admit()` raises TransientError (Retry-After) under overload."""
    admit = getattr(sink, "admit", None)
    if admit is not None:
        await admit()


async def _holding(lease: Lease | None, work: Awaitable[Any]) -> Any:
    """Await `work`, renewing the lease every ttl/3; cancel it if the lease is lost."""
    if lease is None:
        return await work
    task = asyncio.ensure_future(work)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=lease.ttl / 3)
            if done:
                return task.result()
            if not await lease.renew():
                raise LeaseLost(f"lease {lease.key} was lost")
    finally:
        if not task.done():
            task.cancel()
            with suppress(asyncio.CancelledError, Exception):
                await task


async def _release(lease: Lease | None) -> None:
    if lease is None:
        return
    try:
        await lease.release()
    except Exception as exc:  # the lease expires by itself; a failed release only delays failover
        log.warning("could not release lease %s: %s", lease.key, exc)


def _record(status: ConnectorStatus, kind: str, exc: BaseException) -> None:
    status.last_error = f"{type(exc).__name__}: {exc}"
    status.last_error_kind = kind
    status.errors[kind] = status.errors.get(kind, 0) + 1
