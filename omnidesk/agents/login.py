"""Directory login for the console: POST /v1/login, GET /v1/login, DELETE /v1/login.

POST takes `{"user", "password"}` as JSON only (a cross-site form cannot send that without a
CORS preflight we never answer), asks the directory (directory.py, in a thread), and answers
with the agent and the session's CSRF token, the session itself in the HttpOnly, Secure,
SameSite=Strict cookie (sessions.py). Every name is refused the same way whatever the cause;
the audit trail (the events stream, copied to PostgreSQL) has the cause. After
`lockout_attempts` failures in `lockout_window_s` a name is refused without asking the
directory (429, Retry-After) until the window ends. GET says whether directory login is on
and, with a live session, whose it is and its CSRF token (a reloaded page resumes). DELETE
ends the session (it needs the CSRF token, as every state change does).
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from omnidesk.agents.bodies import LoginBody, parse_body
from omnidesk.agents.directory import Directory, DirectoryUnavailable, LoginRefused, agent_of
from omnidesk.agents.http import SERVICE_KEY, SESSION_COOKIE, BadRequest, body, error, ok
from omnidesk.agents.roster import NoSuchAgent
from omnidesk.agents.service import AgentService
from omnidesk.agents.sessions import CSRF_HEADER
from omnidesk.config import AgentConfig, DirectoryConfig
from omnidesk.errors import AuthError
from omnidesk.events import EventType
from omnidesk.text import display_safe

log = logging.getLogger("omnidesk.agents.login")

RECORD_SYNCS = 3  # a directory agent counts this many sync intervals after it was last seen
REFUSED = "wrong user name or password"


def _directory(service: AgentService) -> DirectoryConfig:
    config = service.config().directory
    if config is None:
        raise web.HTTPNotFound(reason="directory login is not configured")
    return config


def _set_cookie(response: web.Response, value: str, config: DirectoryConfig) -> None:
    response.set_cookie(
        SESSION_COOKIE, value, max_age=config.session_max_s, path="/", httponly=True,
        samesite="Strict", secure=True,
    )  # fmt: skip


def _audit_name(name: str) -> str:
    return display_safe(name)[:64]


async def login(request: web.Request) -> web.Response:
    service = request.app[SERVICE_KEY]
    config = _directory(service)
    if request.content_type != "application/json":
        raise BadRequest("send the login as application/json")
    credentials = parse_body(await body(request), LoginBody)
    name, password = credentials.user, credentials.password
    ip = request.remote or ""
    count, wait_s = await asyncio.to_thread(service.sessions.attempt, name, config.lockout_window_s)
    if count > config.lockout_attempts:
        await asyncio.to_thread(
            service.store.add_event, EventType.LOGIN_LOCKED, actor="login",
            user=_audit_name(name), ip=ip,
        )  # fmt: skip
        return error(
            429, "too many failed logins: try again later", "login_locked",
            {"seconds": wait_s}, headers={"Retry-After": str(max(wait_s, 1))},
        )  # fmt: skip
    try:
        agent = await asyncio.to_thread(_check, service, config, name, password)
    except LoginRefused as exc:
        locked = count == config.lockout_attempts
        await asyncio.to_thread(_failed, service, name, exc.reason, ip, locked)
        return error(401, REFUSED, "bad_login")
    except DirectoryUnavailable as exc:
        log.warning("directory login: %s", exc)
        await asyncio.to_thread(service.sessions.forgive, name)
        return error(503, "the directory is unavailable, try again", headers={"Retry-After": "5"})
    cookie, csrf = await asyncio.to_thread(_open_session, service, config, agent, name, ip)
    response = ok({"agent": agent.id, "name": agent.name, "role": agent.role, "csrf": csrf})
    _set_cookie(response, cookie, config)
    return response


def _check(service: AgentService, config: DirectoryConfig, name: str, password: str) -> AgentConfig:
    """The agent the directory gives for these credentials (LoginRefused otherwise)."""
    user = Directory(config).authenticate(name, password)
    agent = agent_of(user, config)
    if agent is None:
        raise LoginRefused("not_an_agent_id")
    if any(a.id == agent.id for a in service.config().agents):
        raise LoginRefused("id_of_a_config_agent")  # a config agent's id is never taken over
    return agent


def _failed(service: AgentService, name: str, why: str, ip: str, locked: bool) -> None:
    user = _audit_name(name)
    service.store.add_event(EventType.LOGIN_FAILED, actor="login", user=user, reason=why, ip=ip)
    if locked:  # that was the last attempt the window allows
        service.store.add_event(EventType.LOGIN_LOCKED, actor="login", user=user, ip=ip)
    log.info("directory login refused (%s)", why)


def _open_session(
    service: AgentService, config: DirectoryConfig, agent: AgentConfig, name: str, ip: str
) -> tuple[str, str]:
    service.sessions.succeeded(name)
    service.directory.put([agent], RECORD_SYNCS * config.sync_interval_s)
    cookie, csrf = service.sessions.create(agent.id, config.session_ttl_s, config.session_max_s)
    service.store.add_event(EventType.LOGIN, actor=agent.id, agent=agent.id, source="directory",
                            ip=ip)  # fmt: skip
    return cookie, csrf


async def whoami(request: web.Request) -> web.Response:
    """Whether directory login is on; with a live session, its agent and CSRF token."""
    service = request.app[SERVICE_KEY]
    if service.config().directory is None:
        return ok({"directory": False})
    cookie = request.cookies.get(SESSION_COOKIE)
    try:
        agent_id, csrf = await asyncio.to_thread(service.sessions.lookup, cookie)
        agent = await asyncio.to_thread(service.agent, agent_id)
    except (AuthError, NoSuchAgent):  # none, ended, or it outlived the agent's access
        return ok({"directory": True, "agent": None})
    return ok({"directory": True, "agent": agent.id, "name": agent.name, "csrf": csrf})


async def logout(request: web.Request) -> web.Response:
    service = request.app[SERVICE_KEY]
    cookie = request.cookies.get(SESSION_COOKIE)
    agent = await asyncio.to_thread(
        service.authenticate_session, cookie, request.method, request.headers.get(CSRF_HEADER)
    )
    await asyncio.to_thread(service.sessions.drop, cookie)
    await asyncio.to_thread(
        service.store.add_event, EventType.LOGOUT, actor=agent.id, agent=agent.id
    )
    response = web.Response(status=204)
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/login", login)
    app.router.add_get("/v1/login", whoami)
    app.router.add_delete("/v1/login", logout)
