"""Secrets come only from environment variables named in the config."""

from __future__ import annotations

import os

from omnidesk.errors import ConfigError


def env_name(value: str | None) -> str | None:
    """A pydantic validator body: the value must look like an environment variable name."""
    if value is not None and not (value.replace("_", "").isalnum() and not value[0].isdigit()):
        raise ValueError(f"not an environment variable name: {value!r}")
    return value


def require_env(variable: str, where: str) -> str:
    """The secret in `variable`; a missing or empty one is a start-up error naming it."""
    value = os.environ.get(variable)
    if not value:
        raise ConfigError(
            [f"connectors.{where}: environment variable {variable} is not set (or empty)"]
        )
    return value
