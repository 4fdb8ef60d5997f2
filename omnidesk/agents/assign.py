"""Claims (pull), push assignment (round_robin / least_loaded), presence and agent load.

Keys, beside the store's (prefix P):

    P:agent:<id>:open     zset  tickets the agent holds (open or pending), by assignment ms;
                                its size against `capacity` is the agent's load
    P:presence:<id>       string online | away, expiring `presence_ttl_s` after the last
                                heartbeat; missing means offline
    P:rr:<queue>          string round-robin cursor of a push queue

Each claim and each push round is one Lua script (claim.lua, push.lua), so fifty agents
claiming at once, or two daemons pushing, never hand one ticket out twice.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from omnidesk.agents.roster import Roster
from omnidesk.config import AgentConfig
from omnidesk.events import EventType
from omnidesk.model import utcnow
from omnidesk.replies import text_or_none, texts
from omnidesk.store import Store, guarded, run_script

log = logging.getLogger("omnidesk.agents")

Presence = Literal["online", "away", "offline"]
PRESENCE = ("online", "away", "offline")
SCRIPTS = ("claim", "push", "release", "set_priority", "merge", "csat", "reassign")
PUSH_SCAN = 200  # waiting tickets looked at per push round


def scripts(store: Store) -> dict[str, Any]:
    """This package's Lua scripts, registered once per store (`Store.script`)."""
    return {name: store.script(name) for name in SCRIPTS}


@dataclass(frozen=True)
class Claim:
    outcome: Literal["claimed", "full", "empty"]
    ticket_id: str | None = None
    queue: str | None = None


@dataclass(frozen=True)
class Handed:
    outcome: Literal["assigned", "full", "same", "closed", "moved", "missing"]
    previous: str = ""  # the agent who held it before ("" none)


@dataclass
class Assigner:
    store: Store
    roster: Callable[[], Roster]  # read each time, so a SIGHUP reload is seen at once
    presence_ttl_s: int = 90

    # -------------------------------------------------------- presence

    @guarded
    def set_presence(self, agent_id: str, status: str) -> None:
        if status not in PRESENCE:
            raise ValueError(f"presence must be one of {', '.join(PRESENCE)}")
        key = self.store.keys.presence(agent_id)
        if status == "offline":
            self.store.r.delete(key)
        else:
            self.store.r.set(key, status, ex=self.presence_ttl_s)
        self.store.add_event(EventType.PRESENCE, actor=agent_id, status=status)

    @guarded
    def heartbeat(self, agent_id: str) -> str:
        """Keep the current presence alive; returns it (offline when it already expired)."""
        key = self.store.keys.presence(agent_id)
        if not self.store.r.expire(key, self.presence_ttl_s):
            return "offline"
        return self.presence(agent_id)

    @guarded
    def presence(self, agent_id: str) -> str:
        return text_or_none(self.store.r.get(self.store.keys.presence(agent_id))) or "offline"

    @guarded
    def load(self, agent_id: str) -> int:
        return int(self.store.r.zcard(self.store.keys.agent_open(agent_id)))

    @guarded
    def held(self, agent_id: str) -> list[str]:
        return texts(self.store.r.zrange(self.store.keys.agent_open(agent_id), 0, -1))

    # -------------------------------------------------------- pull

    @guarded
    def claim(self, agent: AgentConfig, queues: list[str] | None = None) -> Claim:
        """The most urgent waiting ticket of the agent's queues (or of `queues`, a subset)."""
        allowed = self.roster().queues_of(agent)
        wanted = [q for q in (queues or allowed) if q in allowed]
        if not wanted:
            return Claim("empty")
        now = utcnow()
        reply = run_script(
            scripts(self.store)["claim"], self.store.prefix, agent=agent.id,
            capacity=agent.capacity, now_ms=_ms(), now_iso=now.isoformat(), queues=wanted,
        )  # fmt: skip
        if reply[0] == "claimed":
            return Claim("claimed", reply[1], reply[2])
        return Claim(reply[0])

    @guarded
    def hand_to(self, ticket_id: str, agent: AgentConfig, actor: str, queue: str) -> Handed:
        """A supervisor gives the ticket to `agent` (off whoever held it); the agent's
        capacity holds as for a claim. `queue` is the one the agent's access was checked
        against: a transfer in between answers "moved" instead of handing it over."""
        reply = run_script(
            scripts(self.store)["reassign"], self.store.prefix, ticket=ticket_id, agent=agent.id,
            capacity=agent.capacity, now_ms=_ms(), now_iso=utcnow().isoformat(), actor=actor,
            queue=queue,
        )  # fmt: skip
        if reply is None or reply is False:
            return Handed("missing")
        return Handed(reply[0], reply[1] if len(reply) > 1 else "")

    # -------------------------------------------------------- push

    @guarded
    def push(self, queue: str) -> list[tuple[str, str]]:
        """One push round for `queue`: (ticket, agent) pairs assigned; [] for a pull queue."""
        roster = self.roster()
        qc = roster.config.queues.get(queue)
        if qc is None or qc.assignment == "pull":
            return []
        members = roster.members(queue)
        if not members:
            return []
        flat = run_script(
            scripts(self.store)["push"], self.store.prefix, queue=queue, policy=qc.assignment,
            now_ms=_ms(), now_iso=utcnow().isoformat(), scan_limit=PUSH_SCAN,
            agents=[[a.id, str(a.capacity), ",".join(a.languages)] for a in members],
        )  # fmt: skip
        pairs = list(zip(flat[::2], flat[1::2], strict=True))
        if pairs:
            log.info("pushed %d tickets in %s", len(pairs), queue)
        return pairs

    def push_all(self) -> list[tuple[str, str]]:
        """A push round on every push queue (the daemon's loop; also after config reload)."""
        out: list[tuple[str, str]] = []
        for queue in self.roster().push_queues():
            out += self.push(queue)
        return out

    def push_for(self, agent_id: str) -> list[tuple[str, str]]:
        """After an agent frees a slot or comes online: its push queues get a round."""
        roster = self.roster()
        try:
            agent = roster.get(agent_id)
        except Exception:
            return []
        push = set(roster.push_queues())
        out: list[tuple[str, str]] = []
        for queue in agent.queues:
            if queue in push:
                out += self.push(queue)
        return out

    # -------------------------------------------------------- release

    @guarded
    def release(
        self, ticket_id: str, *, requeue: bool = False, holder: str | None = None
    ) -> str | None:
        """Take the ticket off its agent; returns that agent ('' none, None no ticket). With
        `holder`, only if that agent holds it now (checked in the script, atomically); if
        another does, nothing changes and that other is returned."""
        named = {} if holder is None else {"holder": holder}
        reply = run_script(
            scripts(self.store)["release"], self.store.prefix, ticket=ticket_id,
            requeue="1" if requeue else "0", **named,
        )  # fmt: skip
        if reply is None or reply is False:
            return None
        return str(reply)


def _ms() -> int:
    return int(time.time() * 1000)
