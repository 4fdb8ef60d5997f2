"""The daemon's HTTP face (aiohttp): /healthz, /metrics and the web-form intake.

Other routes (agents' API, WhatsApp and Telegram webhooks, the console) are added
by their modules through `add_routes(app)` hooks, so this file stays small.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from aiohttp import web

from omnidesk.errors import OmnideskError, PayloadError
from omnidesk.model import Channel, RawPayload
from omnidesk.webguard import install as install_security_headers

log = logging.getLogger("omnidesk.api")


class DaemonView(Protocol):
    """What the HTTP layer needs from the daemon."""

    async def health(self) -> dict[str, Any]: ...
    async def render_metrics(self) -> bytes: ...
    async def handover(self, items: list[RawPayload]) -> None: ...
    def validate_payload(self, channel: Channel, payload: bytes) -> None: ...


DAEMON_KEY = web.AppKey("daemon", DaemonView)
RouteHook = Callable[[web.Application], None]


def build_app(
    daemon: DaemonView, max_body: int, hooks: list[RouteHook] | None = None
) -> web.Application:
    app = web.Application(client_max_size=max_body)
    app[DAEMON_KEY] = daemon
    install_security_headers(app)  # CSP, anti-framing, nosniff on every response
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    app.router.add_post("/v1/intake/web", intake_web)
    for hook in hooks or []:
        hook(app)
    return app


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
    """A web-form submission: checked at once so the submitter sees field errors,
    and handed over whole either way (a bad one lands in the quarantine)."""
    daemon = request.app[DAEMON_KEY]
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        log.warning("web intake: body over the size limit refused")
        raise
    item = RawPayload(
        channel=Channel.WEB,
        account="web",
        payload=body,
        received_at=datetime.now(UTC),
        source=f"http:{request.remote}",
    )
    problem: str | None = None
    try:
        await asyncio.to_thread(daemon.validate_payload, Channel.WEB, body)
    except PayloadError as exc:
        problem = str(exc)
    try:
        await daemon.handover([item])
    except OmnideskError as exc:
        log.error("web intake: hand-over failed: %s", exc)
        return web.json_response(
            {"error": "temporarily unavailable, try again"},
            status=503,
            headers={"Retry-After": "5"},
        )
    if problem is not None:
        log.warning("web intake: rejected submission: %s", problem)
        return web.json_response({"error": problem, "kept": item.sha256}, status=400, dumps=_dumps)
    return web.json_response({"accepted": item.sha256}, status=202)


def _dumps(obj: Any) -> str:
    import json

    return json.dumps(obj, ensure_ascii=False, default=str)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
