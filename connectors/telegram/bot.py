"""The boundary with python-telegram-bot: building the Bot, the raw getUpdates call,
and the one place where Telegram's errors become ours."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import telegram
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Conflict,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
)
from telegram.request import HTTPXRequest

from connectors.telegram.config import TelegramConfig
from omnidesk.errors import AuthError, OmnideskError, PermanentError, TransientError


def make_bot(config: TelegramConfig, token: str) -> tuple[RawBot, list[HTTPXRequest]]:
    """A Bot on two connection pools (one for the long poll, one for sends and checks),
    and the pools, which the caller closes: `Bot.shutdown` skips them unless
    `Bot.initialize` ran, and that calls getMe, which must not stop a start-up."""
    timeout = config.request_timeout
    pools = [
        HTTPXRequest(
            connection_pool_size=size,
            connect_timeout=timeout,
            read_timeout=timeout,
            write_timeout=timeout,
            pool_timeout=timeout,
        )
        for size in (1, 8)
    ]
    bot = RawBot(
        token,
        base_url=config.base_url,
        base_file_url=config.base_file_url,
        get_updates_request=pools[0],
        request=pools[1],
    )
    return bot, pools


class RawBot(telegram.Bot):
    """A Bot that also returns updates as the JSON Telegram sent.

    `Bot.get_updates` parses every update into objects, and one it cannot parse fails the
    whole batch; we hand over the raw JSON instead (the normalizer and the quarantine
    judge it), through the same request layer `get_updates` uses.
    """

    async def raw_updates(
        self,
        offset: int | None,
        timeout: int,
        limit: int,
        allowed_updates: list[str] | None,
        read_timeout: float,
    ) -> list[dict[str, Any]]:
        data = {
            "offset": offset,
            "timeout": timeout,
            "limit": limit,
            "allowed_updates": allowed_updates,
        }
        result = await self._post("getUpdates", data, read_timeout=read_timeout + timeout)
        if not isinstance(result, list):
            raise PermanentError(f"getUpdates answered {type(result).__name__}, not a list")
        return result


def retry_after_seconds(exc: RetryAfter) -> float:
    """The server's wait, read without tripping PTB's int/timedelta deprecation warning."""
    value = getattr(exc, "_retry_after", None)
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    return float(exc.retry_after if not isinstance(exc.retry_after, dt.timedelta) else 0)


def convert(
    exc: TelegramError, config: TelegramConfig, token: str, *, sending: bool
) -> OmnideskError:
    """Telegram's error as ours. `sending`: a 403 then means this chat refused the bot
    (blocked, kicked), which is permanent for the reply but says nothing about the token."""
    detail = _scrub(str(exc), token)
    where = f"telegram {config.name}"
    if isinstance(exc, RetryAfter):
        seconds = retry_after_seconds(exc)
        return TransientError(f"{where}: flood control, retry in {seconds:g}s", seconds)
    if isinstance(exc, InvalidToken):
        return AuthError(f"{where}: the token in {config.token_env} was rejected ({detail})")
    if isinstance(exc, Forbidden):
        if sending:
            return PermanentError(f"{where}: forbidden: {detail}")
        return AuthError(f"{where}: forbidden with the token in {config.token_env}: {detail}")
    if isinstance(exc, ChatMigrated):
        return PermanentError(f"{where}: chat migrated to {exc.new_chat_id}")
    if isinstance(exc, BadRequest):  # a NetworkError subclass in PTB: test it first
        return PermanentError(f"{where}: bad request: {detail}")
    if isinstance(exc, Conflict):  # another poller, or a webhook is set
        return TransientError(f"{where}: conflict: {detail}")
    if isinstance(exc, NetworkError):  # TimedOut included
        return TransientError(f"{where}: {type(exc).__name__}: {detail}")
    return TransientError(f"{where}: {type(exc).__name__}: {detail}")


@contextlib.asynccontextmanager
async def boundary(
    config: TelegramConfig, token: str, *, sending: bool = False
) -> AsyncIterator[None]:
    """Run a Bot call with Telegram's errors converted to ours."""
    try:
        yield
    except TelegramError as exc:
        raise convert(exc, config, token, sending=sending) from None


def _scrub(text: str, token: str) -> str:
    """PTB puts the token in some messages (`The token ... was rejected`); never log it."""
    return text.replace(token, "***") if token else text
