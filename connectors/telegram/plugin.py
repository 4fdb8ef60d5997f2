"""Daemon wiring for Telegram bots: a `omnidesk.service.PLUGINS` entry.

For each Telegram connector the daemon built, it attaches the offset cursor (in Redis,
under the store's prefix), registers the bot as the `deliver` actor's sender for its
account on the daemon's event loop, and adds the webhook route for bots in webhook mode.
"""

from __future__ import annotations

import asyncio
from typing import Any

from connectors.state import CursorStore
from connectors.telegram.connector import TelegramConnector
from connectors.telegram.webhook import webhook_routes
from omnidesk.model import Channel


class ThreadedRedis:
    """The async get/set/delete CursorStore needs, over the store's synchronous client
    (run in a thread), so the cursor shares the daemon's connection settings."""

    def __init__(self, client: Any) -> None:
        self.client = client

    async def get(self, key: str) -> Any:
        return await asyncio.to_thread(self.client.get, key)

    async def set(self, key: str, value: str) -> Any:
        return await asyncio.to_thread(self.client.set, key, value)

    async def delete(self, key: str) -> Any:
        return await asyncio.to_thread(self.client.delete, key)


def install(daemon: Any) -> None:
    """Called by `Daemon.initialize` (after the connectors are built, before they start)."""
    from omnidesk.pipeline import register_sender

    loop = asyncio.get_running_loop()
    store = daemon.runtime.store
    for connector in daemon.connectors:
        if not isinstance(connector, TelegramConnector):
            continue
        if connector.cursors is None:
            connector.attach(CursorStore(ThreadedRedis(store.r), store.prefix))  # type: ignore[arg-type]
        register_sender(Channel.TELEGRAM, connector.account, connector.send, loop=loop)
        if connector.config.mode == "webhook":
            daemon.route_hooks.append(webhook_routes(connector, daemon.handover))
