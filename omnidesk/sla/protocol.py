"""`SlaEngine`: the SLA engine as the desk, the runtime and the daemon use it.

They depend on this, not on `engine.SlaClocks` (nor on `Any`): the methods below are all
they call, so a test or another engine can stand in with just these.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any, Protocol

from omnidesk.config import QueueConfigFile
from omnidesk.model import Status, Ticket
from omnidesk.sla.queries import ClockSummary
from omnidesk.sla.ticket import SlaState


class SlaEngine(Protocol):
    """Hooks for agents' actions, reads for views, and the daemon's loops and figures."""

    # the desk: an agent's action moves the ticket's clocks
    def on_agent_reply(self, ticket: Ticket) -> SlaState | None: ...

    def on_status(self, ticket: Ticket, status: Status | str) -> SlaState | None: ...

    def on_transfer(self, ticket: Ticket, new_queue: str) -> SlaState | None: ...

    # the desk's views, and the runtime's receipts (first-response due times)
    def summary(self, ticket_id: str) -> list[ClockSummary]: ...

    def explain(self, ticket_id: str) -> list[str]: ...

    def explain_data(self, ticket_id: str) -> dict[str, Any] | None: ...

    def first_response_dues(self, ticket_ids: list[str]) -> dict[str, datetime]: ...

    # the daemon: its background loops, a SIGHUP config, /metrics
    async def run_sweeper(self, stop: asyncio.Event) -> None: ...

    async def run_repair(self, stop: asyncio.Event) -> None: ...

    def reload(self, config: QueueConfigFile) -> None: ...

    def counts(self) -> dict[str, Any]: ...
