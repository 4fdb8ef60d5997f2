"""The daemon's HTTP face (aiohttp): /healthz, /metrics and the web-form intake.

Other routes (agents' API, WhatsApp and Telegram webhooks, the console) are added
by their modules through `add_routes(app)` hooks, so this file stays small.

The web form is the one unauthenticated way in, so its door is narrow: the body has a small
limit of its own (413 before it is buffered), a body must arrive within a deadline, a
submission that fails its checks is answered 400 and counted (not stored), and while intake
is overloaded it answers 503 with Retry-After before reading the body at all.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter

from omnidesk.errors import OmnideskError, PayloadError, TransientError, retry_after_header
from omnidesk.model import Channel, RawPayload
from omnidesk.webguard import install as install_security_headers

log = logging.getLogger("omnidesk.api")

READ_CHUNK = 64 * 1024


class DaemonView(Protocol):
    """What the HTTP layer needs from the daemon."""

    async def health(self) -> dict[str, Any]: ...
    async def render_metrics(self) -> bytes: ...
    async def admit(self) -> None: ...
    async def handover(self, items: list[RawPayload]) -> None: ...
    def validate_payload(self, channel: Channel, payload: bytes) -> None: ...


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
    app.router.add_post("/v1/intake/web", intake_web)
    for hook in hooks or []:
        hook(app)
    return app


def body_deadline(seconds: float) -> Callable[[web.Request, Handler], Awaitable[Any]]:
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


async def intake_web(request: web.Request) -> web.Response:
    """A web-form submission: 202 once handed over, 400 naming the bad fields (nothing is
    stored: the submitter was told), 413 over the size limit, 503 + Retry-After under
    overload or a Redis outage."""
    daemon = request.app[DAEMON_KEY]
    rejected = request.app[WEB_REJECTED_KEY]
    limit = request.app[WEB_MAX_BODY_KEY]
    if (request.content_length or 0) > limit:
        return _too_large(rejected, limit)
    try:
        await daemon.admit()
        body = await read_at_most(request, limit)
    except TransientError as exc:
        return _unavailable(exc)
    if body is None:
        return _too_large(rejected, limit)
    try:
        await asyncio.to_thread(daemon.validate_payload, Channel.WEB, body)
    except PayloadError as exc:
        rejected.labels(reason=exc.reason).inc()
        log.warning("web intake: rejected submission (%s, %d bytes)", exc.reason, len(body))
        return web.json_response({"error": str(exc)}, status=400, dumps=_dumps)
    item = RawPayload(
        channel=Channel.WEB,
        account="web",
        payload=body,
        received_at=datetime.now(UTC),
        source=f"http:{request.remote}",
    )
    try:
        await daemon.handover([item])
    except OmnideskError as exc:
        log.error("web intake: hand-over failed: %s", exc)
        return _unavailable(exc)
    return web.json_response({"accepted": item.sha256}, status=202)


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


def _too_large(rejected: Counter, limit: int) -> web.Response:
    rejected.labels(reason="too_large").inc()
    log.warning("web intake: body over the %d-byte limit refused", limit)
    response = web.json_response({"error": f"the body is over the {limit}-byte limit"}, status=413)
    response.force_close()  # the unread rest is not worth keeping the connection for
    return response


def _unavailable(exc: OmnideskError) -> web.Response:
    return web.json_response(
        {"error": "temporarily unavailable, try again"},
        status=503,
        headers=retry_after_header(exc),
    )


def _dumps(obj: Any) -> str:
    import json

    return json.dumps(obj, ensure_ascii=False, default=str)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
