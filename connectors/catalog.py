"""Which connector class serves each `kind` in the config's `connectors:` list: the
`omnidesk.connectors` entry points, so another package can add a channel.

An entry is validated at load time as `ConnectorConfig`, a pydantic union of every
kind's config model told apart by `kind`, so a typo in a connector block is a FILE:LINE
error too. The config models are light (pydantic only); the connector classes, which
need their channel's client library, are imported only when one is built or checked.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import EntryPoint, entry_points
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


GROUP = "omnidesk.connectors"  # entry point name: the kind; value: "module:Class"


def kinds() -> dict[str, EntryPoint]:
    """Every installed connector kind: ours (pyproject.toml) and any other package's."""
    return {point.name: point for point in entry_points(group=GROUP)}


def connector_class(kind: str) -> ConnectorClass:
    known = kinds()
    if kind not in known:
        raise ValueError(f"unknown connector kind {kind!r} (known: {', '.join(sorted(known))})")
    try:
        cls: ConnectorClass = known[kind].load()
    except ImportError as exc:
        raise ValueError(f"connector kind {kind!r} is not available: {exc}") from None
    return cls


ConnectorConfig = Annotated[
    MaildirConfig | EmailAccount | TelegramConfig | TwitterConfig | WhatsAppConfig,
    Field(discriminator="kind"),
]
_connector_config: TypeAdapter[ConnectorConfig] = TypeAdapter(ConnectorConfig)


BUILT_IN = frozenset({"maildir", "imap", "telegram", "twitter", "whatsapp"})


def another_package_kind(entry: Any) -> bool:
    """True when the entry names a kind another installed package provides: its config is
    its class's `config_model`, not a member of our union."""
    kind = entry.get("kind") if isinstance(entry, dict) else None
    return isinstance(kind, str) and kind not in BUILT_IN and kind in kinds()


def validate_entry(entry: Any) -> BaseModel:
    """The typed config of one `connectors:` entry, the model chosen by its `kind`: ours
    through the ConnectorConfig union, another package's kind through its class's
    `config_model`. Raises ValidationError (the kind missing or unknown, or the entry
    wrong for it), or ValueError when another package's kind cannot be loaded."""
    if another_package_kind(entry):
        return connector_class(entry["kind"]).config_model.model_validate(entry)
    config: BaseModel = _connector_config.validate_python(entry)
    return config


LeaseFactory = Callable[[str, float], Any]  # (connector name, ttl seconds) -> Lease


def build(
    entry: dict[str, Any], *, cursors: Any = None, lease_for: LeaseFactory | None = None
) -> Connector:
    """A connector from its config entry, with the daemon's cursor store and a lease on
    its account (so with several daemons each account has one poller at a time)."""
    config = validate_entry(entry)
    cls = connector_class(str(entry["kind"]))
    lease = None
    if lease_for is not None and cls.uses_lease:
        lease = lease_for(str(entry["name"]), float(getattr(config, "lease_ttl", 30.0)))
    return cls(config, cursors=cursors, lease=lease)
