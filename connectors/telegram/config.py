"""The configuration of one Telegram bot: one entry of `connectors:` with `kind: telegram`.

The token and the webhook secret are never in the file, only the names of the
environment variables that hold them.
"""

from __future__ import annotations

import os
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from omnidesk.errors import ConfigError

TELEGRAM_API = "https://api.telegram.org/bot"
TELEGRAM_FILES = "https://api.telegram.org/file/bot"


class TelegramConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    kind: Literal["telegram"] = "telegram"
    token_env: str
    mode: Literal["polling", "webhook"] = "polling"
    base_url: str = TELEGRAM_API  # the token is appended (or put where `{token}` stands)
    base_file_url: str = TELEGRAM_FILES
    webhook_path: str | None = None  # default /v1/webhooks/telegram/<name>
    secret_token_env: str | None = None  # required in webhook mode
    poll_timeout: int = Field(30, ge=0, le=50)  # getUpdates long-poll seconds
    limit: int = Field(100, ge=1, le=100)  # updates per getUpdates
    allowed_updates: list[str] | None = None  # None: Telegram's default set
    request_timeout: float = Field(20.0, gt=0)  # connect/read for everything but the long poll
    max_retry_wait: float = Field(60.0, ge=0)  # longest RetryAfter slept inside one send
    lease_ttl: float = Field(30.0, gt=0)

    @field_validator("token_env", "secret_token_env")
    @classmethod
    def _env_name(cls, value: str | None) -> str | None:
        if value is not None and not value.replace("_", "").isalnum():
            raise ValueError(f"not an environment variable name: {value!r}")
        return value

    @field_validator("webhook_path")
    @classmethod
    def _path(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("/"):
            raise ValueError("must start with '/'")
        return value

    @model_validator(mode="after")
    def _webhook_needs_secret(self) -> TelegramConfig:
        if self.mode == "webhook" and not self.secret_token_env:
            raise ValueError("mode webhook needs secret_token_env (the webhook secret token)")
        return self

    @property
    def route(self) -> str:
        return self.webhook_path or f"/v1/webhooks/telegram/{self.name}"

    def token(self) -> str:
        return require_env(self.token_env, f"{self.name}.token_env")

    def secret_token(self) -> str | None:
        if self.secret_token_env is None:
            return None
        return require_env(self.secret_token_env, f"{self.name}.secret_token_env")


def require_env(variable: str, where: str) -> str:
    """A secret from the environment; a missing one is a start-up error naming the variable."""
    value = os.environ.get(variable)
    if not value:
        raise ConfigError(
            [f"connectors.{where}: environment variable {variable} is not set (or empty)"]
        )
    return value
