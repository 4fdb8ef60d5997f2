"""The agents the directory gives, held in Redis so every daemon sees the same ones.

    P:directory:agents   hash  agent id -> JSON {"agent": AgentConfig fields, "until": ms}

A login writes its agent; each sync (directory_sync.py) writes everyone in the mapped groups
and drops who left. An entry counts until its `until` (three sync intervals): when the
directory cannot be reached for that long, its agents stop working (fail closed) without
anyone deleting them, and the next good sync, which still finds them here, releases what they
held. One HGETALL per read: the roster is built from it at each request and push round.
"""

from __future__ import annotations

import json
import time

from pydantic import ValidationError

from omnidesk.config import AgentConfig
from omnidesk.replies import texts
from omnidesk.store import Store, guarded


def _ms() -> int:
    return int(time.time() * 1000)


class DirectoryRoster:
    def __init__(self, store: Store) -> None:
        self.store = store

    @property
    def key(self) -> str:
        return self.store.keys.directory_agents()

    @guarded
    def agents(self) -> tuple[AgentConfig, ...]:
        """The directory's agents still within their `until`, by id."""
        now = _ms()
        out: list[AgentConfig] = []
        for _, raw in sorted(self.store.r.hgetall(self.key).items()):
            try:
                entry = json.loads(raw)
                if int(entry["until"]) > now:
                    out.append(AgentConfig.model_validate(entry["agent"]))
            except (ValueError, KeyError, TypeError, ValidationError):
                continue  # a damaged entry gives no agent; the next sync rewrites it
        return tuple(out)

    @guarded
    def ids(self) -> set[str]:
        """Every id held, honoured or not: whom the sync compares with the directory."""
        return set(texts(self.store.r.hkeys(self.key)))

    @guarded
    def put(self, agents: list[AgentConfig], valid_s: float) -> None:
        if not agents:
            return
        until = _ms() + int(valid_s * 1000)
        self.store.r.hset(
            self.key,
            mapping={
                a.id: json.dumps({"agent": a.model_dump(mode="json"), "until": until})
                for a in agents
            },
        )

    @guarded
    def drop(self, agent_ids: list[str]) -> None:
        if agent_ids:
            self.store.r.hdel(self.key, *agent_ids)
