"""Replies out by SMTP (aiosmtplib), threaded so the customer's answer comes back.

The subject carries the ticket reference, In-Reply-To/References point at the
customer's message, and the fresh Message-ID is the Receipt's external id, which
intake can match when the customer replies to the reply.
"""

from __future__ import annotations

import email.policy
import ssl
from collections.abc import Awaitable, Callable
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import TypedDict

import aiosmtplib

from connectors.email.config import EmailAccount, SmtpConfig, tls_context
from connectors.email.threading import tag_subject
from connectors.secrets import require_env
from omnidesk.errors import AuthError, PermanentError, TransientError
from omnidesk.model import IdentityKind, Outbound, Receipt


def reply_subject(subject: str, ticket_id: str) -> str:
    """`Re: <subject> [#OD-...]`, without stacking Re: or the reference twice."""
    subject = tag_subject(" ".join(subject.split()), ticket_id)
    if not subject.lower().startswith(("re:", "رد:")):
        subject = f"Re: {subject}"
    return subject


def _angle(message_id: str) -> str:
    message_id = message_id.strip()
    return message_id if message_id.startswith("<") else f"<{message_id}>"


def build_reply(outbound: Outbound, from_address: str) -> EmailMessage:
    """The MIME message for one reply; non-ASCII headers are RFC 2047 encoded (UTF-8)."""
    recipients = [i.value for i in outbound.to if i.kind == IdentityKind.EMAIL]
    if not recipients:
        raise PermanentError(f"outbound {outbound.id}: no email address to reply to")
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"] = from_address
    msg["To"] = ", ".join(recipients)
    msg["Subject"] = reply_subject(outbound.subject, outbound.ticket_id)
    msg["Date"] = formatdate(localtime=False, usegmt=True)
    domain = from_address.rpartition("@")[2] or None
    msg["Message-ID"] = make_msgid(idstring=outbound.id.replace("@", "."), domain=domain)
    references = [_angle(r) for r in outbound.references if r.strip()]
    if outbound.in_reply_to:
        parent = _angle(outbound.in_reply_to)
        msg["In-Reply-To"] = parent
        if parent not in references:
            references.append(parent)
    if references:
        msg["References"] = " ".join(references)
    msg["Auto-Submitted"] = "auto-replied" if outbound.meta.get("auto") else "no"
    msg.set_content(outbound.text, charset="utf-8")
    if outbound.html:
        msg.add_alternative(outbound.html, subtype="html", charset="utf-8")
    return msg


class _SmtpOptions(TypedDict, total=False):
    """The keywords aiosmtplib's `send` and `SMTP` take from an account's config."""

    hostname: str
    port: int
    timeout: float
    use_tls: bool
    start_tls: bool
    tls_context: ssl.SSLContext
    username: str
    password: str
    oauth_token_generator: Callable[[], Awaitable[str]]


class SmtpSender:
    """Sends an account's replies; errors become Transient (4xx, network), Permanent (5xx)
    or Auth errors here, so the `deliver` actor knows whether to retry."""

    def __init__(self, account: EmailAccount) -> None:
        if account.smtp is None:
            raise PermanentError(f"connectors.{account.name}.smtp is not configured")
        self.account = account
        self.config: SmtpConfig = account.smtp
        self._password: str | None = None
        self._token: str | None = None

    def initialize(self) -> None:
        """Read the secrets now, so a missing variable is a start-up error."""
        self._password = self.account.smtp_password()
        if self._password is None and self.account.oauth2_token_env:
            where = f"{self.account.name}.oauth2_token_env"
            self._token = require_env(self.account.oauth2_token_env, where)

    def _options(self) -> _SmtpOptions:
        c = self.config
        context = tls_context(c.tls_verify, c.ca_file)
        options: _SmtpOptions = {
            "hostname": c.host,
            "port": c.port,
            "timeout": c.timeout,
            "use_tls": c.security == "tls",
            "start_tls": c.security == "starttls",
            "tls_context": context,
        }
        if c.username and self._password is not None:
            options["username"], options["password"] = c.username, self._password
        elif c.username and self._token is not None:
            token = self._token

            async def xoauth2() -> str:
                return token

            options["username"], options["oauth_token_generator"] = c.username, xoauth2
        return options

    async def send(self, outbound: Outbound) -> Receipt:
        message = build_reply(outbound, self.config.from_address)
        await _smtp_call(self.config, lambda: aiosmtplib.send(message, **self._options()))
        return Receipt(outbound_id=outbound.id, status="sent", external_id=message["Message-ID"])

    async def check(self) -> None:
        """Connect, greet and log in once, then quit."""
        options = self._options()
        username, password = options.pop("username", None), options.pop("password", None)
        options.pop("oauth_token_generator", None)
        client = aiosmtplib.SMTP(**options)

        async def run() -> None:
            async with client:
                if username and password:
                    await client.login(str(username), str(password))

        await _smtp_call(self.config, run)


async def _smtp_call(config: SmtpConfig, call: Callable[[], Awaitable[object]]) -> None:
    where = f"{config.host}:{config.port}"
    try:
        await call()
    except aiosmtplib.SMTPAuthenticationError as exc:
        raise AuthError(
            f"smtp.username/smtp.password_env: {where} refused the login: {exc}"
        ) from exc
    except aiosmtplib.SMTPRecipientsRefused as exc:
        codes = [r.code for r in exc.recipients]
        text = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in exc.recipients)
        if all(400 <= code < 500 for code in codes):
            raise TransientError(f"{where} deferred the recipients: {text}") from exc
        raise PermanentError(f"{where} refused the recipients: {text}") from exc
    except aiosmtplib.SMTPResponseException as exc:
        if 400 <= exc.code < 500:
            raise TransientError(f"{where} said {exc.code} {exc.message}") from exc
        raise PermanentError(f"{where} said {exc.code} {exc.message}") from exc
    except (aiosmtplib.SMTPException, OSError) as exc:  # connect, timeout, disconnect
        raise TransientError(f"smtp.host: cannot talk to {where}: {exc}") from exc
