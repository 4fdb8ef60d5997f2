"""The Telegram connector: one bot, receiving by long polling or a webhook, replying with
sendMessage.

Polling: getUpdates from the offset kept in the CursorStore; the batch goes to the sink,
and only then does the offset move past it (Telegram forgets updates below the offset
we ask with next, so a failed hand-over means the same updates come again). Webhook: the
daemon's HTTP server takes the POSTs (`add_routes`, see `webhook.py`) and hands them to
the sink `start` was given; no cursor and no lease then.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from collections import OrderedDict
from datetime import UTC, datetime
from typing import Any, ClassVar

from aiohttp import web
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, ReplyParameters
from telegram.error import RetryAfter, TelegramError
from telegram.request import HTTPXRequest

from connectors.base import Connector, Sink
from connectors.state import CursorStore, Lease
from connectors.telegram.bot import RawBot, boundary, convert, make_bot, retry_after_seconds
from connectors.telegram.config import TelegramConfig
from connectors.telegram.split import split_text
from connectors.telegram.webhook import webhook_routes
from omnidesk.errors import PermanentError, TooLarge, TransientError
from omnidesk.model import Channel, Outbound, RawPayload, Receipt, utcnow

log = logging.getLogger("omnidesk.connectors.telegram")

MAX_RETRIES_IN_SEND = 5  # RetryAfter answers slept through inside one send
_PROGRESS_KEPT = 1000  # outbounds whose sent pieces are remembered for a resumed send


class TelegramConnector(Connector):
    kind: ClassVar[str] = "telegram"
    config_model = TelegramConfig

    def __init__(
        self,
        config: TelegramConfig,
        cursors: CursorStore | None = None,
        lease: Lease | None = None,
    ) -> None:
        super().__init__(config.name, lease=lease if config.mode == "polling" else None)
        self.config = config
        self.account = config.name  # the account tickets and replies name
        self.cursors = cursors
        self.bot_username: str | None = None
        self._token = ""
        self._secret: str | None = None
        self._bot: RawBot | None = None
        self._pools: list[HTTPXRequest] = []
        # outbound id -> message ids already sent, so a retried long reply resumes
        self._progress: OrderedDict[str, list[int]] = OrderedDict()

    def attach(self, cursors: CursorStore, lease: Lease | None = None) -> None:
        """Give the connector its Redis state (the daemon does, once it has a store)."""
        self.cursors = cursors
        if lease is not None and self.config.mode == "polling":
            self.lease = lease

    # ------------------------------------------------------------ lifecycle

    async def initialize(self) -> None:
        """Read the secrets now, so a missing variable stops the start-up with its name."""
        self._token = self.config.token()
        self._secret = self.config.secret_token()
        if self._bot is None:
            self._bot, self._pools = make_bot(self.config, self._token)

    def add_routes(self, app: web.Application) -> None:
        """The daemon's route hook: POST <webhook_path> for a bot in webhook mode."""
        if self.config.mode == "webhook":
            webhook_routes(self, self._webhook_handover)(app)

    async def _webhook_handover(self, items: list[RawPayload]) -> None:
        sink = self.sink
        if sink is None:
            raise TransientError(f"telegram {self.name}: not receiving")
        await sink(items)

    async def shutdown(self) -> None:
        pools, self._pools, self._bot = self._pools, [], None
        for pool in pools:
            await pool.shutdown()

    @property
    def bot(self) -> RawBot:
        if self._bot is None:
            raise PermanentError(f"telegram {self.name}: not initialized")
        return self._bot

    async def download(self, file_id: str, max_bytes: int) -> bytes:
        """A file a customer sent (its file id from the update), through getFile and the
        file URL: an agent opens it. TooLarge past `max_bytes` (the Bot API serves up to
        20 MB), checked on the size getFile reports before anything is downloaded."""
        async with boundary(self.config, self._token):
            file = await self.bot.get_file(file_id)
            if file.file_size and file.file_size > max_bytes:
                raise TooLarge(f"the file is {file.file_size} bytes, over {max_bytes}")
            data = bytes(await file.download_as_bytearray())
        if len(data) > max_bytes:
            raise TooLarge(f"the file is {len(data)} bytes, over {max_bytes}")
        return data

    async def check(self) -> None:
        """getMe once; a rejected token is an AuthError naming token_env."""
        if self._bot is None:
            await self.initialize()
        async with boundary(self.config, self._token):
            me = await self.bot.get_me()
        self.bot_username = me.username

    # ------------------------------------------------------------ receiving

    async def run_once(self, sink: Sink) -> float | None:
        if self.config.mode == "webhook":
            return 3600.0  # updates come through the HTTP route; nothing to poll
        if self.cursors is None:
            raise PermanentError(f"telegram {self.name}: no cursor store attached")
        if self._bot is None:
            await self.initialize()
        cursor = await self.cursors.get(self.name) or {}
        offset = cursor.get("offset")
        updates = await self._poll(offset)
        if updates is None:  # stopped while waiting
            return None
        self.status.last_fetch = utcnow()
        if not updates:
            return 1.0 if self.config.poll_timeout == 0 else None
        items = [self.raw_payload(update) for update in updates]
        self.status.received += len(items)
        await sink(items)  # raises on failure: the offset stays, the same updates come again
        self.status.handed_over += len(items)
        ids = [u["update_id"] for u in updates if isinstance(u.get("update_id"), int)]
        if ids:
            await self.cursors.set(self.name, {"offset": max(ids) + 1})
        return None

    async def _poll(self, offset: int | None) -> list[dict[str, Any]] | None:
        """getUpdates, abandoned at once when the connector is stopped (None then)."""
        poll = asyncio.ensure_future(self._get_updates(offset))
        stopped = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait({poll, stopped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()
            if not poll.done():
                poll.cancel()
                await asyncio.gather(poll, return_exceptions=True)
        return poll.result() if not poll.cancelled() else None

    async def _get_updates(self, offset: int | None) -> list[dict[str, Any]]:
        config = self.config
        async with boundary(config, self._token):
            return await self.bot.raw_updates(
                offset,
                timeout=config.poll_timeout,
                limit=config.limit,
                allowed_updates=config.allowed_updates,
                read_timeout=config.request_timeout,
            )

    def raw_payload(self, update: dict[str, Any] | bytes) -> RawPayload:
        """One update as the sink takes it: the JSON bytes, labelled with the update id."""
        if isinstance(update, bytes):
            data = update
            try:
                update_id = json.loads(data).get("update_id", "?")
            except (ValueError, AttributeError):
                update_id = "?"
        else:
            data = json.dumps(update, ensure_ascii=False, separators=(",", ":")).encode()
            update_id = update.get("update_id", "?")
        return RawPayload(
            channel=Channel.TELEGRAM,
            account=self.account,
            payload=data,
            received_at=datetime.now(UTC),
            source=f"telegram:update:{update_id}",
        )

    def secret_matches(self, header: str | None) -> bool:
        """The webhook's X-Telegram-Bot-Api-Secret-Token, compared in constant time."""
        if not self._secret or header is None:
            return False
        return hmac.compare_digest(header.encode(), self._secret.encode())

    # ------------------------------------------------------------ sending

    async def send(self, reply: Outbound) -> Receipt:
        """sendMessage to the ticket's chat, replying to the customer's message; a long text
        goes as several messages, the buttons (CSAT) under the last one."""
        chat_id = _chat_id(reply)
        reply_to = _message_id(reply.in_reply_to)
        markup = _keyboard(reply.meta.get("buttons"))
        if not reply.text.strip():
            raise PermanentError(f"telegram {self.name}: empty reply text")
        if self._bot is None:
            await self.initialize()
        pieces = split_text(reply.text)
        sent = self._progress.setdefault(reply.id, [])
        self._progress.move_to_end(reply.id)
        while len(self._progress) > _PROGRESS_KEPT:
            self._progress.popitem(last=False)
        for index, piece in enumerate(pieces):
            if index < len(sent):
                continue  # sent by an earlier attempt of this delivery
            message = await self._send_piece(
                chat_id,
                piece,
                reply_to=reply_to if index == 0 else None,
                markup=markup if index == len(pieces) - 1 else None,
            )
            sent.append(message.message_id)
        self._progress.pop(reply.id, None)
        return Receipt(
            outbound_id=reply.id,
            status="sent",
            external_id=f"{chat_id}:{sent[0]}",
            detail="message_ids=" + ",".join(str(i) for i in sent),
        )

    async def _send_piece(
        self,
        chat_id: int | str,
        text: str,
        *,
        reply_to: int | None,
        markup: InlineKeyboardMarkup | None,
    ) -> Message:
        """One sendMessage; a short RetryAfter is slept through here, a long one is raised
        as TransientError(retry_after) for the deliver actor to wait out."""
        params = ReplyParameters(reply_to, allow_sending_without_reply=True) if reply_to else None
        for attempt in range(MAX_RETRIES_IN_SEND + 1):
            try:
                return await self.bot.send_message(
                    chat_id, text, reply_parameters=params, reply_markup=markup
                )
            except RetryAfter as exc:
                wait = retry_after_seconds(exc)
                if wait > self.config.max_retry_wait or attempt == MAX_RETRIES_IN_SEND:
                    raise convert(exc, self.config, self._token, sending=True) from None
                log.warning("telegram %s: flood control, waiting %.1fs", self.name, wait)
                await asyncio.sleep(wait)
            except TelegramError as exc:
                raise convert(exc, self.config, self._token, sending=True) from None
        raise TransientError(f"telegram {self.name}: flood control did not end")  # unreachable


def _chat_id(reply: Outbound) -> int | str:
    """The chat: meta["chat_id"], else the chat part of a `<chat>:<message>` in_reply_to."""
    value = reply.meta.get("chat_id") or ""
    if not value and reply.in_reply_to and ":" in reply.in_reply_to:
        value = reply.in_reply_to.split(":", 1)[0]
    if not value:
        raise PermanentError(f"outbound {reply.id}: no telegram chat_id in meta")
    value = value.strip()
    if value.lstrip("-").isdigit():
        return int(value)
    if value.startswith("@"):
        return value
    raise PermanentError(f"outbound {reply.id}: chat_id {value[:40]!r} is not a chat id")


def _message_id(in_reply_to: str | None) -> int | None:
    """The message to reply to: a bare id, or the normalizer's `<chat>:<message>[:edit:..]`."""
    if not in_reply_to:
        return None
    parts = in_reply_to.split(":")
    candidate = parts[1] if len(parts) >= 2 else parts[0]
    return int(candidate) if candidate.isdigit() else None


def _keyboard(buttons: str | None) -> InlineKeyboardMarkup | None:
    """meta["buttons"]: JSON `[[label, callback_data], ...]` (one row), or a list of such
    rows; e.g. the 1-5 satisfaction rating."""
    if not buttons:
        return None
    try:
        data = json.loads(buttons)
    except ValueError:
        raise PermanentError("meta.buttons is not JSON") from None
    if not isinstance(data, list) or not data:
        raise PermanentError("meta.buttons must be a non-empty list of [label, callback_data]")
    rows = data if all(_is_row(r) for r in data) else [data]
    keyboard: list[list[InlineKeyboardButton]] = []
    for row in rows:
        out = []
        for pair in row:
            if not (
                isinstance(pair, list)
                and len(pair) == 2
                and all(isinstance(x, str) and x for x in pair)
            ):
                raise PermanentError(f"meta.buttons: {pair!r} is not [label, callback_data]")
            label, data_ = pair
            if len(data_.encode()) > 64:
                raise PermanentError(f"meta.buttons: callback_data {data_[:20]!r} over 64 bytes")
            out.append(InlineKeyboardButton(label, callback_data=data_))
        keyboard.append(out)
    return InlineKeyboardMarkup(keyboard)


def _is_row(value: object) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(p, list) for p in value)
