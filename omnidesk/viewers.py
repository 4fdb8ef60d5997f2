"""Who is looking at the supervisors' pages: a bearer token turned into a `Viewer` (who, which
queues), or refused saying why (`BadToken`: 401, `NotSupervisor`: 403).

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

from aiohttp import web

from omnidesk.errors import PermanentError


class NotAuthorized(PermanentError):
    code = "bad_token"
    status = 401


class BadToken(NotAuthorized):
    """No token, or one nobody issued (or revoked)."""


class NotSupervisor(NotAuthorized):
    """A valid agent's token, without the supervisor role."""

    code = "not_supervisor"
    status = 403


@dataclass(frozen=True)
class Viewer:
    name: str
    queues: tuple[str, ...] | None  # None: every queue (the operator's token)
    can_reassign: bool = False  # an agent's own token: the desk API acts as that agent


Authorize = Callable[[str], Viewer]


def env_authorize(token: str) -> Viewer:
    """The operator's token ($OMNIDESK_DASHBOARD_TOKEN), compared in constant time."""
    expected = os.environ.get("OMNIDESK_DASHBOARD_TOKEN", "")
    if expected and token and hmac.compare_digest(token.encode(), expected.encode()):
        return Viewer("operator", None)
    raise BadToken("invalid token")


def bearer_token(request: web.Request) -> str:
    """The request's `Authorization: Bearer` token; "" without one."""
    header = request.headers.get("Authorization", "")
    return header[7:].strip() if header.lower().startswith("bearer ") else ""


async def supervisor_or_refusal(
    request: web.Request, authorize: Callable[[str], Viewer]
) -> Viewer | web.Response:
    """The viewer of the request's token (checked off the event loop), or the JSON refusal
    of the supervisors' report endpoints: 401 with WWW-Authenticate, or 403."""
    token = bearer_token(request)
    try:
        if not token:
            raise BadToken("missing token")
        return await asyncio.to_thread(authorize, token)
    except NotAuthorized as exc:
        refused = {"error": "a supervisor's bearer token is required", "code": exc.code}
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else {}
        return web.json_response(refused, status=exc.status, headers=headers)
