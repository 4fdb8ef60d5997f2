"""Structured logs: one JSON line per event, with ticket id and connector when known.

Secrets never reach a log line: values of the environment variables the config
names as secrets are replaced by `***` in every record.
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


def register_secret_env(*names: str) -> None:
    """Mask the values of these environment variables in every log line."""
    for name in names:
        value = os.environ.get(name)
        if value and len(value) >= 4:
            _SECRETS.add(value)


def redact(text: str) -> str:
    for secret in _SECRETS:
        text = text.replace(secret, "***")
    return mask_pii(text)


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
        if record.exc_info:
            line["exc"] = redact(self.formatException(record.exc_info))
        return json.dumps(line, ensure_ascii=False)


def setup_json_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("aiohttp.access", "dramatiq"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
