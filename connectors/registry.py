"""One entry point for every channel's normalizer: `normalize(channel, payload, account=...)`
always returns a list of results, so callers (intake, `omnidesk route`, the bench) need not
know which channels yield one message and which yield a batch.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from omnidesk.errors import PayloadError, PermanentError
from omnidesk.model import Channel, Inbound, Skipped

Result = Inbound | Skipped
Normalizer = Callable[..., Any]  # (payload, *, account) -> Result | list[Result]

_registry: dict[Channel, Normalizer | str] = {}


def register(channel: Channel, fn: Normalizer | str) -> None:
    """Register a normalizer, or a lazy `"module:function"` imported on first use."""
    _registry[channel] = fn


def normalizer(channel: Channel) -> Normalizer:
    """The channel's normalizer; PermanentError when it is not registered or cannot load."""
    fn = _registry.get(channel)
    if fn is None:
        raise PermanentError(f"no normalizer registered for channel {channel!s}")
    if isinstance(fn, str):
        module, _, name = fn.partition(":")
        try:
            fn = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError) as exc:
            message = f"{channel!s} normalizer {module}:{name} unavailable: {exc}"
            raise PermanentError(message) from None
        _registry[channel] = fn
    return fn


def normalize(
    channel: Channel | str, payload: bytes | str | dict, *, account: str = "default"
) -> list[Result]:
    """Normalize one raw payload of `channel`; one result per message or receipt it holds."""
    try:
        channel = Channel(channel)
    except ValueError:
        raise PermanentError(f"unknown channel {channel!r}") from None
    if channel == Channel.EMAIL and not isinstance(payload, bytes | bytearray | memoryview):
        if not isinstance(payload, str):
            raise PayloadError("email: payload must be RFC 822 bytes", reason="not_email")
        payload = payload.encode("utf-8", "surrogateescape")
    result = normalizer(channel)(payload, account=account)
    return result if isinstance(result, list) else [result]


register(Channel.TELEGRAM, "connectors.telegram.normalize:normalize")
register(Channel.TWITTER, "connectors.twitter.normalize:normalize")
register(Channel.WHATSAPP, "connectors.whatsapp.normalize:normalize")
register(Channel.WEB, "connectors.web.normalize:normalize")
register(Channel.EMAIL, "connectors.email.normalize:normalize")  # another branch provides it
