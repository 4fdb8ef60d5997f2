"""What a supervisor does beyond an agent's desk: open the dashboard (its login by token or
by a directory login's session, scoped to `Roster.queues_of`) and hand a ticket of its
queues to a named agent, POST /v1/tickets/{ticket}/assign {"agent": id}. Moving a ticket to
another queue is the desk's transfer, POST /v1/tickets/{ticket}/transfer, which a supervisor
calls as any agent."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from aiohttp import web

from omnidesk.agents.bodies import AssignBody
from omnidesk.agents.desk import BadRequest
from omnidesk.agents.http import SERVICE_KEY, _brief, current_agent, error, ok, parsed
from omnidesk.agents.roster import Forbidden, NoSuchAgent
from omnidesk.agents.service import AgentService
from omnidesk.agents.sessions import CsrfRefused, is_session
from omnidesk.config import AgentConfig
from omnidesk.errors import AuthError
from omnidesk.viewers import (
    CsrfMissing,
    NotSupervisor,
    SessionEnded,
    SessionNotSupervisor,
    Viewer,
)


def supervisor_viewer(service: AgentService, token: str) -> Viewer | None:
    """The dashboard's login: an agent's token with the supervisor role sees its queues; an
    agent's without it is refused as such (403); any other token is not ours (None).
    StoreUnavailable passes through: "try again", not "wrong token"."""
    try:
        agent = service.authenticate(token)
    except AuthError:
        return None
    return _as_supervisor(service, agent, NotSupervisor)


def supervisor_session_viewer(
    service: AgentService, cookie: str, method: str, csrf: str | None
) -> Viewer | None:
    """The dashboard's login by a directory login's session cookie: checked as every /v1
    route checks it (`authenticate_session`: live, its agent still has access, the CSRF
    token on a state change), then the supervisor role as for a token. A cookie that is no
    login session (a token login's) is not ours (None)."""
    if not is_session(cookie):
        return None
    try:
        agent = service.authenticate_session(cookie, method, csrf)
    except CsrfRefused as exc:
        raise CsrfMissing(str(exc)) from None
    except AuthError as exc:
        raise SessionEnded(str(exc)) from None
    return _as_supervisor(service, agent, SessionNotSupervisor)


def _as_supervisor(
    service: AgentService, agent: AgentConfig, refused: type[NotSupervisor]
) -> Viewer:
    if agent.role != "supervisor":
        raise refused(f"agent {agent.id!r} is not a supervisor")
    queues = tuple(service.roster().queues_of(agent))
    return Viewer(agent.id, queues, can_reassign=True)


def supervisor_authorize(
    service: AgentService, fallback: Callable[[str], Viewer]
) -> Callable[[str], Viewer]:
    """`supervisor_viewer`, with `fallback` (the operator's token) for any other token."""

    def authorize(token: str) -> Viewer:
        viewer = supervisor_viewer(service, token)
        return viewer if viewer is not None else fallback(token)

    return authorize


async def assign(request: web.Request) -> web.Response:
    service = request.app[SERVICE_KEY]
    supervisor = await current_agent(request)
    if supervisor.role != "supervisor":
        raise Forbidden("only a supervisor may assign a ticket to someone else")
    target_id = (await parsed(request, AssignBody)).agent
    ticket = await asyncio.to_thread(service.desk.ticket, supervisor, request.match_info["ticket"])
    # the roster reads Redis (directory agents): in a thread, once, not on the loop
    roster = await asyncio.to_thread(service.roster)
    try:
        target = roster.get(target_id)
    except NoSuchAgent:
        raise BadRequest(f"no agent {target_id!r}", "no_agent", agent=target_id) from None
    if not roster.may_access(target, ticket.queue):
        raise BadRequest(
            f"agent {target.id!r} does not work queue {ticket.queue!r}: transfer the ticket"
            " to one of their queues first",
            "not_their_queue",
            agent=target.id,
            queue=ticket.queue,
        )
    handed = await asyncio.to_thread(
        service.assigner.hand_to, ticket.id, target, supervisor.id, ticket.queue
    )
    if handed.outcome == "moved":  # transferred since it was read: access checked for nothing
        return error(409, f"{ticket.id} was moved to another queue meanwhile: look again",
                     "moved_meanwhile", {"ticket": ticket.id})  # fmt: skip
    if handed.outcome == "full":
        return error(409, f"{target.id} is at capacity ({target.capacity} open tickets)",
                     "agent_full", {"agent": target.id, "capacity": target.capacity})  # fmt: skip
    if handed.outcome == "closed":
        return error(409, f"{ticket.id} is closed: reopen it first", "ticket_closed",
                     {"ticket": ticket.id})  # fmt: skip
    if handed.outcome == "same":
        raise BadRequest(
            f"{ticket.id} is already {target.id}'s",
            "already_assigned",
            ticket=ticket.id,
            agent=target.id,
        )
    if handed.previous:  # the slot it freed goes to the next waiting ticket
        await asyncio.to_thread(service.assigner.push_for, handed.previous)
    moved = await asyncio.to_thread(service.desk.ticket, supervisor, ticket.id)
    return ok({"ticket": _brief(moved), "previous": handed.previous or None})


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/tickets/{ticket}/assign", assign)
