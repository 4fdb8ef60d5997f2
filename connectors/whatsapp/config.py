"""The configuration of one WhatsApp Business number on the Cloud API.
One entry of `connectors:` with `kind: whatsapp`; secrets only by env var name."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from connectors.secrets import env_name, require_env
from omnidesk.templates import PLACEHOLDERS


class TemplateParameter(BaseModel):
    """One body parameter: the placeholder that fills it, and what to send when this
    message has no value for it (WhatsApp refuses an empty parameter)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    fallback: str = ""  # e.g. "عميلنا العزيز" for customer_name

    @field_validator("name")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in PLACEHOLDERS:
            known = ", ".join(sorted(PLACEHOLDERS))
            raise ValueError(f"unknown parameter {value!r} (known: {known})")
        return value


class Template(BaseModel):
    """An approved message template, sent instead of free text outside the 24-hour window."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, pattern=r"^[a-z0-9_]+$")
    language: str = Field("ar", min_length=2)  # the template's language code: ar, en, en_US
    # What fills the body's {{1}}, {{2}}, ... in order: placeholder names (ticket_id,
    # customer_name, first_response_due, ...), as the approved template expects them; an
    # entry may be {name, fallback} instead of a bare name.
    parameters: list[TemplateParameter] = Field(default_factory=list, max_length=20)

    @field_validator("parameters", mode="before")
    @classmethod
    def _bare_names(cls, value: object) -> object:
        if isinstance(value, list):
            return [{"name": v} if isinstance(v, str) else v for v in value]
        return value


class Secrets(BaseModel):
    model_config = ConfigDict(frozen=True)

    verify_token: str
    app_secret: str
    access_token: str

    def __repr__(self) -> str:
        return "Secrets(***)"


class WhatsAppConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    kind: Literal["whatsapp"] = "whatsapp"
    phone_number_id: str = Field(pattern=r"^[0-9]{1,20}$")
    verify_token_env: str  # the token typed in Meta's webhook settings (GET handshake)
    app_secret_env: str  # signs every POST (X-Hub-Signature-256)
    access_token_env: str  # a system-user token for the Graph API
    graph_base: str = "https://graph.facebook.com"  # tests point it at a local server
    api_version: str = Field("v21.0", pattern=r"^v[0-9]+\.[0-9]+$")
    webhook_path: str | None = None  # default /webhooks/whatsapp/<name>
    reply_window_hours: float = Field(24.0, gt=0)
    template: Template | None = None
    request_timeout: float = Field(30.0, gt=0)

    @field_validator("verify_token_env", "app_secret_env", "access_token_env")
    @classmethod
    def _env(cls, value: str) -> str:
        env_name(value)
        return value

    @field_validator("graph_base")
    @classmethod
    def _base(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("webhook_path")
    @classmethod
    def _path(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("/"):
            raise ValueError("must start with /")
        return value

    @property
    def path(self) -> str:
        return self.webhook_path or f"/webhooks/whatsapp/{self.name}"

    def secrets(self) -> Secrets:
        """Read the secrets now; a missing variable is a ConfigError naming it."""
        return Secrets(
            verify_token=require_env(self.verify_token_env, f"{self.name}.verify_token_env"),
            app_secret=require_env(self.app_secret_env, f"{self.name}.app_secret_env"),
            access_token=require_env(self.access_token_env, f"{self.name}.access_token_env"),
        )
