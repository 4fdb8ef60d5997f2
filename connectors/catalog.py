"""Which connector class serves each `kind` in the config's `connectors:` list.

An entry is validated at load time as `ConnectorConfig`, a pydantic union of every
kind's config model told apart by `kind`, so a typo in a connector block is a FILE:LINE
error too. The config models are light (pydantic only); the connector classes, which
need their channel's client library, are imported only when one is built or checked.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Annotated, Any, Protocol

from pydantic import BaseModel, Field, TypeAdapter

from connectors.base import Connector
from connectors.email.config import EmailAccount
from connectors.maildir.connector import MaildirConfig
from connectors.telegram.config import TelegramConfig
from connectors.twitter.config import TwitterConfig
from connectors.whatsapp.config import WhatsAppConfig


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


ConnectorConfig = Annotated[
    MaildirConfig | EmailAccount | TelegramConfig | TwitterConfig | WhatsAppConfig,
    Field(discriminator="kind"),
]
_connector_config: TypeAdapter[ConnectorConfig] = TypeAdapter(ConnectorConfig)


def validate_entry(entry: Any) -> ConnectorConfig:
    """The typed config of one `connectors:` entry, the model chosen by its `kind`;
    raises ValidationError (the kind missing or unknown, or the entry wrong for it)."""
    return _connector_config.validate_python(entry)


LeaseFactory = Callable[[str, float], Any]  # (connector name, ttl seconds) -> Lease


def build(
    entry: dict[str, Any], *, cursors: Any = None, lease_for: LeaseFactory | None = None
) -> Connector:
    """A connector from its config entry, with the daemon's cursor store and a lease on
    its account (so with several daemons each account has one poller at a time)."""
    config = validate_entry(entry)
    cls = connector_class(config.kind)
    lease = None
    if lease_for is not None and cls.uses_lease:
        lease = lease_for(config.name, float(getattr(config, "lease_ttl", 30.0)))
    return cls(config, cursors=cursors, lease=lease)
