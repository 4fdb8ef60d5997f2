"""The SLA engine: clocks kept in Redis, the hooks the daemon calls, and the sweeper.

The clocks themselves are pure (`clock`, `ticket`); `SlaClocks` persists them and runs
them. It puts together the records (`records`: key layout and compare-and-set writes), the
hooks (`hooks`), the sweeper (`sweeper`) and the queries (`queries`) over one store and one
configuration. The desk, the runtime and the daemon see it as `protocol.SlaEngine`.

Hooks the rest of the daemon calls (each loads, applies the pure transition, writes back):
`on_opened` (`open_many` for a bulk load), `on_customer_message`, `on_agent_reply`,
`on_status`, `on_transfer`.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

from omnidesk.config import QueueConfigFile
from omnidesk.model import utcnow
from omnidesk.sla.hooks import SlaHooks
from omnidesk.sla.policy import SlaContext
from omnidesk.sla.protocol import SlaEngine
from omnidesk.sla.queries import SlaQueries
from omnidesk.sla.records import Now
from omnidesk.sla.repair import run_repair
from omnidesk.sla.sweeper import CountFn, Fired, NotifyFn, SlaSweeper
from omnidesk.store import Store, lua


class SlaClocks(SlaHooks, SlaSweeper, SlaQueries):
    """The SLA service: transitions for intake and agents, and the sweeper.

    `clock` is injectable (tests move time by hand). `notify` receives each notify action
    (the daemon wires it to the dramatiq `notify` actor); `count` each fired step (metrics);
    `on_fired` each fired step as soon as its batch is committed (the benchmark's lateness).
    """

    def __init__(
        self,
        store: Store,
        config: QueueConfigFile,
        *,
        clock: Now = utcnow,
        notify: NotifyFn | None = None,
        count: CountFn | None = None,
        on_fired: Callable[[Fired], None] | None = None,
        lease_seconds: float = 60.0,
        batch: int = 200,
        name: str | None = None,
    ) -> None:
        self.store = store
        self.config = config
        self.ctx = SlaContext.from_config(config)
        self.clock = clock
        self.notify = notify
        self.count = count
        self.on_fired = on_fired
        self.lease_ms = int(lease_seconds * 1000)
        self.batch = batch
        self.name = name or f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._steps = {}
        self._commit_loaded = False
        self.rb = store.binary()  # records are msgpack
        self._scripts = {
            n: self.rb.register_script(lua(n))
            for n in ("sla_write", "sla_open_many", "sla_claim", "sla_commit")
        }

    def reload(self, config: QueueConfigFile) -> None:
        """A new config (SIGHUP): policies and calendars apply from the next transition."""
        self.ctx = SlaContext.from_config(config)
        self.config = config
        self._steps = {}

    async def run_repair(self, stop: asyncio.Event) -> None:
        """The repair loop (`omnidesk.sla.repair.run_repair`) over these clocks."""
        await run_repair(self, stop)


if TYPE_CHECKING:  # mypy holds SlaClocks to the protocol the rest of the daemon uses

    def _is_an_engine(clocks: SlaClocks) -> SlaEngine:
        return clocks
