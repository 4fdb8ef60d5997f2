"""A local server speaking the X API v2 wire format for what the connector uses:
the mentions timeline, DM events, posting a tweet and a DM. Shapes follow the recorded
fixtures in tests/fixtures/twitter; newest first, `meta.next_token` for more pages,
`x-rate-limit-*` headers on every answer, a 429 with a reset time when told to."""

from __future__ import annotations

import itertools
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

OUR_ID = "1400000000000000000"
USERS = {
    "1500000000000000001": {"id": "1500000000000000001", "name": "نورة", "username": "Noura_Q"},
    "1500000000000000002": {"id": "1500000000000000002", "name": "Omar", "username": "omar_biz"},
    OUR_ID: {"id": OUR_ID, "name": "وزارة التجارة", "username": "MCI_SA"},
}


@dataclass
class FakeX:
    mentions: list[dict[str, Any]] = field(default_factory=list)  # oldest first
    dm_events: list[dict[str, Any]] = field(default_factory=list)  # oldest first
    requests: list[web.Request] = field(default_factory=list)
    posted: list[dict[str, Any]] = field(default_factory=list)
    rate_limited_until: int | None = None  # answer 429 with this reset while set
    status_override: int | None = None  # answer every request with this status
    remaining: int = 450
    base: str = ""
    _ids: itertools.count = field(
        default_factory=lambda: itertools.count(1_790_000_000_000_000_001)
    )

    def mention(self, text: str, author: str = "1500000000000000001") -> str:
        tweet_id = str(int(self.mentions[-1]["id"]) + 1) if self.mentions else "1785600000000000001"
        self.mentions.append(
            {
                "id": tweet_id,
                "text": f"@MCI_SA {text}",
                "author_id": author,
                "conversation_id": tweet_id,
                "created_at": "2024-05-01T09:15:00.000Z",
                "in_reply_to_user_id": OUR_ID,
                "edit_history_tweet_ids": [tweet_id],
            }
        )
        return tweet_id

    def dm(self, text: str, sender: str = "1500000000000000001") -> str:
        event_id = (
            str(int(self.dm_events[-1]["id"]) + 1) if self.dm_events else "1785700000000000001"
        )
        other = sender if sender != OUR_ID else "1500000000000000001"
        self.dm_events.append(
            {
                "id": event_id,
                "event_type": "MessageCreate",
                "text": text,
                "sender_id": sender,
                "dm_conversation_id": f"{OUR_ID}-{other}",
                "created_at": "2024-05-01T10:00:00.000Z",
            }
        )
        return event_id

    def headers(self) -> dict[str, str]:
        return {
            "x-rate-limit-limit": "450",
            "x-rate-limit-remaining": str(self.remaining),
            "x-rate-limit-reset": str(int(time.time()) + 900),
        }

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._gate])
        app.router.add_get("/2/users/{id}/mentions", self._mentions)
        app.router.add_get("/2/dm_events", self._dm_events)
        app.router.add_post("/2/tweets", self._tweet)
        app.router.add_post("/2/dm_conversations/{conv}/messages", self._dm)
        app.router.add_post("/2/dm_conversations/with/{user}/messages", self._dm)
        return app

    @web.middleware
    async def _gate(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.requests.append(request)
        if self.rate_limited_until is not None:
            headers = self.headers() | {
                "x-rate-limit-remaining": "0",
                "x-rate-limit-reset": str(self.rate_limited_until),
            }
            body = {"title": "Too Many Requests", "detail": "Too Many Requests", "status": 429}
            return web.json_response(body, status=429, headers=headers)
        if self.status_override is not None:
            body = {"title": "Unauthorized", "detail": "Unauthorized", "status": 401}
            return web.json_response(body, status=self.status_override)
        return await handler(request)

    def _page(self, items: list[dict], request: web.Request, id_key: str = "id") -> web.Response:
        size = int(request.query.get("max_results", "100"))
        offset = int(request.query.get("pagination_token", "p0")[1:])
        chunk = items[offset : offset + size]
        meta: dict[str, Any] = {"result_count": len(chunk)}
        if chunk:
            meta["newest_id"] = chunk[0][id_key]
            meta["oldest_id"] = chunk[-1][id_key]
        if offset + size < len(items):
            meta["next_token"] = f"p{offset + size}"
        body: dict[str, Any] = {"meta": meta}
        if chunk:
            body["data"] = chunk
            ids = {item.get("author_id") or item.get("sender_id") for item in chunk}
            # an item may name no author (withheld or deleted): it brings no user
            body["includes"] = {"users": [USERS[i] for i in sorted(ids - {None}) if i in USERS]}
        return web.json_response(body, headers=self.headers())

    async def _mentions(self, request: web.Request) -> web.Response:
        since = int(request.query.get("since_id", "0"))
        newest_first = [t for t in reversed(self.mentions) if int(t["id"]) > since]
        return self._page(newest_first, request)

    async def _dm_events(self, request: web.Request) -> web.Response:
        return self._page(list(reversed(self.dm_events)), request)

    async def _tweet(self, request: web.Request) -> web.Response:
        body = await request.json()
        tweet_id = str(next(self._ids))
        self.posted.append({"kind": "tweet", "id": tweet_id, **body})
        return web.json_response(
            {"data": {"id": tweet_id, "text": body["text"], "edit_history_tweet_ids": [tweet_id]}},
            status=201,
            headers=self.headers(),
        )

    async def _dm(self, request: web.Request) -> web.Response:
        body = await request.json()
        event_id = str(next(self._ids))
        where = request.match_info.get("conv") or f"with:{request.match_info.get('user')}"
        self.posted.append({"kind": "dm", "id": event_id, "conversation": where, **body})
        conv = request.match_info.get("conv") or f"{OUR_ID}-{request.match_info['user']}"
        return web.json_response(
            {"data": {"dm_conversation_id": conv, "dm_event_id": event_id}},
            status=201,
            headers=self.headers(),
        )


@pytest.fixture(name="fake_x")
async def fake_x_server() -> AsyncIterator[FakeX]:
    fake = FakeX()
    runner = web.AppRunner(fake.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    fake.base = f"http://127.0.0.1:{port}"
    try:
        yield fake
    finally:
        await runner.cleanup()
