"""The directory sync: every `directory.sync_interval_s`, the daemon reads the mapped groups'
members (directory.py) and makes the directory agents in Redis (directory_roster.py) match.

Who is gone (left the directory, a mapped group, or `user_filter`: disabled) loses access at
once: their sessions and tokens end, their presence goes, every ticket they held goes back
to its queue (`Assigner.release(requeue=True)`, a `released` event each) and an
`access_revoked` event records it. Who stays but lost a queue keeps their sessions and
hands back that queue's tickets. When the directory cannot be reached nothing is dropped;
entries stop counting at their `until` (directory_roster.py), so a long outage locks
directory agents out (fail closed) and the first good sync after it releases what they held.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

from omnidesk.agents.directory import Directory, DirectoryUnavailable, agent_of
from omnidesk.agents.login import RECORD_SYNCS
from omnidesk.agents.service import AgentService
from omnidesk.config import AgentConfig
from omnidesk.errors import OmnideskError
from omnidesk.events import EventType
from omnidesk.replies import text_or_none
from omnidesk.store import redis_errors

log = logging.getLogger("omnidesk.agents.directory")

IDLE_CHECK_S = 30.0  # with no directory configured, how often a reload that adds one is seen


@dataclass
class SyncResult:
    kept: list[str] = field(default_factory=list)
    revoked: list[str] = field(default_factory=list)
    released: int = 0


def sync(service: AgentService, directory: Directory | None = None) -> SyncResult:
    """One sync; DirectoryUnavailable (nothing changed) when the directory cannot be read."""
    config = service.config().directory
    if config is None:
        return SyncResult()
    directory = directory or Directory(config)
    taken = {a.id for a in service.config().agents}
    agents: dict[str, AgentConfig] = {}
    for user in directory.members().values():
        agent = agent_of(user, config)
        if agent is None or agent.id in taken:
            log.warning("directory user %s gives no agent (id invalid or a config agent's)",
                        user.dn)  # fmt: skip
            continue
        agents[agent.id] = agent
    held_before = service.directory.ids()
    service.directory.put(list(agents.values()), RECORD_SYNCS * config.sync_interval_s)
    result = SyncResult(kept=sorted(agents))
    for agent_id in sorted(held_before - set(agents)):
        result.released += revoke(service, agent_id, "left the directory or its groups")
        result.revoked.append(agent_id)
    roster = service.roster()
    for agent in agents.values():
        result.released += release_outside(service, agent.id, set(roster.queues_of(agent)))
    return result


def revoke(service: AgentService, agent_id: str, reason: str) -> int:
    """End the agent's access now (sessions, and any token an operator made for them, so a
    return to the group later does not revive it); returns how many tickets went back."""
    sessions = service.sessions.revoke(agent_id)
    with redis_errors():  # StoreUnavailable, which the loop logs, not a raw redis error
        has_token = service.store.r.exists(service.store.keys.auth_agent(agent_id))
    if has_token:
        service.tokens.revoke(agent_id, actor="directory")
    service.directory.drop([agent_id])
    with redis_errors():
        service.store.r.delete(service.store.keys.presence(agent_id))
    released = release_outside(service, agent_id, set())
    service.store.add_event(
        EventType.ACCESS_REVOKED, actor="directory", agent=agent_id, reason=reason,
        sessions=sessions, released=released,
    )  # fmt: skip
    log.info("directory: %s lost access (%d sessions, %d tickets back)", agent_id, sessions,
             released)  # fmt: skip
    return released


def release_outside(service: AgentService, agent_id: str, queues: set[str]) -> int:
    """Every ticket the agent holds outside `queues` goes back to its queue's waiting list."""
    released = 0
    for ticket_id in service.assigner.held(agent_id):
        with redis_errors():
            queue = text_or_none(
                service.store.r.hget(service.store.keys.ticket(ticket_id), "queue")
            )
        queue = queue or ""
        if queue in queues:
            continue
        # only if still theirs: another daemon's sync may have handed it on since held()
        if service.assigner.release(ticket_id, requeue=True, holder=agent_id) == agent_id:
            released += 1
            service.store.add_event(
                EventType.RELEASED, ticket_id, queue=queue, actor="directory", agent=agent_id,
                reason="access",
            )  # fmt: skip
            service.assigner.push(queue)
    return released


async def sync_loop(service: AgentService, stop: asyncio.Event) -> None:
    """The daemon's background job: a sync at start and every `sync_interval_s` after."""
    while not stop.is_set():
        config = service.config().directory
        wait = IDLE_CHECK_S if config is None else config.sync_interval_s
        if config is not None:
            try:
                result = await asyncio.to_thread(sync, service)
                log.info("directory sync: %d agents, %d revoked, %d tickets back",
                         len(result.kept), len(result.revoked), result.released)  # fmt: skip
            except DirectoryUnavailable as exc:
                log.warning("directory sync skipped: %s", exc)
            except OmnideskError as exc:
                log.warning("directory sync failed: %s", exc)
            except Exception:  # a bug: this pass is lost, with its traceback; the loop goes on
                log.exception("directory sync failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=wait)
