"""tweepy's AsyncClient, pointed at `api_base`, with X errors turned into ours.

tweepy builds every URL as "https://api.twitter.com" + route inside `request()`. We give it
a session whose `request` swaps that host for `api_base`, so the real request layer (OAuth
signing, status-code → exception mapping) runs unchanged against a local server in tests.
Responses come back raw (`return_type=aiohttp.ClientResponse`): the body is handed over as
X sent it, and the `x-rate-limit-*` headers are read from each one.
"""

from __future__ import annotations

import json
import time
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import tweepy.errors
from tweepy.asynchronous import AsyncClient
from yarl import URL

from connectors.twitter.config import Credentials
from omnidesk.errors import AuthError, PermanentError, TransientError

X_HOST = "https://api.twitter.com"
MENTION_TWEET_FIELDS = ["conversation_id", "created_at", "entities", "in_reply_to_user_id", "lang"]
MENTION_EXPANSIONS = ["author_id", "referenced_tweets.id", "attachments.media_keys"]
DM_EVENT_FIELDS = [
    "id",
    "text",
    "event_type",
    "created_at",
    "dm_conversation_id",
    "sender_id",
    "participant_ids",
    "referenced_tweets",
    "attachments",
    "entities",
]
USER_FIELDS = ["username", "name"]


class RebasedSession:
    """The part of aiohttp.ClientSession tweepy uses (`request`, `close`), with X's host
    replaced by `base`. Signed URLs keep their signature: OAuth 1.0a signs the X URL.

    tweepy reads the body inside `async with` and returns the released response, whose
    body aiohttp no longer gives out; `bodies` keeps it for us, per response."""

    def __init__(self, base: str, timeout: float) -> None:
        self.base = base.rstrip("/")
        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout))
        self.bodies: weakref.WeakKeyDictionary[aiohttp.ClientResponse, bytes] = (
            weakref.WeakKeyDictionary()
        )

    def request(self, method: str, url: str | URL, **kwargs: Any) -> _KeepBody:
        text = str(url)
        if self.base != X_HOST and text.startswith(X_HOST):
            rebased = self.base + text[len(X_HOST) :]
            url = URL(rebased, encoded=True) if isinstance(url, URL) else rebased
        return _KeepBody(self.session.request(method, url, **kwargs), self.bodies)

    async def close(self) -> None:
        await self.session.close()


class _KeepBody:
    """`session.request(...)` as tweepy uses it, keeping the body read inside the block."""

    def __init__(self, request: Any, bodies: weakref.WeakKeyDictionary) -> None:
        self.request = request
        self.bodies = bodies
        self.response: aiohttp.ClientResponse | None = None

    async def __aenter__(self) -> aiohttp.ClientResponse:
        self.response = await self.request.__aenter__()
        return self.response

    async def __aexit__(self, *exc: Any) -> None:
        response = self.response
        if response is not None and exc[0] is None:
            self.bodies[response] = await response.read()
        await self.request.__aexit__(*exc)


@dataclass
class Page:
    """One response: the raw body, its JSON, and the rate-limit headers that came with it."""

    body: bytes
    data: dict[str, Any]
    remaining: int | None = None
    reset: int | None = None  # unix time the window resets

    @property
    def items(self) -> list[dict[str, Any]]:
        items = self.data.get("data") or []
        return items if isinstance(items, list) else [items]

    @property
    def meta(self) -> dict[str, Any]:
        return self.data.get("meta") or {}


@dataclass
class RateLimit:
    remaining: int | None = None
    reset: int | None = None


@dataclass
class XClient:
    """The four calls the connector makes, each returning a Page or raising our errors."""

    api_base: str
    user_id: str
    credentials: Credentials
    timeout: float = 30.0
    limits: dict[str, RateLimit] = field(default_factory=dict)
    _client: AsyncClient | None = None
    _session: RebasedSession | None = None

    def client(self) -> AsyncClient:
        if self._client is None:
            c = self.credentials
            self._client = AsyncClient(
                bearer_token=c.bearer_token,
                consumer_key=c.consumer_key,
                consumer_secret=c.consumer_secret,
                access_token=c.access_token,
                access_token_secret=c.access_token_secret,
                return_type=aiohttp.ClientResponse,
            )
            self._session = RebasedSession(self.api_base, self.timeout)
            self._client.session = self._session
        return self._client

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
        self._client = self._session = None

    async def mentions(
        self, since_id: str | None, pagination_token: str | None, max_results: int
    ) -> Page:
        client = self.client()
        return await self._call(
            "mentions",
            lambda: client.get_users_mentions(
                self.user_id,
                since_id=since_id,
                pagination_token=pagination_token,
                max_results=max_results,
                expansions=MENTION_EXPANSIONS,
                tweet_fields=MENTION_TWEET_FIELDS,
                user_fields=USER_FIELDS,
                media_fields=["type", "url"],
                user_auth=self.credentials.user_context,
            ),
        )

    async def dm_events(self, pagination_token: str | None, max_results: int) -> Page:
        client = self.client()
        return await self._call(
            "dm_events",
            lambda: client.get_direct_message_events(
                pagination_token=pagination_token,
                max_results=max_results,
                event_types="MessageCreate",
                dm_event_fields=DM_EVENT_FIELDS,
                expansions=["sender_id", "attachments.media_keys"],
                user_fields=USER_FIELDS,
                media_fields=["type", "url"],
                user_auth=self.credentials.user_context,
            ),
        )

    async def create_tweet(self, text: str, in_reply_to_tweet_id: str) -> Page:
        client = self.client()
        return await self._call(
            "create_tweet",
            lambda: client.create_tweet(
                text=text,
                in_reply_to_tweet_id=in_reply_to_tweet_id,
                user_auth=self.credentials.user_context,
            ),
        )

    async def create_dm(
        self, text: str, dm_conversation_id: str | None, participant_id: str | None
    ) -> Page:
        client = self.client()
        return await self._call(
            "create_dm",
            lambda: client.create_direct_message(
                dm_conversation_id=dm_conversation_id,
                participant_id=None if dm_conversation_id else participant_id,
                text=text,
                user_auth=self.credentials.user_context,
            ),
        )

    async def _call(self, endpoint: str, call: Callable[[], Awaitable[Any]]) -> Page:
        """Run one tweepy call; X's errors become ours here, at the boundary."""
        try:
            response: aiohttp.ClientResponse = await call()
            body = self._session.bodies.pop(response, b"") if self._session else b""
        except tweepy.errors.TooManyRequests as exc:
            reset = exc.reset_time
            self.limits[endpoint] = RateLimit(0, reset)
            wait = max(1.0, reset - time.time()) if reset else None
            raise RateLimited(f"X {endpoint}: rate limited (429)", wait, reset) from None
        except (tweepy.errors.Unauthorized, tweepy.errors.Forbidden) as exc:
            raise AuthError(f"X {endpoint}: {_one_line(exc)}") from None
        except tweepy.errors.TwitterServerError as exc:
            raise TransientError(f"X {endpoint}: {_one_line(exc)}") from None
        except tweepy.errors.BadRequest as exc:
            raise BadRequest(f"X {endpoint}: {_one_line(exc)}") from None
        except tweepy.errors.HTTPException as exc:
            raise PermanentError(f"X {endpoint}: {_one_line(exc)}") from None
        except aiohttp.ClientResponseError as exc:  # an error body that is not JSON
            raise _by_status(endpoint, exc.status, exc.message) from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TransientError(f"X {endpoint}: {type(exc).__name__}: {exc}") from None
        remaining = _int_header(response, "x-rate-limit-remaining")
        reset = _int_header(response, "x-rate-limit-reset")
        self.limits[endpoint] = RateLimit(remaining, reset)
        try:
            data = json.loads(body)
        except ValueError:
            raise TransientError(f"X {endpoint}: the response is not JSON") from None
        if not isinstance(data, dict):
            raise TransientError(f"X {endpoint}: the response is not a JSON object")
        return Page(body=body, data=data, remaining=remaining, reset=reset)


class RateLimited(TransientError):
    """429: wait until the window resets (`reset`, unix time)."""

    def __init__(self, message: str, retry_after: float | None, reset: int | None) -> None:
        super().__init__(message, retry_after=retry_after)
        self.reset = reset


class BadRequest(PermanentError):
    """400: e.g. a stale pagination token."""


def _by_status(endpoint: str, status: int, message: str) -> Exception:
    text = f"X {endpoint}: HTTP {status} {message}"
    if status in (401, 403):
        return AuthError(text)
    if status == 429 or status >= 500:
        return TransientError(text)
    return PermanentError(text)


def _int_header(response: aiohttp.ClientResponse, name: str) -> int | None:
    value = response.headers.get(name)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())
