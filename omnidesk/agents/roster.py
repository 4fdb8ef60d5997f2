"""The agents of a config and what each may see: its queues, plus, for a supervisor, every
queue that names it (by id or e-mail) among its supervisors. `directory` adds the agents a
directory login gives (omnidesk.agents.directory_roster); the config's come first."""

from __future__ import annotations

from dataclasses import dataclass

from omnidesk.config import AgentConfig, QueueConfigFile
from omnidesk.errors import CodedError, PermanentError


class NoSuchAgent(PermanentError):
    """An agent id that is not in the config's `agents`."""


class Forbidden(CodedError):
    """The agent may not see or act on this ticket or queue."""


@dataclass(frozen=True)
class Roster:
    config: QueueConfigFile
    directory: tuple[AgentConfig, ...] = ()

    @property
    def agents(self) -> list[AgentConfig]:
        return [*self.config.agents, *self.directory]

    def get(self, agent_id: str) -> AgentConfig:
        for agent in self.agents:
            if agent.id == agent_id:
                return agent
        raise NoSuchAgent(f"no agent {agent_id!r} in the config")

    def queues_of(self, agent: AgentConfig) -> list[str]:
        """The queues the agent may see and act on, in config order, no duplicates."""
        queues = list(agent.queues)
        if agent.role == "supervisor":
            names = {agent.id, *([agent.email] if agent.email else [])}
            queues += [n for n, q in self.config.queues.items() if names & set(q.supervisors)]
        return list(dict.fromkeys(q for q in queues if q in self.config.queues))

    def may_access(self, agent: AgentConfig, queue: str) -> bool:
        return queue in self.queues_of(agent)

    def check(self, agent: AgentConfig, queue: str) -> None:
        if not self.may_access(agent, queue):
            raise Forbidden(
                f"agent {agent.id!r} has no access to queue {queue!r}",
                "not_your_queue",
                queue=queue,
            )

    def members(self, queue: str) -> list[AgentConfig]:
        """Agents (role agent) who work `queue`: the candidates for push assignment."""
        return [a for a in self.agents if a.role == "agent" and queue in a.queues]

    def push_queues(self) -> list[str]:
        return [n for n, q in self.config.queues.items() if q.assignment != "pull"]
