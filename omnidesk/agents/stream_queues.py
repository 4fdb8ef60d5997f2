"""The queues an open event stream shows, kept off the event loop.

`AgentService.roster()` reads Redis (the directory's agents) when directory login is on. The
stream checks every event against the agent's queues, so reading the roster per event on the
loop froze the daemon during a Redis stall, and a StoreUnavailable ended the stream. Here the
queues are read in a thread, at most once a second per stream (a directory sync shows within
that second), and at once after a SIGHUP reload (a new config object); when Redis fails the
stream keeps the queues it had, logs one line, and tries again a second later.
"""

from __future__ import annotations

import asyncio
import logging

from omnidesk.agents.roster import NoSuchAgent
from omnidesk.agents.service import AgentService
from omnidesk.errors import StoreUnavailable

log = logging.getLogger("omnidesk.agents.http")

REFRESH_S = 1.0


def queues_now(service: AgentService, agent_id: str) -> set[str]:
    """The agent's queues in the config as it is now (a SIGHUP may have changed them): the
    agent is looked up again by id, never read from the object the stream started with.
    Blocking (Redis, with directory login): call it in a thread."""
    roster = service.roster()
    try:
        current = roster.get(agent_id)
    except NoSuchAgent:  # gone from the config: nothing shows; the next check logs out
        return set()
    return set(roster.queues_of(current))


class StreamQueues:
    """One stream's view of `queues_now`, read again in a thread once `REFRESH_S` passed."""

    def __init__(self, service: AgentService, agent_id: str, queues: set[str]) -> None:
        self.service, self.agent_id, self.queues = service, agent_id, queues
        self.loop = asyncio.get_running_loop()
        self.read_at = self.loop.time()
        self.config = service.config()  # a reload gives a new object: read again at once
        self.failing = False

    async def now(self) -> set[str]:
        config = self.service.config()
        if config is self.config and self.loop.time() - self.read_at < REFRESH_S:
            return self.queues
        self.config, self.read_at = config, self.loop.time()
        try:
            self.queues = await asyncio.to_thread(queues_now, self.service, self.agent_id)
        except StoreUnavailable as exc:
            if not self.failing:
                log.warning("event stream of %s: queues not re-read, kept (%s)",
                            self.agent_id, type(exc).__name__)  # fmt: skip
            self.failing = True
            return self.queues
        self.failing = False
        return self.queues
