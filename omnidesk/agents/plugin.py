"""Wire the agents into the daemon: the /v1 API, /csat and /console routes, push assignment
after intake and in a background loop (presence expiry, freed slots, config reloads), and the
supervisors' login to the dashboard.

`AgentsPlugin` is a daemon plugin (omnidesk.plugins), found through the `omnidesk.plugins`
entry point. The SLA engine, when the daemon carries one as `daemon.clocks`, gets the
agents' hooks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, ClassVar

from omnidesk.agents.directory_sync import sync_loop
from omnidesk.agents.routes import add_routes
from omnidesk.agents.service import AgentService
from omnidesk.agents.supervise import supervisor_session_viewer, supervisor_viewer
from omnidesk.config import AgentConfig
from omnidesk.configload import LoadedConfig
from omnidesk.errors import OmnideskError
from omnidesk.model import Ticket
from omnidesk.plugins import Plugin
from omnidesk.viewers import Viewer

log = logging.getLogger("omnidesk.agents")

PUSH_INTERVAL_S = 1.0


def build_service(daemon: Any) -> AgentService:
    return AgentService(
        store=daemon.runtime.store,
        config=lambda: daemon.loaded.data,
        send_reply=daemon.pipeline.send_reply,
        sla=getattr(daemon, "clocks", None),
        records=getattr(daemon, "records", None),
        archive=daemon.runtime.archive,
        downloaders=lambda: downloaders(daemon),
    )


def downloaders(daemon: Any) -> dict[tuple[str, str], Any]:
    """The running connectors that fetch a customer's file by its id, by (channel, account)."""
    return {
        (c.kind, getattr(c, "account", c.name)): c.download
        for c in getattr(daemon, "connectors", [])
        if callable(getattr(c, "download", None))
    }


class AgentsPlugin(Plugin):
    """The agents' part of the daemon. It runs after the reports plugin (whose dashboard
    asks `authorize`); new tickets reach it after the SLA clocks started."""

    name: ClassVar[str] = "agents"
    order: ClassVar[int] = 200

    def __init__(self) -> None:
        self.service: AgentService | None = None

    def attach(self, daemon: Any) -> None:
        service = build_service(daemon)
        self.service = daemon.agents = service
        daemon.route_hooks.append(add_routes(service, daemon.runtime))
        daemon.background.append(lambda stop: push_loop(service, stop))
        daemon.background.append(lambda stop: sync_loop(service, stop))  # directory login

    def tickets_opened(self, tickets: list[Ticket]) -> None:
        """A new ticket in a push queue goes to an agent at once."""
        if self.service is not None:
            push_after_intake(self.service, tickets)

    def reload(self, loaded: LoadedConfig) -> None:
        if self.service is not None:
            reload(self.service, loaded.data)

    def authorize(self, token: str) -> Viewer | None:
        """An agent's token: its supervisor's view, or refused as no supervisor."""
        return supervisor_viewer(self.service, token) if self.service is not None else None

    def authorize_session(self, cookie: str, method: str, csrf: str | None) -> Viewer | None:
        """A directory login's session: its supervisor's view, refused as no supervisor, or
        refused as ended (the dashboard's re-check ends a stream whose session was revoked)."""
        if self.service is None:
            return None
        return supervisor_session_viewer(self.service, cookie, method, csrf)

    def more_agents(self) -> list[AgentConfig]:
        """The directory's agents (directory login), for the dashboard's agents list."""
        if self.service is None or self.service.config().directory is None:
            return []
        return list(self.service.directory.agents())


def push_after_intake(service: AgentService, tickets: list[Ticket]) -> None:
    """One push round per queue of the new tickets."""
    for queue in dict.fromkeys(t.queue for t in tickets):
        service.assigner.push(queue)


def reload(service: AgentService, config: Any) -> None:
    """A SIGHUP config: roster, queues and templates are read live through `service.config`
    (the push loop sees added agents within a second); what was copied at start is updated."""
    service.assigner.presence_ttl_s = config.service.presence_ttl_s


async def push_loop(service: AgentService, stop: asyncio.Event) -> None:
    """Every second, a push round on every push queue: tickets that waited for an agent to
    come online, free a slot or be added get assigned even when no action triggered it."""
    while not stop.is_set():
        try:
            await asyncio.to_thread(service.assigner.push_all)
        except OmnideskError as exc:
            log.warning("push round failed: %s", exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=PUSH_INTERVAL_S)
