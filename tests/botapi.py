"""A local stand-in for the Telegram Bot API (getMe, getUpdates, sendMessage, getFile and the
file URL), speaking its wire format, so tests drive the real python-telegram-bot through
`base_url` and `base_file_url`."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

GOOD_TOKEN = "123456:test-token-good"


class BotApi:
    """Queued updates, recorded requests, and a switch to answer 429 to sendMessage."""

    def __init__(self, token: str = GOOD_TOKEN) -> None:
        self.token = token
        self.updates: list[dict[str, Any]] = []
        self.calls: list[tuple[str, dict[str, str]]] = []  # every request, in order
        self.sent: list[dict[str, str]] = []  # sendMessage requests that succeeded
        self.flood_once: float | None = None  # next sendMessage answers 429 retry_after
        self._next_message_id = 1000
        self._arrived = asyncio.Event()
        self.url = ""
        self.files: dict[str, bytes] = {}  # file_id -> content, for getFile and /file/

    @property
    def base_file_url(self) -> str:
        return f"{self.url}/file/bot"

    @property
    def base_url(self) -> str:
        return f"{self.url}/bot"

    def push(self, *updates: dict[str, Any]) -> None:
        self.updates.extend(updates)
        self._arrived.set()

    def count(self, method: str) -> int:
        return sum(1 for name, _ in self.calls if name == method)

    async def handle(self, request: web.Request) -> web.Response:
        token, method = request.match_info["token"], request.match_info["method"]
        form = dict(await request.post()) if request.can_read_body else {}
        params = {k: str(v) for k, v in form.items()}
        self.calls.append((method, params))
        if token != self.token:
            return _error(401, "Unauthorized")
        if method == "getMe":
            return _ok({"id": 4242, "is_bot": True, "first_name": "Desk", "username": "desk_bot"})
        if method == "getUpdates":
            return _ok(await self._get_updates(params))
        if method == "sendMessage":
            return self._send_message(params)
        if method == "getFile":
            data = self.files.get(params.get("file_id", ""))
            if data is None:
                return _error(400, "Bad Request: invalid file_id")
            path = f"photos/file_{sorted(self.files).index(params['file_id'])}.jpg"
            return _ok({"file_id": params["file_id"], "file_unique_id": "u" + path[-6:-4],
                        "file_size": len(data), "file_path": path})  # fmt: skip
        return _error(404, "Not Found: method not found")

    async def file(self, request: web.Request) -> web.Response:
        """GET /file/bot<token>/<file_path>: the bytes getFile pointed at."""
        if request.match_info["token"] != self.token:
            return web.Response(status=401)
        self.calls.append(("file", {"path": request.match_info["path"]}))
        path = request.match_info["path"]
        for i, file_id in enumerate(sorted(self.files)):
            if path == f"photos/file_{i}.jpg":
                return web.Response(body=self.files[file_id], content_type="image/jpeg")
        return web.Response(status=404)

    async def _get_updates(self, params: dict[str, str]) -> list[dict[str, Any]]:
        offset = int(params.get("offset", 0) or 0)
        limit = int(params.get("limit", 100) or 100)
        timeout = float(params.get("timeout", 0) or 0)
        # Telegram forgets (confirms) every update below the offset asked with.
        self.updates = [u for u in self.updates if u["update_id"] >= offset]
        deadline = time.monotonic() + timeout
        while not self.updates and time.monotonic() < deadline:
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), deadline - time.monotonic())
            except TimeoutError:
                break
        return self.updates[:limit]

    def _send_message(self, params: dict[str, str]) -> web.Response:
        if self.flood_once is not None:
            wait, self.flood_once = self.flood_once, None
            return _error(429, f"Too Many Requests: retry after {wait}", retry_after=wait)
        if not params.get("text"):
            return _error(400, "Bad Request: message text is empty")
        self._next_message_id += 1
        self.sent.append(params)
        message = {
            "message_id": self._next_message_id,
            "date": int(time.time()),
            "chat": {"id": int(params["chat_id"]), "type": "private"},
            "from": {"id": 4242, "is_bot": True, "first_name": "Desk"},
            "text": params["text"],
        }
        return _ok(message)


def _ok(result: Any) -> web.Response:
    return web.json_response({"ok": True, "result": result})


def _error(code: int, description: str, **parameters: Any) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
    if parameters:
        body["parameters"] = parameters
    return web.json_response(body, status=code)


def update(update_id: int, text: str, chat_id: int = 777, message_id: int | None = None) -> dict:
    """A private-chat text message Update as Telegram sends it."""
    return {
        "update_id": update_id,
        "message": {
            "message_id": message_id or update_id + 10,
            "date": 1_780_000_000 + update_id,
            "chat": {"id": chat_id, "type": "private", "first_name": "Sara"},
            "from": {"id": chat_id, "is_bot": False, "first_name": "Sara", "language_code": "ar"},
            "text": text,
        },
    }


@pytest.fixture
async def botapi() -> AsyncIterator[BotApi]:
    api = BotApi()
    app = web.Application()
    app.router.add_route("*", "/bot{token}/{method}", api.handle)
    app.router.add_get("/file/bot{token}/{path:.+}", api.file)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    api.url = f"http://127.0.0.1:{port}"
    try:
        yield api
    finally:
        api._arrived.set()
        await runner.cleanup()


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)
