"""The configuration of one email account: IMAP in, SMTP out.

One entry of `connectors:` in queue_config.yaml with `kind: email`. Secrets are
never in the file, only the names of the environment variables that hold them.
"""

from __future__ import annotations

import os
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from omnidesk.errors import ConfigError

Security = Literal["none", "starttls", "tls"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Timeouts(_Strict):
    """Named timeouts, in seconds (Zammad's habit: every wait has a name)."""

    connect: float = Field(15.0, gt=0)
    command: float = Field(60.0, gt=0)  # waiting for one IMAP command's answer
    idle: float = Field(29 * 60.0, gt=0)  # RFC 2177: re-issue IDLE at least every 29 minutes


class SmtpConfig(_Strict):
    host: str
    port: int = Field(587, ge=1, le=65535)
    security: Security = "starttls"
    username: str | None = None
    password_env: str | None = None
    from_address: str
    timeout: float = Field(30.0, gt=0)
    tls_verify: bool = True


class EmailAccount(_Strict):
    """One mailbox, both ways: a connector owns one account."""

    kind: Literal["email"] = "email"
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    host: str
    port: int = Field(993, ge=1, le=65535)
    security: Security = "tls"
    username: str
    password_env: str | None = None
    oauth2_token_env: str | None = None  # XOAUTH2 for hosted mail; used instead of the password
    folders: list[str] = Field(default_factory=lambda: ["INBOX"], min_length=1)
    mode: Literal["idle", "poll", "auto"] = "auto"  # auto: IDLE when CAPABILITY lists it
    poll_interval: float = Field(60.0, gt=0)
    after: str = "seen"  # "seen", or "move:<folder>"
    max_per_run: int = Field(100, ge=1)
    batch_size: int = Field(20, ge=1)
    lease_ttl: float = Field(30.0, gt=0)
    tls_verify: bool = True
    timeouts: Timeouts = Field(default_factory=Timeouts)
    smtp: SmtpConfig | None = None

    @field_validator("after")
    @classmethod
    def _after(cls, value: str) -> str:
        if value == "seen" or (value.startswith("move:") and value[5:].strip()):
            return value
        raise ValueError("must be 'seen' or 'move:<folder>'")

    @field_validator("password_env", "oauth2_token_env")
    @classmethod
    def _env_name(cls, value: str | None) -> str | None:
        if value is not None and not value.replace("_", "").isalnum():
            raise ValueError(f"not an environment variable name: {value!r}")
        return value

    @property
    def move_to(self) -> str | None:
        return self.after[5:].strip() if self.after.startswith("move:") else None

    def credentials(self) -> tuple[str, str]:
        """("password" | "xoauth2", secret) from the environment; a missing one names its
        variable. Called at start-up, so a daemon with a missing secret does not start."""
        if self.oauth2_token_env:
            return "xoauth2", require_env(self.oauth2_token_env, f"{self.name}.oauth2_token_env")
        if self.password_env:
            return "password", require_env(self.password_env, f"{self.name}.password_env")
        raise ConfigError([f"connectors.{self.name}: password_env or oauth2_token_env is required"])

    def smtp_password(self) -> str | None:
        if self.smtp is None or self.smtp.password_env is None:
            return None
        return require_env(self.smtp.password_env, f"{self.name}.smtp.password_env")


def require_env(variable: str, where: str) -> str:
    value = os.environ.get(variable)
    if not value:
        raise ConfigError(
            [f"connectors.{where}: environment variable {variable} is not set (or empty)"]
        )
    return value
