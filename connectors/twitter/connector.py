"""The X connector: polls the mentions timeline and DM events of one account, and replies
as the ticket came in (a reply tweet, a thread when long, or a DM).

Cursor per stream, kept in the CursorStore: `{"since_id", "next_token", "newest"}`.
`since_id` advances to the newest id of a poll only after every page of that poll has been
handed over; a poll that spans pages stores its pagination token after each page, so a
failed hand-over fetches the same page again. The DM events endpoint has no since_id:
pages are read newest first and stop at the first event not newer than the cursor.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

from connectors.base import Backoff, Connector, ConnectorStatus, Sink, reconnect_loop
from connectors.state import CursorStore, Lease
from connectors.twitter.client import BadRequest, Page, RateLimited, XClient
from connectors.twitter.config import Stream, TwitterConfig
from connectors.twitter.thread import split_plain, split_thread
from omnidesk.errors import PermanentError
from omnidesk.model import Channel, IdentityKind, Outbound, RawPayload, Receipt, utcnow

log = logging.getLogger("omnidesk.connectors.twitter")

DM_LIMIT = 10_000
WINDOW = 15 * 60.0  # X's rate-limit window; a 429 is waited out until its reset


@dataclass
class TwitterStatus(ConnectorStatus):
    """ConnectorStatus plus the rate-limit windows, under `details` in as_dict()."""

    rate_limit_reset: datetime | None = None  # set while waiting out a 429
    rate_limits: dict[str, dict[str, Any]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        out = super().as_dict()
        reset = self.rate_limit_reset
        out["details"] = {
            "rate_limit_reset": reset.isoformat() if reset else None,
            "rate_limits": dict(self.rate_limits),
        }
        return out


class MemoryCursors:
    """Used when no CursorStore is given: the cursor lives as long as the process."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    async def get(self, name: str) -> Any | None:
        return self.values.get(name)

    async def set(self, name: str, value: Any) -> None:
        self.values[name] = value


class TwitterConnector(Connector):
    kind: ClassVar[str] = "twitter"
    config_model = TwitterConfig

    def __init__(
        self,
        config: TwitterConfig,
        cursors: CursorStore | MemoryCursors | None = None,
        lease: Lease | None = None,
    ) -> None:
        super().__init__(config.name, lease=lease)
        self.config = config
        self.status: TwitterStatus = TwitterStatus(name=config.name, kind=self.kind)
        if cursors is None:
            log.warning("%s: no cursor store given; since_id is kept in memory only", self.name)
        self.cursors = cursors or MemoryCursors()
        self.client: XClient | None = None

    # ------------------------------------------------------------ lifecycle

    async def initialize(self) -> None:
        """Read the secrets now, so a missing variable stops the start-up with its name."""
        if self.client is None:
            self.client = XClient(
                self.config.api_base,
                self.config.user_id,
                self.config.credentials(),
                timeout=self.config.request_timeout,
            )

    async def start(self, sink: Sink) -> None:
        """The shared loop, with a backoff cap long enough to sleep until a window resets."""
        await reconnect_loop(self, sink, backoff=Backoff(cap=WINDOW + 60.0))

    async def shutdown(self) -> None:
        if self.client is not None:
            await self.client.close()

    async def check(self) -> None:
        await self.initialize()
        assert self.client is not None
        for stream in self.config.read:
            await self._fetch(stream, None, None)

    # ------------------------------------------------------------ receiving

    async def run_once(self, sink: Sink) -> float | None:
        await self.initialize()
        wait = self.config.poll_interval
        for stream in self.config.read:
            if self.stopping:
                break
            try:
                more = await self._poll(stream, sink)
            except RateLimited as exc:
                if exc.reset:
                    self.status.rate_limit_reset = datetime.fromtimestamp(exc.reset, UTC)
                self._note_limits()
                raise
            self._note_limits()
            if more:
                wait = 0.0  # pages left (cap reached): go on at once
            wait = max(wait, self._window_wait(stream))
        self.status.rate_limit_reset = None
        return wait

    async def _poll(self, stream: Stream, sink: Sink) -> bool:
        """Read up to max_pages_per_run pages of one stream; True when pages are left."""
        cursor: dict[str, Any] = await self.cursors.get(self.name) or {}
        state: dict[str, Any] = dict(cursor.get(stream) or {})
        since: str | None = state.get("since_id")
        token: str | None = state.get("next_token")
        newest: str | None = state.get("newest")
        for _ in range(self.config.max_pages_per_run):
            try:
                page = await self._fetch(stream, since, token)
            except BadRequest:
                if token is None:
                    raise
                log.warning("%s: %s pagination token refused; restarting", self.name, stream)
                token = newest = None
                continue
            items = page.items
            if token is None:  # the first page of a poll holds the newest item
                newest = _newest(items) or newest
            fresh = self._fresh(stream, items, since)
            if fresh:
                await self._hand_over(stream, page, fresh, sink)
            token = page.meta.get("next_token")
            reached_cursor = stream == "dm_events" and _older_than(items, since)
            if token and not reached_cursor:
                state = {"since_id": since, "next_token": token, "newest": newest}
                await self._save(stream, state)
                if page.remaining == 0:
                    return False  # the window is spent; _window_wait sleeps until reset
                continue
            await self._save(stream, {"since_id": _max_id(since, newest)})
            return False
        return True

    async def _fetch(self, stream: Stream, since: str | None, token: str | None) -> Page:
        assert self.client is not None
        limit = self.config.max_results
        if stream == "mentions":
            return await self.client.mentions(since, token, limit)
        return await self.client.dm_events(token, limit)

    def _fresh(self, stream: Stream, items: list[dict], since: str | None) -> list[dict]:
        """The items to hand over: DM events newer than the cursor and not sent by us."""
        if stream == "mentions":
            return items
        floor = int(since) if since and since.isdigit() else -1
        return [
            item
            for item in items
            if _int(item.get("id")) > floor and str(item.get("sender_id")) != self.config.user_id
        ]

    async def _hand_over(self, stream: Stream, page: Page, items: list[dict], sink: Sink) -> None:
        body = page.body
        if len(items) != len(page.items):  # keep X's shape, minus what is not for us
            body = json.dumps({**page.data, "data": items}, ensure_ascii=False).encode()
        raw = RawPayload(
            channel=Channel.TWITTER,
            account=self.name,
            payload=body,
            received_at=utcnow(),
            source=f"x:{stream}:{_newest(items)}",
        )
        self.status.received += len(items)
        await sink([raw])  # raises on failure: the cursor below is not written
        self.status.handed_over += len(items)

    async def _save(self, stream: Stream, state: dict[str, Any]) -> None:
        cursor: dict[str, Any] = await self.cursors.get(self.name) or {}
        cursor[stream] = {k: v for k, v in state.items() if v is not None}
        await self.cursors.set(self.name, cursor)

    def _window_wait(self, stream: Stream) -> float:
        """Seconds until the rate-limit window resets when it is spent, else 0."""
        assert self.client is not None
        limit = self.client.limits.get(stream)
        if limit is None or limit.remaining != 0 or limit.reset is None:
            return 0.0
        return max(0.0, limit.reset - time.time())

    def _note_limits(self) -> None:
        assert self.client is not None
        self.status.rate_limits = {
            name: {
                "remaining": limit.remaining,
                "reset": datetime.fromtimestamp(limit.reset, UTC).isoformat()
                if limit.reset
                else None,
            }
            for name, limit in self.client.limits.items()
        }

    # ------------------------------------------------------------ replying

    async def send(self, reply: Outbound) -> Receipt:
        """A reply tweet (a thread when long) to a mention, a DM to a DM."""
        await self.initialize()
        kind = reply.meta.get("kind")
        if kind == "mention":
            return await self._reply_tweet(reply)
        if kind == "dm":
            return await self._reply_dm(reply)
        raise PermanentError(
            f"X reply {reply.id}: meta.kind must be 'mention' or 'dm' (got {kind!r})"
        )

    async def _reply_tweet(self, reply: Outbound) -> Receipt:
        assert self.client is not None
        target = reply.meta.get("tweet_id") or (reply.in_reply_to or "").removeprefix("tweet:")
        if not target.isdigit():
            raise PermanentError(f"X reply {reply.id}: no tweet to reply to (meta.tweet_id)")
        parts = split_thread(reply.text)
        if not parts:
            raise PermanentError(f"X reply {reply.id}: empty text")
        posted: list[str] = []
        for part in parts:
            try:
                page = await self.client.create_tweet(part, in_reply_to_tweet_id=target)
            except Exception as exc:
                if not posted:
                    raise
                return Receipt(  # retrying would post the first parts again
                    outbound_id=reply.id,
                    status="failed",
                    external_id=posted[0],
                    detail=f"thread cut after {len(posted)} of {len(parts)} posts: {exc}",
                )
            target = str((page.data.get("data") or {}).get("id", ""))
            posted.append(target)
        detail = f"thread of {len(posted)} posts: {','.join(posted)}" if len(posted) > 1 else ""
        return Receipt(outbound_id=reply.id, status="sent", external_id=posted[0], detail=detail)

    async def _reply_dm(self, reply: Outbound) -> Receipt:
        assert self.client is not None
        conversation = reply.meta.get("dm_conversation_id")
        participant = reply.meta.get("sender_id") or next(
            (i.value for i in reply.to if i.kind == IdentityKind.TWITTER), None
        )
        if not conversation and not participant:
            raise PermanentError(f"X reply {reply.id}: no DM conversation or participant")
        ids: list[str] = []
        for part in split_plain(reply.text, DM_LIMIT):
            page = await self.client.create_dm(part, conversation, participant)
            ids.append(str((page.data.get("data") or {}).get("dm_event_id", "")))
        if not ids:
            raise PermanentError(f"X reply {reply.id}: empty text")
        return Receipt(outbound_id=reply.id, status="sent", external_id=ids[0])


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return -1


def _older_than(items: list[dict], since: str | None) -> bool:
    """True when some item is not newer than the cursor: the rest of the pages are older."""
    floor = _int(since)
    return floor >= 0 and any(_int(item.get("id")) <= floor for item in items)


def _newest(items: list[dict]) -> str | None:
    ids = [str(item.get("id")) for item in items if _int(item.get("id")) >= 0]
    return max(ids, key=int) if ids else None


def _max_id(a: str | None, b: str | None) -> str | None:
    values = [v for v in (a, b) if v and v.isdigit()]
    return max(values, key=int) if values else None
