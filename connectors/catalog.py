"""Which connector class serves each `kind` in the config's `connectors:` list.

Each class names its pydantic config model as `config_model`; entries are validated
against it at load time, so a typo in a connector block is a FILE:LINE error too.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, Protocol

from pydantic import BaseModel

from connectors.base import Connector


class ConnectorClass(Protocol):
    """What the catalog uses of a connector class: its config model, whether it polls
    under a lease, and its constructor from a validated config."""

    config_model: type[BaseModel]
    uses_lease: bool

    def __call__(self, config: Any, *, cursors: Any, lease: Any) -> Connector: ...


KINDS: dict[str, str] = {
    "maildir": "connectors.maildir.connector:MaildirConnector",
    "imap": "connectors.email.imap:ImapConnector",
    "telegram": "connectors.telegram.connector:TelegramConnector",
    "twitter": "connectors.twitter.connector:TwitterConnector",
    "whatsapp": "connectors.whatsapp.connector:WhatsAppConnector",
}


def connector_class(kind: str) -> ConnectorClass:
    if kind not in KINDS:
        raise ValueError(f"unknown connector kind {kind!r} (known: {', '.join(sorted(KINDS))})")
    module_name, _, attr = KINDS[kind].partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"connector kind {kind!r} is not available: {exc}") from None
    cls: ConnectorClass = getattr(module, attr)
    return cls


def validate_entry(entry: dict[str, Any]) -> BaseModel:
    """The typed config of one `connectors:` entry; raises ValueError or ValidationError."""
    kind = entry.get("kind")
    if not isinstance(kind, str):
        raise ValueError("'kind' is required")
    model = connector_class(kind).config_model
    return model.model_validate(entry)


LeaseFactory = Callable[[str, float], Any]  # (connector name, ttl seconds) -> Lease


def build(
    entry: dict[str, Any], *, cursors: Any = None, lease_for: LeaseFactory | None = None
) -> Connector:
    """A connector from its config entry, with the daemon's cursor store and a lease on
    its account (so with several daemons each account has one poller at a time)."""
    config = validate_entry(entry)
    cls = connector_class(entry["kind"])
    lease = None
    if lease_for is not None and cls.uses_lease:
        lease = lease_for(entry["name"], float(getattr(config, "lease_ttl", 30.0)))
    return cls(config, cursors=cursors, lease=lease)
