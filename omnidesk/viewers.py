"""Who is looking at the supervisors' pages: a bearer token, or else a directory login's
session cookie, turned into a `Viewer` (who, which queues), or refused saying why
(`BadToken`, `SessionEnded`: 401; `NotSupervisor`, `CsrfMissing`: 403).

It lives in the core so the reports plugin (which shows the pages) and the agents plugin
(which knows the supervisors) meet here instead of one importing the other. Without the
agents plugin, the operator's token in $OMNIDESK_DASHBOARD_TOKEN sees every queue (none set:
all refused).
"""

from __future__ import annotations

import asyncio
import hmac
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from omnidesk.errors import PermanentError


class NotAuthorized(PermanentError):
    code = "bad_token"
    status = 401
    wording = ""  # the page's message key when it is not the code's

    @property
    def message_key(self) -> str:
        return self.wording or self.code


class BadToken(NotAuthorized):
    """No token, or one nobody issued (or revoked)."""


class NotSupervisor(NotAuthorized):
    """A valid agent's token, without the supervisor role."""

    code = "not_supervisor"
    status = 403


class SessionNotSupervisor(NotSupervisor):
    """A live directory login's session of an agent without the supervisor role."""

    wording = "session_not_supervisor"


class NoCredentials(BadToken):
    """Neither a bearer token nor a login session cookie: the page asks for one."""


class SessionEnded(BadToken):
    """A login session cookie that is no (longer a) live session: sign in again."""

    code = "session_ended"


class CsrfMissing(NotAuthorized):
    """A state-changing request on a session cookie without the session's CSRF token."""

    code = "csrf_refused"
    status = 403


@dataclass(frozen=True)
class Viewer:
    name: str
    queues: tuple[str, ...] | None  # None: every queue (the operator's token)
    can_reassign: bool = False  # an agent's own token: the desk API acts as that agent


Authorize = Callable[[str], Viewer]
# (cookie, HTTP method, X-CSRF-Token header or None) -> the session's viewer
AuthorizeSession = Callable[[str, str, str | None], Viewer]

# the agents' login session cookie and its CSRF header (omnidesk.agents.sessions); named
# here so the reports part reads them without importing the agents part
SESSION_COOKIE = "omnidesk_session"
CSRF_HEADER = "X-CSRF-Token"


def env_authorize(token: str) -> Viewer:
    """The operator's token ($OMNIDESK_DASHBOARD_TOKEN), compared in constant time."""
    expected = os.environ.get("OMNIDESK_DASHBOARD_TOKEN", "")
    if expected and token and hmac.compare_digest(token.encode(), expected.encode()):
        return Viewer("operator", None)
    raise BadToken("invalid token")


def no_sessions(cookie: str, method: str, csrf: str | None) -> Viewer:
    """Without the agents part no login session exists: every cookie is refused."""
    raise SessionEnded("no login session is known here")


def viewer_check(
    request: web.Request, authorize: Authorize, authorize_session: AuthorizeSession
) -> Callable[[], Viewer]:
    """The blocking check of the request's credentials, to run in a thread: its bearer token
    when it has one, else its login session cookie (with its CSRF header), else a refusal."""
    token = bearer_token(request)
    cookie = request.cookies.get(SESSION_COOKIE, "")
    if token:
        return lambda: authorize(token)
    if cookie:
        method, csrf = request.method, request.headers.get(CSRF_HEADER)
        return lambda: authorize_session(cookie, method, csrf)

    def missing() -> Viewer:
        raise NoCredentials("missing token")

    return missing


def bearer_token(request: web.Request) -> str:
    """The request's `Authorization: Bearer` token; "" without one."""
    header = request.headers.get("Authorization", "")
    return header[7:].strip() if header.lower().startswith("bearer ") else ""


async def supervisor_or_refusal(request: web.Request, pages: Any) -> Viewer | web.Response:
    """The viewer of the request's token or login session by `pages`' `authorize` and
    `authorize_session` (the dashboard's; checked off the event loop), or the JSON refusal
    of the supervisors' report endpoints: 401 with WWW-Authenticate, or 403."""
    check = viewer_check(request, pages.authorize, pages.authorize_session)
    try:
        return await asyncio.to_thread(check)
    except NotAuthorized as exc:
        refused = {"error": "a supervisor's bearer token is required", "code": exc.code}
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else {}
        return web.json_response(refused, status=exc.status, headers=headers)
