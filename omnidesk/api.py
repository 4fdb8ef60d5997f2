"""The daemon's HTTP face (aiohttp): /healthz and /metrics, and the limits every route has.

Other routes (the web form and "track my request": omnidesk.webform, omnidesk.status_api;
agents' API, WhatsApp and Telegram webhooks, the console) are added by their modules through
`add_routes(app)` hooks, so this file stays small.

The web form is the one unauthenticated way in, so its door is narrow: the body has a small
limit of its own (`web_max_body`: 413 before it is buffered), a body must arrive within a
deadline, and what it refuses is counted (`omnidesk_web_rejected_total`), never stored.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from aiohttp import web
from aiohttp.typedefs import Middleware
from prometheus_client import CollectorRegistry, Counter

from omnidesk.model import RawPayload
from omnidesk.webguard import install as install_security_headers

log = logging.getLogger("omnidesk.api")

READ_CHUNK = 64 * 1024


class DaemonView(Protocol):
    """What the HTTP layer needs from the daemon."""

    async def health(self) -> dict[str, Any]: ...
    async def render_metrics(self) -> bytes: ...
    async def admit(self) -> None: ...
    async def handover(self, items: list[RawPayload]) -> None: ...


DAEMON_KEY = web.AppKey("daemon", DaemonView)
WEB_MAX_BODY_KEY = web.AppKey("web_max_body", int)
WEB_REJECTED_KEY = web.AppKey("web_rejected", Counter)
RouteHook = Callable[[web.Application], None]


def build_app(
    daemon: DaemonView,
    max_body: int,
    hooks: list[RouteHook] | None = None,
    *,
    web_max_body: int = 1024 * 1024,
    body_timeout: float = 15.0,
    registry: CollectorRegistry | None = None,
) -> web.Application:
    """`max_body` bounds every route (webhooks carry media); `web_max_body` the web form."""
    app = web.Application(client_max_size=max_body, middlewares=[body_deadline(body_timeout)])
    app[DAEMON_KEY] = daemon
    install_security_headers(app)  # CSP, anti-framing, nosniff on every response
    app[WEB_MAX_BODY_KEY] = web_max_body
    app[WEB_REJECTED_KEY] = Counter(
        "omnidesk_web_rejected",
        "Web-form submissions refused at the door and not stored, by reason "
        "(too_large, or the check that failed: not_json, missing_field, ...)",
        ["reason"],
        registry=registry,
    )
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    for hook in hooks or []:
        hook(app)
    return app


def body_deadline(seconds: float) -> Middleware:
    """A client must finish sending its body within `seconds` of its headers, or the
    connection is closed: a slow sender cannot hold a connection (and a handler) open."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.content.is_eof():
            return await handler(request)
        timer = asyncio.get_running_loop().call_later(seconds, _drop_if_unread, request)
        try:
            return await handler(request)
        finally:
            timer.cancel()

    return middleware


def _drop_if_unread(request: web.Request) -> None:
    if not request.content.is_eof() and request.transport is not None:
        log.warning("http: %s sent its body too slowly; connection closed", request.remote)
        request.transport.close()


async def healthz(request: web.Request) -> web.Response:
    report = await request.app[DAEMON_KEY].health()
    return web.json_response(report, status=200 if report.get("ok") else 503, dumps=_dumps)


async def metrics(request: web.Request) -> web.Response:
    body = await request.app[DAEMON_KEY].render_metrics()
    return web.Response(
        body=body,
        content_type="text/plain",
        charset="utf-8",
        headers={"X-Prometheus-Format": "0.0.4"},
    )


async def read_at_most(request: web.Request, limit: int) -> bytes | None:
    """The whole body, however many TCP reads it takes to arrive, or None as soon as it
    passes `limit` bytes, announced or actual (the rest is never buffered)."""
    if (request.content_length or 0) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(READ_CHUNK):
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _dumps(obj: Any) -> str:
    import json

    return json.dumps(obj, ensure_ascii=False, default=str)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
