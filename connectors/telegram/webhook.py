"""The webhook: an aiohttp route on the daemon's HTTP server per bot in webhook mode.

Telegram sends the secret given to setWebhook in `X-Telegram-Bot-Api-Secret-Token`; a
POST without the right one is refused (401, logged) and nothing is ingested. An accepted
body is handed over whole, even when it is not an update we understand (the quarantine
keeps it); if the hand-over fails we answer 503 and Telegram sends it again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from aiohttp import web

from connectors.base import Sink
from omnidesk.errors import OmnideskError, retry_after_header

if TYPE_CHECKING:
    from connectors.telegram.connector import TelegramConnector

log = logging.getLogger("omnidesk.connectors.telegram")

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


def webhook_routes(connector: TelegramConnector, sink: Sink) -> Callable[[web.Application], None]:
    """A route hook (`Daemon.route_hooks`) adding POST <webhook_path> for `connector`."""

    async def receive(request: web.Request) -> web.Response:
        if not connector.secret_matches(request.headers.get(SECRET_HEADER)):
            connector.status.errors["auth"] = connector.status.errors.get("auth", 0) + 1
            log.warning(
                "telegram %s: webhook POST from %s refused: %s secret token",
                connector.name,
                request.remote,
                "wrong" if SECRET_HEADER in request.headers else "missing",
            )
            return web.json_response({"ok": False, "error": "unauthorized"}, status=401)
        body = await request.read()
        item = connector.raw_payload(body)
        connector.status.received += 1
        try:
            await sink([item])
        except OmnideskError as exc:
            log.error("telegram %s: webhook hand-over failed: %s", connector.name, exc)
            return web.json_response(
                {"ok": False, "error": "unavailable"}, status=503, headers=retry_after_header(exc)
            )
        connector.status.handed_over += 1
        connector.status.last_fetch = item.received_at
        return web.json_response({"ok": True})

    def hook(app: web.Application) -> None:
        app.router.add_post(connector.config.route, receive)

    return hook
