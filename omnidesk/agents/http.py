"""The agents' HTTP API under /v1/ (JSON, bearer tokens), documented in openapi.yaml.

Errors are JSON `{"error": "..."}`: 400 bad request, 401 missing/invalid token, 403 not
the agent's queue, 404 unknown ticket, customer or route, 413 body too large, 503 store or
PostgreSQL unavailable,
and 500 (logged, no traceback to the client) for a bug. Store calls are synchronous
(redis-py) and run in a thread so the event loop keeps serving. Every string in a response
goes through `display_safe`: customer text carries no escape sequence or bidi override.

Kept whole though over 500 lines: the /v1 desk API's handlers, each short, over the helpers
(body, field, current_agent, errors_as_json) the other pages import; routes.py wires them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

from aiohttp import web

from omnidesk import event_hub as events
from omnidesk import viewers
from omnidesk.agents.assign import Claim
from omnidesk.agents.attachments import ChannelUnavailable
from omnidesk.agents.bodies import (
    Body,
    ClaimBody,
    MergeBody,
    PendingBody,
    PresenceBody,
    PriorityBody,
    ReplyBody,
    TagsBody,
    TextBody,
    TransferBody,
    parse_body,
)
from omnidesk.agents.desk import BadRequest, NotFound
from omnidesk.agents.roster import Forbidden, NoSuchAgent
from omnidesk.agents.service import AgentService
from omnidesk.agents.sessions import CSRF_HEADER, is_session
from omnidesk.agents.stream_queues import StreamQueues, queues_now
from omnidesk.api import read_at_most
from omnidesk.config import AgentConfig
from omnidesk.db.connect import RecordsUnavailable
from omnidesk.db.customers import RecordRefused, UnknownCustomer
from omnidesk.db.search import BadQuery, check_query
from omnidesk.db.search import search as find
from omnidesk.db.tickets import decode_cursor, encode_cursor
from omnidesk.errors import AuthError, CodedError, StoreUnavailable, TooLarge
from omnidesk.event_hub import HUB_KEY
from omnidesk.events import EventType
from omnidesk.model import Ticket, to_builtins, utc_moment
from omnidesk.text import display_safe_tree

log = logging.getLogger("omnidesk.agents.http")

SERVICE_KEY = web.AppKey("agents", AgentService)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
MAX_JSON = 256 * 1024
SESSION_COOKIE = viewers.SESSION_COOKIE  # named in the core: the dashboard reads it too
SESSION_TTL_S = 12 * 3600  # a working day; the console asks for a new one at each login
_B = TypeVar("_B", bound=Body)


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, default=str)


def error(
    status: int,
    message: str,
    code: str = "",
    params: dict[str, Any] | None = None,
    *,
    headers: dict[str, str] | None = None,
) -> web.Response:
    """The JSON error: the English message and, for the refusals a page words itself, a
    stable `code` with its `params`."""
    body: dict[str, Any] = {"error": display_safe_tree(message)}
    if code:
        body["code"] = code
        body["params"] = display_safe_tree(params or {})
    return web.json_response(body, status=status, headers=headers, dumps=_dumps)


class BodyTooLarge(BadRequest):
    """A request body over MAX_JSON: answered 413."""


_RETRY_LATER = {"Retry-After": "5"}
# The refusals answered with their own status, tried in this order (BodyTooLarge before
# the BadRequest it is); a CodedError's code and params go with it.
_REFUSALS: tuple[tuple[tuple[type[Exception], ...], int], ...] = (
    ((Forbidden,), 403),
    ((NotFound, NoSuchAgent, UnknownCustomer), 404),
    ((BodyTooLarge, TooLarge), 413),
    ((BadRequest, RecordRefused, ValueError), 400),
)


@web.middleware
async def errors_as_json(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not request.path.startswith("/v1/") or request.path.startswith("/v1/intake/"):
        return await handler(request)
    try:
        return await handler(request)
    except web.HTTPException as exc:  # aiohttp's own: no route, wrong method, ...
        if exc.status < 400:
            raise
        headers = {k: v for k, v in exc.headers.items() if k in ("Allow", "Retry-After")}
        return error(exc.status, exc.reason, headers=headers)
    except Exception as exc:
        answer = _refusal(exc)
        if answer is None:  # a bug: logged here, one JSON line to the client, no traceback
            log.exception("%s %s failed", request.method, request.path)
            return error(500, "internal error")
        return answer


def _refusal(exc: Exception) -> web.Response | None:
    """The answer to an error the API words for the client; None for a bug."""
    if isinstance(exc, AuthError):
        return error(401, str(exc), headers={"WWW-Authenticate": 'Bearer realm="omnidesk"'})
    for kinds, status in _REFUSALS:
        if isinstance(exc, kinds):
            if isinstance(exc, CodedError):
                return error(status, str(exc), exc.code, exc.params)
            return error(status, str(exc))
    if isinstance(exc, StoreUnavailable | RecordsUnavailable):
        return error(503, "temporarily unavailable, try again", headers=_RETRY_LATER)
    if isinstance(exc, ChannelUnavailable):
        return error(503, f"{exc}; try again", headers=_RETRY_LATER)
    return None


def bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


async def current_agent(request: web.Request, *, cookie: bool = False) -> AgentConfig:
    """The agent of the bearer token; with `cookie`, on a read-only GET that a browser makes
    without headers (EventSource, <img>), the session cookie stands in for it. A directory
    login's session cookie works everywhere, with its CSRF token on state changes."""
    return await asyncio.to_thread(authenticator(request, cookie=cookie))


def authenticator(request: web.Request, *, cookie: bool = False) -> Callable[[], AgentConfig]:
    """`current_agent`'s check as a blocking call, for a handler that runs it in the same
    thread hop as its own work."""
    service = request.app[SERVICE_KEY]
    token = bearer(request)
    if token is None and is_session(request.cookies.get(SESSION_COOKIE)):  # directory login
        value, csrf = request.cookies[SESSION_COOKIE], request.headers.get(CSRF_HEADER)
        return lambda: service.authenticate_session(value, request.method, csrf)
    if token is None and cookie and SESSION_COOKIE in request.cookies:
        return lambda: service.authenticate_cookie(request.cookies[SESSION_COOKIE])
    return lambda: service.authenticate(token)


async def read_limited(request: web.Request, limit: int = MAX_JSON) -> bytes:
    """The whole body (`content.read(n)` alone returns what has arrived so far);
    BodyTooLarge past `limit`."""
    raw = await read_at_most(request, limit)
    if raw is None:
        raise BodyTooLarge(f"request body over {limit} bytes")
    return raw


async def body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    raw = await read_limited(request)
    return json_object(raw) if raw.strip() else {}


def json_object(raw: bytes) -> dict[str, Any]:
    """`raw` as a JSON object; BadRequest saying what it is not."""
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("the body is not JSON") from None
    if not isinstance(data, dict):
        raise BadRequest("the body must be a JSON object")
    return data


async def parsed(request: web.Request, model: type[_B]) -> _B:
    """The request's JSON body as `model` (omnidesk.agents.bodies); BadRequest otherwise."""
    return parse_body(await body(request), model)


def ok(obj: Any, status: int = 200) -> web.Response:
    return web.json_response(display_safe_tree(to_builtins(obj)), status=status, dumps=_dumps)


def _run(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Awaitable[Any]:
    return asyncio.to_thread(fn, *args, **kwargs)


# ---------------------------------------------------------------- handlers


async def me(request: web.Request) -> web.Response:
    service = request.app[SERVICE_KEY]
    agent = await current_agent(request)
    presence = await _run(service.assigner.presence, agent.id)
    load = await _run(service.assigner.load, agent.id)
    queues = await _run(_queues_of, service, agent)  # the roster reads Redis: off the loop
    return ok(
        {
            "id": agent.id,
            "name": agent.name,
            "role": agent.role,
            "languages": agent.languages,
            "capacity": agent.capacity,
            "load": load,
            "presence": presence,
            "queues": queues,
            "transfer_targets": list(service.config().queues),
        }
    )


async def set_presence(request: web.Request) -> web.Response:
    service = request.app[SERVICE_KEY]
    agent = await current_agent(request)
    status = (await parsed(request, PresenceBody)).status
    await _run(service.assigner.set_presence, agent.id, status)
    if status == "online":
        await _run(service.assigner.push_for, agent.id)
    return ok({"presence": status})


async def heartbeat(request: web.Request) -> web.Response:
    service = request.app[SERVICE_KEY]
    agent = await current_agent(request)
    return ok({"presence": await _run(service.assigner.heartbeat, agent.id)})


async def queues(request: web.Request) -> web.Response:
    service = request.app[SERVICE_KEY]
    agent = await current_agent(request)
    summary = await _run(service.queue_summary, agent)
    mine = await _run(service.desk.mine, agent)
    return ok({"queues": summary, "mine": await _run(_briefs_with_sla, service, mine)})


async def claim(request: web.Request) -> web.Response:
    """POST /v1/claims, the console's busiest call: the token check, the claim and the read
    of the ticket it gives run in one thread hop (bench/claim.py), not three."""
    service = request.app[SERVICE_KEY]
    try:
        fields: dict[str, Any] | BadRequest = await body(request)
    except BadRequest as exc:  # answered after the token check, as on every other route
        fields = exc
    agent, result, ticket = await _run(_claim, service, authenticator(request), fields)
    if ticket is not None:
        return ok({"ticket": _brief(ticket)}, status=201)
    if result.outcome == "full":
        return error(
            409,
            f"at capacity ({agent.capacity} open tickets)",
            "at_capacity",
            {"capacity": agent.capacity},
        )
    return web.Response(status=204)


def _claim(
    service: AgentService,
    authenticate: Callable[[], AgentConfig],
    fields: dict[str, Any] | BadRequest,
) -> tuple[AgentConfig, Claim, Ticket | None]:
    agent = authenticate()
    if isinstance(fields, BadRequest):
        raise fields
    queue = parse_body(fields, ClaimBody).queue
    if queue is not None:
        service.roster().check(agent, queue)
    result = service.assigner.claim(agent, [queue] if queue else None)
    if result.outcome != "claimed" or result.ticket_id is None:
        return agent, result, None
    return agent, result, service.desk.ticket(agent, result.ticket_id)


async def list_tickets(request: web.Request) -> web.Response:
    """GET /v1/tickets?queue=&status=&customer=&channel=&tag=&since=&until=&before=&limit=
    Newest first; `next` is the cursor for `before` (null on the last page)."""
    service = request.app[SERVICE_KEY]
    agent = await current_agent(request)
    q = request.query
    try:
        limit = min(500, max(1, int(q.get("limit", "50"))))
    except ValueError:
        raise BadRequest("limit: must be a number") from None
    filters: dict[str, Any] = {k: q.get(k) for k in ("status", "customer", "channel", "tag")}
    filters["since"], filters["until"] = _moment(q, "since"), _moment(q, "until")
    filters["before"] = decode_cursor(q["before"]) if q.get("before") else None
    page = await _run(service.desk.page, agent, q.get("queue"), limit=limit, **filters)
    return ok({
        "tickets": await _run(_briefs_with_sla, service, page.tickets),
        "next": encode_cursor(page.next) if page.next else None,
    })  # fmt: skip


def _moment(query: Any, name: str) -> datetime | None:
    """An ISO date or date-time query parameter (UTC when it names no zone)."""
    text = query.get(name)
    if not text:
        return None
    try:
        return utc_moment(text)
    except ValueError:
        raise BadRequest(f"{name}: not an ISO date or date-time") from None


async def search(request: web.Request) -> web.Response:
    """Tickets (open or closed, in PostgreSQL) matching `q`, in the agent's queues only."""
    service = request.app[SERVICE_KEY]
    agent = await current_agent(request)
    try:
        query = check_query(request.query.get("q", ""))
        limit = min(100, max(1, int(request.query.get("limit", "20"))))
    except BadQuery as exc:
        raise BadRequest(str(exc)) from None
    except ValueError:
        raise BadRequest("limit: must be a number") from None
    if service.records is None:
        raise StoreUnavailable("no PostgreSQL configured for search")
    records = service.records

    def run() -> list[Any]:
        queues = service.roster().queues_of(agent)  # Redis with directory login: in the thread
        with records.connection() as conn:
            return find(conn, query, queues=queues, limit=limit)

    hits = await _run(run)
    return ok({"query": query, "hits": [h.to_dict() for h in hits]})


async def view(request: web.Request) -> web.Response:
    service = request.app[SERVICE_KEY]
    agent = await current_agent(request)
    shown = await _run(service.desk.view, agent, request.match_info["ticket"])
    shown["routing"] = routing_trace(service, shown)
    shown["sla_why"] = await _run(service.desk.sla_explain, shown["ticket"]["id"])
    shown["sla_explained"] = await _run(service.desk.sla_explained, shown["ticket"]["id"])
    return ok(shown)


def routing_trace(service: AgentService, shown: dict[str, Any]) -> dict[str, Any]:
    """Why the ticket is in its queue: the rule that routed it (its conditions from the
    config in force now), and the routing, transfer and escalation events of its history."""
    rule_id = shown["ticket"].get("rule")
    config = service.config()
    rule = next((r for r in config.rules if r.id == rule_id), None)
    moves = (EventType.ROUTED, EventType.TRANSFERRED, EventType.ESCALATED, EventType.MERGED,
             EventType.ASSIGNED)  # fmt: skip
    return {
        "rule": rule_id,
        "description": rule.description if rule else "",
        "when": rule.when.model_dump(exclude_defaults=True, mode="json")
        if rule and rule.when
        else None,
        "then": rule.then.model_dump(exclude_defaults=True, mode="json") if rule else None,
        "default": rule_id is None or rule is None,
        "default_queue": config.default.queue,
        "events": [e for e in shown.get("history", []) if e.get("type") in moves],
    }


async def template_preview(request: web.Request) -> web.Response:
    """GET /v1/tickets/{ticket}/template-preview?template=&language= : the canned reply with
    its placeholders filled for this ticket, as `reply` with `template` would send it."""
    service = request.app[SERVICE_KEY]
    agent = await current_agent(request)
    name = request.query.get("template", "")
    language = request.query.get("language") or None
    if not name:
        raise BadRequest("template: required")
    if language not in (None, "ar", "en"):
        raise BadRequest("language: ar or en")

    preview = service.desk.preview_template
    text = await _run(preview, agent, request.match_info["ticket"], name, language)
    return ok({"template": name, "text": text})


async def list_attachments(request: web.Request) -> web.Response:
    service = request.app[SERVICE_KEY]
    agent = await current_agent(request, cookie=True)
    ticket_id = request.match_info["ticket"]
    return ok({"attachments": await _run(service.attachments, agent, ticket_id)})


async def get_attachment(request: web.Request) -> web.Response:
    """The bytes, inline only for the safe types (omnidesk.agents.attachments); `?download=1`
    always as a file to save."""
    service = request.app[SERVICE_KEY]
    agent = await current_agent(request, cookie=True)
    served = await service.attachment(
        agent,
        request.match_info["ticket"],
        request.match_info["attachment"],
        download=request.query.get("download") in ("1", "true", "yes"),
    )
    return web.Response(body=served.data, headers=served.headers)


async def create_session(request: web.Request) -> web.Response:
    """POST /v1/session (bearer): sets the HttpOnly, SameSite=Strict session cookie that
    the GET-only stream and attachment routes accept, since EventSource and <img> send no
    Authorization header. The cookie is a random value standing for the token, not it."""
    service = request.app[SERVICE_KEY]
    agent = await current_agent(request)
    value = await _run(service.tokens.create_cookie, bearer(request), SESSION_TTL_S)
    response = ok({"agent": agent.id, "expires_in": SESSION_TTL_S}, status=201)
    response.set_cookie(
        SESSION_COOKIE, value, max_age=SESSION_TTL_S, path="/v1/", httponly=True,
        samesite="Strict", secure=request.secure,
    )  # fmt: skip
    return response


async def drop_session(request: web.Request) -> web.Response:
    service = request.app[SERVICE_KEY]
    await _run(service.tokens.drop_cookie, request.cookies.get(SESSION_COOKIE))
    response = web.Response(status=204)
    response.del_cookie(SESSION_COOKIE, path="/v1/")
    return response


async def events_stream(request: web.Request) -> web.StreamResponse:
    """GET /v1/events/stream: Server-Sent Events of the agent's queues (omnidesk.event_hub).
    Bearer token or the session cookie (EventSource sends no header); Last-Event-ID (or
    ?last_event_id=) resumes after that stream id."""
    service = request.app[SERVICE_KEY]
    hub = request.app[HUB_KEY]
    agent = await current_agent(request, cookie=True)
    last = request.headers.get("Last-Event-ID") or request.query.get("last_event_id") or ""
    if last and not events.valid_id(last.strip()):
        raise BadRequest("Last-Event-ID: not an event id")
    last = last.strip()
    queues = await _run(queues_now, service, agent.id)  # StoreUnavailable: a 503, not a stream
    sub = hub.subscribe()  # before the replay: what comes meanwhile waits in its queue
    try:
        await hub.started()
        replayed = await _run(events.replay, service.store, service.records, last) if last else []
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-store",
                "X-Accel-Buffering": "no",  # a proxy in front must not hold events back
            }
        )
        await response.prepare(request)
        with contextlib.suppress(ConnectionError):
            # every entry in the queue is newer than the subscription: only a replayed
            # one can come twice
            live = StreamQueues(service, agent.id, queues)
            await _stream(request, response, sub, agent, live, last or "0-0", replayed)
        return response
    finally:
        hub.unsubscribe(sub)


async def _stream(
    request: web.Request,
    response: web.StreamResponse,
    sub: events.Subscriber,
    agent: AgentConfig,
    live: StreamQueues,
    sent: str,
    replayed: list[events.Entry] | None,
) -> None:
    hub = request.app[HUB_KEY]
    await response.write(f"retry: {events.RETRY_MS}\n: {agent.id}\n\n".encode())
    queues = live.queues
    if replayed is None:  # the gap cannot be filled: the console reloads what it shows
        await response.write(b"event: resync\ndata: {}\n\n")
        replayed = []
    for entry_id, fields in replayed:
        sent = entry_id
        if events.visible(fields, queues, agent.id):
            await response.write(events.frame(entry_id, fields))
    loop = asyncio.get_running_loop()
    checked = loop.time()
    while True:
        # the token is checked every heartbeat_s by the clock, busy or idle: a stream whose
        # events keep coming must still end when the token is revoked
        if loop.time() - checked >= hub.heartbeat_s:
            checked = loop.time()
            try:
                agent = await current_agent(request, cookie=True)
            except AuthError:
                await response.write(b"event: logout\ndata: {}\n\n")
                return
            except (StoreUnavailable, RecordsUnavailable):
                pass
        try:
            timeout = checked + hub.heartbeat_s - loop.time()
            entry = await asyncio.wait_for(sub.queue.get(), timeout=max(timeout, 0.001))
        except TimeoutError:
            await response.write(b": ping\n\n")
            continue
        if entry is None or (sub.overflowed and sub.queue.empty()):
            return  # cut off (too slow, or the server stops): the browser resumes
        entry_id, fields = entry
        if events.stream_pos(entry_id) <= events.stream_pos(sent):
            continue  # already sent by the replay
        sent = entry_id
        if events.visible(fields, await live.now(), agent.id):
            await response.write(events.frame(entry_id, fields))


def _queues_of(service: AgentService, agent: AgentConfig) -> list[str]:
    return service.roster().queues_of(agent)


async def reply(request: web.Request) -> web.Response:
    service = request.app[SERVICE_KEY]
    agent = await current_agent(request)
    data = await parsed(request, ReplyBody)
    if data.text is None and data.template is None:
        raise BadRequest("text: required")
    message = await _run(
        service.desk.reply,
        agent,
        request.match_info["ticket"],
        data.text or "",
        template=data.template,
        language=data.language,
    )
    return ok({"message": message}, status=201)


async def note(request: web.Request) -> web.Response:
    service = request.app[SERVICE_KEY]
    agent = await current_agent(request)
    text = (await parsed(request, TextBody)).text
    message = await _run(service.desk.note, agent, request.match_info["ticket"], text)
    return ok({"message": message}, status=201)


async def transfer(request: web.Request) -> web.Response:
    service = request.app[SERVICE_KEY]
    agent = await current_agent(request)
    data = await parsed(request, TransferBody)
    ticket = await _run(
        service.desk.transfer, agent, request.match_info["ticket"], data.queue, data.reason
    )
    return ok({"ticket": _brief(ticket)})


def _status_action(name: str) -> Handler:
    async def handler(request: web.Request) -> web.Response:
        service = request.app[SERVICE_KEY]
        agent = await current_agent(request)
        args: list[Any] = [agent, request.match_info["ticket"]]
        if name == "pending":  # why the ticket waits, recorded with the change itself
            args.append((await parsed(request, PendingBody)).reason or "")
        ticket = await _run(getattr(service.desk, name), *args)
        return ok({"ticket": _brief(ticket)})

    handler.__name__ = name
    return handler


async def merge(request: web.Request) -> web.Response:
    service = request.app[SERVICE_KEY]
    agent = await current_agent(request)
    into = (await parsed(request, MergeBody)).into
    ticket = await _run(service.desk.merge, agent, request.match_info["ticket"], into)
    return ok({"ticket": _brief(ticket)})


async def tags(request: web.Request) -> web.Response:
    service = request.app[SERVICE_KEY]
    agent = await current_agent(request)
    data = await parsed(request, TagsBody)
    ticket = await _run(
        service.desk.tag, agent, request.match_info["ticket"], data.add, data.remove
    )
    return ok({"ticket": _brief(ticket)})


async def priority(request: web.Request) -> web.Response:
    service = request.app[SERVICE_KEY]
    agent = await current_agent(request)
    value = (await parsed(request, PriorityBody)).priority
    ticket = await _run(service.desk.set_priority, agent, request.match_info["ticket"], value)
    return ok({"ticket": _brief(ticket)})


async def templates(request: web.Request) -> web.Response:
    service = request.app[SERVICE_KEY]
    await current_agent(request)
    return ok({"templates": service.config().templates})


def _briefs_with_sla(service: AgentService, tickets: list[Any]) -> list[dict[str, Any]]:
    """Ticket briefs, each with `sla`: its most urgent clock (the console's countdown)."""
    return [{**_brief(t), "sla": service.desk.sla_brief(t.id)} for t in tickets]


def _brief(ticket: Any) -> dict[str, Any]:
    return {
        "id": ticket.id,
        "queue": ticket.queue,
        "status": ticket.status.value,
        "priority": ticket.priority.value,
        "channel": ticket.channel.value,
        "subject": ticket.subject,
        "preview": ticket.preview,
        "language": ticket.language.value,
        "assignee": ticket.assignee,
        "tags": ticket.tags,
        "created_at": ticket.created_at.isoformat(),
        "updated_at": ticket.updated_at.isoformat(),
    }


def add_api_routes(service: AgentService) -> Callable[[web.Application], None]:
    """The /v1 desk API's routes; omnidesk.agents.routes.add_routes adds the other pages'."""

    def hook(app: web.Application) -> None:
        app[SERVICE_KEY] = service
        hub = app[HUB_KEY] = events.EventHub(service.store)

        async def close_hub(_: web.Application) -> None:
            await hub.close()

        app.on_shutdown.append(close_hub)
        app.middlewares.append(errors_as_json)
        r = app.router
        r.add_get("/v1/me", me)
        r.add_put("/v1/me/presence", set_presence)
        r.add_post("/v1/me/heartbeat", heartbeat)
        r.add_get("/v1/queues", queues)
        r.add_post("/v1/claims", claim)
        r.add_get("/v1/templates", templates)
        r.add_get("/v1/search", search)
        r.add_get("/v1/tickets", list_tickets)
        r.add_get("/v1/tickets/{ticket}", view)
        r.add_get("/v1/tickets/{ticket}/template-preview", template_preview)
        r.add_get("/v1/tickets/{ticket}/attachments", list_attachments)
        r.add_get("/v1/tickets/{ticket}/attachments/{attachment}", get_attachment)
        r.add_post("/v1/session", create_session)
        r.add_get("/v1/events/stream", events_stream)
        r.add_delete("/v1/session", drop_session)
        r.add_post("/v1/tickets/{ticket}/reply", reply)
        r.add_post("/v1/tickets/{ticket}/notes", note)
        r.add_post("/v1/tickets/{ticket}/transfer", transfer)
        for name in ("pending", "resolve", "reopen"):
            r.add_post(f"/v1/tickets/{{ticket}}/{name}", _status_action(name))
        r.add_post("/v1/tickets/{ticket}/merge", merge)
        r.add_post("/v1/tickets/{ticket}/tags", tags)
        r.add_post("/v1/tickets/{ticket}/priority", priority)

    return hook
