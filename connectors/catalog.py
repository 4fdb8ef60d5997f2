"""Which connector class serves each `kind` in the config's `connectors:` list: the
`omnidesk.connectors` entry points, so another package can add a channel.

Each class names its pydantic config model as `config_model`; entries are validated
against it at load time, so a typo in a connector block is a FILE:LINE error too.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from pydantic import BaseModel

from connectors.base import Connector

GROUP = "omnidesk.connectors"  # entry point name: the kind; value: "module:Class"


def kinds() -> dict[str, EntryPoint]:
    """Every installed connector kind: ours (pyproject.toml) and any other package's."""
    return {point.name: point for point in entry_points(group=GROUP)}


def connector_class(kind: str) -> type[Connector]:
    known = kinds()
    if kind not in known:
        raise ValueError(f"unknown connector kind {kind!r} (known: {', '.join(sorted(known))})")
    try:
        cls: type[Connector] = known[kind].load()
    except ImportError as exc:
        raise ValueError(f"connector kind {kind!r} is not available: {exc}") from None
    return cls


def validate_entry(entry: dict[str, Any]) -> BaseModel:
    """The typed config of one `connectors:` entry; raises ValueError or ValidationError."""
    kind = entry.get("kind")
    if not isinstance(kind, str):
        raise ValueError("'kind' is required")
    model: type[BaseModel] = connector_class(kind).config_model  # type: ignore[attr-defined]
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
    return cls(config, cursors=cursors, lease=lease)  # type: ignore[call-arg]
