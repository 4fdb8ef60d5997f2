"""Wire the agents into the daemon: the /v1 API, /csat and /console routes, push assignment
after intake and in a background loop (presence expiry, freed slots, config reloads).

`attach(daemon)` is a DaemonPlugin (omnidesk.service.PLUGINS). The SLA engine, when the
daemon carries one as `daemon.clocks`, gets the agents' hooks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from omnidesk.agents.http import add_routes
from omnidesk.agents.service import AgentService
from omnidesk.errors import OmnideskError
from omnidesk.intake import IntakeHooks
from omnidesk.model import Ticket

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


def attach(daemon: Any) -> AgentService:
    service = build_service(daemon)
    daemon.agents = service
    daemon.route_hooks.append(add_routes(service))
    chain_push_after_intake(daemon.runtime.intake.hooks, service)
    daemon.background.append(lambda stop: push_loop(service, stop))
    daemon.reload_hooks.append(lambda loaded: reload(service, loaded.data))
    dashboard = getattr(daemon, "dashboard", None)
    if dashboard is not None:  # the supervisors' dashboard: same login as the console
        from omnidesk.agents.supervise import supervisor_authorize

        # $OMNIDESK_DASHBOARD_TOKEN, when set, still opens it for the operator
        dashboard.authorize = supervisor_authorize(service, fallback=dashboard.authorize)
    return service


def reload(service: AgentService, config: Any) -> None:
    """A SIGHUP config: roster, queues and templates are read live through `service.config`
    (the push loop sees added agents within a second); what was copied at start is updated."""
    service.assigner.presence_ttl_s = config.service.presence_ttl_s


def chain_push_after_intake(hooks: IntakeHooks, service: AgentService) -> None:
    """A new ticket in a push queue goes to an agent at once (after the SLA hook, if any)."""
    before = hooks.on_opened

    def on_opened(ticket: Ticket) -> None:
        before(ticket)
        service.assigner.push(ticket.queue)

    hooks.on_opened = on_opened
    before_many = hooks.on_opened_many
    if before_many is not None:

        def on_opened_many(tickets: list[Ticket]) -> None:
            before_many(tickets)
            for queue in dict.fromkeys(t.queue for t in tickets):
                service.assigner.push(queue)

        hooks.on_opened_many = on_opened_many


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
