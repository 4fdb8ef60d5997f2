"""One entry point for every channel's normalizer: `normalize(channel, payload, account=...)`
always returns a list of results, so callers (intake, `omnidesk route`, the bench) need not
know which channels yield one message and which yield a batch.

Which clock a message's time (`Inbound.received_at`: the ticket's creation time, its queue
order and its SLA start) comes from:
- Telegram, X and WhatsApp stamp each message on their own servers; that stamp is kept.
- An email's Date: and a web form's submitted_at are written by the sender, who can put any
  time there. For these channels the time is when the payload reached us, which the
  connector records in `RawPayload.received_at` (IMAP: the server's INTERNALDATE; the drop
  folder: the file's mtime; the web endpoint: the POST) and intake passes in here. The
  sender's time is kept as `Inbound.sent_at`, a fact for agents, never a clock.
A receive time later than now (a skewed clock, a touched file) is taken as now.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from importlib.metadata import entry_points
from typing import Any

from omnidesk.errors import PayloadError, PermanentError
from omnidesk.model import Channel, Inbound, Skipped, utcnow

Result = Inbound | Skipped
Normalizer = Callable[..., Any]  # (payload, *, account) -> Result | list[Result]

GROUP = "omnidesk.normalizers"  # entry point name: the channel; value: "module:function"
_registry: dict[Channel, Normalizer] = {}


def register(channel: Channel, fn: Normalizer) -> None:
    """Use `fn` for the channel instead of its installed entry point (tests, embedding)."""
    _registry[channel] = fn


def normalizer(channel: Channel) -> Normalizer:
    """The channel's normalizer (the `omnidesk.normalizers` entry point named after it,
    loaded on first use); PermanentError when none is installed or it cannot load."""
    fn = _registry.get(channel)
    if fn is not None:
        return fn
    points = entry_points(group=GROUP, name=channel.value)
    if not points:
        raise PermanentError(f"no normalizer registered for channel {channel!s}")
    if len(points) > 1:
        values = ", ".join(sorted(p.value for p in points))
        raise PermanentError(f"{channel!s}: more than one normalizer installed ({values})")
    (point,) = points
    try:
        fn = point.load()
    except (ImportError, AttributeError) as exc:
        raise PermanentError(f"{channel!s} normalizer {point.value} unavailable: {exc}") from None
    _registry[channel] = fn
    return fn


# Channels whose payload carries only the sender's own idea of the time.
SENDER_DATED = frozenset({Channel.EMAIL, Channel.WEB})


def normalize(
    channel: Channel | str,
    payload: bytes | str | dict,
    *,
    account: str = "default",
    received_at: datetime | None = None,
) -> list[Result]:
    """Normalize one raw payload of `channel`; one result per message or receipt it holds.
    `received_at` is when it reached us (now when not given), the time of sender-dated
    channels' messages."""
    try:
        channel = Channel(channel)
    except ValueError:
        raise PermanentError(f"unknown channel {channel!r}") from None
    if channel == Channel.EMAIL and not isinstance(payload, bytes | bytearray | memoryview):
        if not isinstance(payload, str):
            raise PayloadError("email: payload must be RFC 822 bytes", reason="not_email")
        payload = payload.encode("utf-8", "surrogateescape")
    if channel in SENDER_DATED:
        now = utcnow()
        at = now if received_at is None or received_at > now else received_at
        result = normalizer(channel)(payload, account=account, received_at=at)
    else:
        result = normalizer(channel)(payload, account=account)
    return result if isinstance(result, list) else [result]
