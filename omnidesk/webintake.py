"""Group commit for the web form's synchronous intake: posts that arrive while a batch is
being taken in wait together and go in as the next batch (`Runtime.process` costs a few
Redis round trips per batch, whatever its size), so answering each visitor with the ticket
number costs about what queueing the post for a worker costs.

`runners` batches run at once, each in a thread. A post that waited `wait_s` without its
batch starting is withdrawn: the caller queues it for the workers instead (the web form
answers 202). One whose batch has started is always waited for, so nothing is taken in twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from omnidesk.intake import IntakeResult
from omnidesk.model import RawPayload

log = logging.getLogger("omnidesk.webform")

MAX_BATCH = 100  # posts per batch: Pipeline.handover's batch size
WITHDRAWN = object()  # what `take` returns for a post that should be queued instead

# Takes a batch in and returns its BatchReport (omnidesk.runtime): Daemon.intake_now.
IntakeFn = Callable[[list[RawPayload]], Awaitable[Any]]


@dataclass
class _Entry:
    item: RawPayload
    future: asyncio.Future[IntakeResult | None]
    state: str = "waiting"  # waiting -> taken, or waiting -> withdrawn


@dataclass
class IntakeBatcher:
    intake: IntakeFn
    runners: int = 1
    max_batch: int = MAX_BATCH
    _queue: asyncio.Queue[_Entry] = field(default_factory=asyncio.Queue)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def take(self, item: RawPayload, wait_s: float) -> IntakeResult | object | None:
        """The item's IntakeResult (None when it was quarantined), WITHDRAWN when no batch
        took it within `wait_s` (at once for 0: every post queued); intake's errors
        (Overloaded, ...) are raised."""
        if wait_s <= 0:
            return WITHDRAWN
        self._start()
        entry = _Entry(item, asyncio.get_running_loop().create_future())
        self._queue.put_nowait(entry)
        try:
            return await asyncio.wait_for(asyncio.shield(entry.future), wait_s)
        except TimeoutError:
            if entry.state == "waiting":
                entry.state = "withdrawn"
                return WITHDRAWN
            return await entry.future  # its batch is running: it will be in

    def _start(self) -> None:
        if not self._tasks:
            self._tasks = [
                asyncio.create_task(self._run(), name=f"web-intake-{n}")
                for n in range(self.runners)
            ]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self.max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            batch = [e for e in batch if e.state == "waiting"]
            if not batch:
                continue
            for entry in batch:
                entry.state = "taken"
            try:
                report = await self.intake([e.item for e in batch])
                results = _results(batch, report)
            except Exception as exc:  # every post of the batch gets the answer it means
                for entry in batch:
                    entry.future.set_exception(exc)
                continue
            for entry, result in zip(batch, results, strict=True):
                entry.future.set_result(result)


def _results(batch: list[_Entry], report: Any) -> list[IntakeResult | None]:
    """Each post's result: the report lists results in payload order, less the payloads it
    quarantined (named by their `source`, unique per post)."""
    quarantined = set(report.quarantined)
    kept = [e for e in batch if (e.item.source or e.item.sha256) not in quarantined]
    if len(kept) != len(report.results):  # one form is one message: never seen, but no guess
        log.error("web intake: %d results for %d forms", len(report.results), len(kept))
        return [None] * len(batch)
    found = dict(zip((id(e) for e in kept), report.results, strict=True))
    return [found.get(id(e)) for e in batch]
