"""The configuration of one X account: what to read, how often, and which env vars hold
its credentials. One entry of `connectors:` with `kind: twitter`."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from connectors.secrets import env_name, require_env

Stream = Literal["mentions", "dm_events"]
_MENTIONS: tuple[Stream, ...] = ("mentions",)
_OAUTH1 = ("consumer_key_env", "consumer_secret_env", "access_token_env", "access_token_secret_env")


class Credentials(BaseModel):
    """The secrets read from the environment at start-up (never logged)."""

    model_config = ConfigDict(frozen=True)

    bearer_token: str | None = None
    consumer_key: str | None = None
    consumer_secret: str | None = None
    access_token: str | None = None
    access_token_secret: str | None = None

    @property
    def user_context(self) -> bool:
        """OAuth 1.0a user context: tweepy's `user_auth=True` for every call."""
        return self.access_token is not None

    def __repr__(self) -> str:
        return "Credentials(***)"


class TwitterConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    kind: Literal["twitter"] = "twitter"
    user_id: str = Field(pattern=r"^[0-9]{1,20}$")  # our account's numeric id
    # OAuth 2.0: an app-only bearer token (mentions) or a user access token (mentions, DMs,
    # posting). OAuth 1.0a user context: all four *_env names; then every call uses it.
    bearer_token_env: str | None = None
    consumer_key_env: str | None = None
    consumer_secret_env: str | None = None
    access_token_env: str | None = None
    access_token_secret_env: str | None = None
    read: list[Stream] = Field(default_factory=lambda: list(_MENTIONS), min_length=1)
    api_base: str = "https://api.twitter.com"  # tests point it at a local server
    poll_interval: float = Field(60.0, gt=0)
    max_results: int = Field(100, ge=5, le=100)
    max_pages_per_run: int = Field(10, ge=1)
    request_timeout: float = Field(30.0, gt=0)
    lease_ttl: float = Field(30.0, gt=0)

    @field_validator("bearer_token_env", *_OAUTH1)
    @classmethod
    def _env(cls, value: str | None) -> str | None:
        return env_name(value)

    @field_validator("api_base")
    @classmethod
    def _base(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _some_credentials(self) -> TwitterConfig:
        given = [getattr(self, key) is not None for key in _OAUTH1]
        if any(given) and not all(given):
            missing = [key for key in _OAUTH1 if getattr(self, key) is None]
            raise ValueError(f"OAuth 1.0a needs all four env names; missing {', '.join(missing)}")
        if not any(given) and self.bearer_token_env is None:
            raise ValueError("bearer_token_env or the four OAuth 1.0a *_env names are required")
        return self

    def credentials(self) -> Credentials:
        """Read the secrets now; a missing variable is a ConfigError naming it."""
        values = {}
        for key in ("bearer_token_env", *_OAUTH1):
            variable = getattr(self, key)
            if variable is not None:
                values[key.removesuffix("_env")] = require_env(variable, f"{self.name}.{key}")
        return Credentials(**values)
