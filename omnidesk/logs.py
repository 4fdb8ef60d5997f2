"""Structured logs: one JSON line per event, with ticket id and connector when known.

Secrets never reach a log line: values of the environment variables the config
names as secrets are replaced by `***` in every record. Customer payloads never do either:
dramatiq shows a message as ``actor(args)``, for `ingest` the whole base64 batch, so its
records show ``actor#message_id`` instead (`hide_message_bodies`).
"""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime
from typing import Any

from omnidesk.text import mask_pii

_SECRETS: set[str] = set()
_EXTRA_KEYS = ("ticket", "connector", "queue", "channel", "event", "reason", "count")


_MIN_SECRET = 4  # a shorter value would mask ordinary words (and cannot be told from them)
_warned_short: set[str] = set()


def register_secret_env(*names: str) -> None:
    """Mask the values of these environment variables in every log line."""
    for name in names:
        register_secret(os.environ.get(name), name)


def register_secret(value: str | None, source: str = "") -> None:
    """Mask one secret value; `source` names where it came from (a variable) for the one
    warning a value too short to mask gets: the value itself is never written."""
    if not value:
        return
    if len(value) >= _MIN_SECRET:
        _SECRETS.add(value)
    elif source not in _warned_short:
        _warned_short.add(source)
        logging.getLogger("omnidesk.logs").warning(
            "the secret in %s is shorter than %d characters: it cannot be masked in logs;"
            " use a longer one",
            source or "a setting",
            _MIN_SECRET,
        )


def mask_secrets(text: str) -> str:
    """`text` with every registered secret as `***` (longest first: one may hold another)."""
    for secret in sorted(_SECRETS, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, "***")
    return text


def redact(text: str) -> str:
    return mask_pii(mask_secrets(text))


class SecretMask(logging.Filter):
    """On a handler: the record's message and traceback with the secrets masked, before any
    formatter sees them, so third-party lines (httpx prints the Bot API URL, token and all)
    are masked as well as ours. The record is rewritten in place: every handler after this
    one sees the masked text too."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not _SECRETS:
            return True
        message = record.getMessage()
        masked = mask_secrets(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_secrets(record.exc_text)
        if record.stack_info:
            record.stack_info = mask_secrets(record.stack_info)
        return True


def mask_root_handlers() -> None:
    """Put `SecretMask` on every handler of the root logger (once each)."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, SecretMask) for f in handler.filters):
            handler.addFilter(SecretMask())


def hide_message_bodies() -> None:
    """From now on, records made by dramatiq's code show a message as ``actor#message_id``
    and an actor's arguments (its debug line) as ``<hidden>``. Done where records are made,
    so every handler (and every test's capture) sees the same safe record; idempotent."""
    global _hiding
    if _hiding:
        return
    _hiding = True
    make_record = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make_record(*args, **kwargs)
        if record.args and _DRAMATIQ_CODE in record.pathname:
            record.args = _without_bodies(record.args)
        return record

    logging.setLogRecordFactory(factory)


_hiding = False
_DRAMATIQ_CODE = f"{os.sep}dramatiq{os.sep}"


def _without_bodies(args: Any) -> Any:
    from dramatiq import Message
    from dramatiq.broker import MessageProxy

    def safe(value: Any) -> Any:
        if isinstance(value, Message | MessageProxy):
            return f"{value.actor_name}#{value.message_id}"
        if isinstance(value, tuple | list | dict | bytes):  # an actor's args and kwargs
            return "<hidden>"
        return value

    if isinstance(args, dict):
        return {key: safe(value) for key, value in args.items()}
    if isinstance(args, tuple):
        return tuple(safe(value) for value in args)
    return safe(args)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": redact(record.getMessage()),
        }
        for key in _EXTRA_KEYS:
            value = getattr(record, key, None)
            if value is not None:
                line[key] = value
        if record.exc_text:
            line["exc"] = redact(record.exc_text)
        elif record.exc_info:
            line["exc"] = redact(self.formatException(record.exc_info))
        return json.dumps(line, ensure_ascii=False)


def setup_json_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    handler.addFilter(SecretMask())
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("aiohttp.access", "dramatiq"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
