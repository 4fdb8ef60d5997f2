"""Calls from the communication centre: the PBX's `POST /v1/cti/events`, signed with its
shared secret (cti_sign), and the agents' `GET /v1/cti/calls/{call}` (the screen-pop's
details) and `POST /v1/cti/calls/{call}/disposition` (open a ticket, attach, or log only).

The PBX is answered 201 for an event taken, 200 for one taken before (its resend), 401 for a
signature, PBX or timestamp that does not hold (nothing is written), 400 naming the field at
fault, 503 while PostgreSQL (the call book) is away, so the PBX keeps the event and resends.
"""

from __future__ import annotations

import logging
import time

from aiohttp import web

from omnidesk.agents.bodies import CallDispositionBody, CallEventBody, parse_body
from omnidesk.agents.cti_desk import CtiDesk, read_event
from omnidesk.agents.cti_sign import PBX_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from omnidesk.agents.http import (
    _run,
    current_agent,
    error,
    json_object,
    ok,
    parsed,
    read_limited,
)
from omnidesk.errors import AuthError, TransientError

log = logging.getLogger("omnidesk.agents.cti")

CTI_KEY = web.AppKey("cti_desk", CtiDesk)
_RETRY_LATER = {"Retry-After": "30"}


async def post_event(request: web.Request) -> web.Response:
    desk = request.app[CTI_KEY]
    cti = desk.config()
    raw = await read_limited(request, cti.max_body_bytes)
    pbx = request.headers.get(PBX_HEADER, "")
    try:
        verify(cti, pbx, request.headers.get(TIMESTAMP_HEADER, ""),
               request.headers.get(SIGNATURE_HEADER, ""), raw, time.time())  # fmt: skip
    except AuthError as exc:
        log.warning("cti: refused an event from %s (pbx %r): %s", request.remote, pbx[:64], exc)
        return error(401, str(exc), headers={"WWW-Authenticate": 'HMAC realm="omnidesk-cti"'})
    body = parse_body(json_object(raw), CallEventBody)
    try:  # reading the event finds its agent in the roster: a Redis read, so in the thread
        result = await _run(lambda: desk.event(read_event(desk, pbx, body)))
    except TransientError as exc:
        log.warning("cti: event %s of %s not taken: %s", body.event_id, pbx, exc)
        return error(503, f"{exc}; send it again", headers=_RETRY_LATER)
    return ok(result, status=200 if result["duplicate"] else 201)


async def get_call(request: web.Request) -> web.Response:
    desk = request.app[CTI_KEY]
    agent = await current_agent(request)
    return ok(await _run(desk.screen_pop, agent, request.match_info["call"]))


async def dispose_call(request: web.Request) -> web.Response:
    desk = request.app[CTI_KEY]
    agent = await current_agent(request)
    data = await parsed(request, CallDispositionBody)
    try:
        call = await _run(desk.dispose, agent, request.match_info["call"], data.action,
                          data.ticket, data.note or "")  # fmt: skip
    except TransientError as exc:
        return error(503, f"{exc}; try again", headers=_RETRY_LATER)
    return ok({"call": call})


def add_routes(app: web.Application, desk: CtiDesk) -> None:
    app[CTI_KEY] = desk
    app.router.add_post("/v1/cti/events", post_event)
    app.router.add_get("/v1/cti/calls/{call}", get_call)
    app.router.add_post("/v1/cti/calls/{call}/disposition", dispose_call)
