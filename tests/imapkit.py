"""IMAP test helpers on the real Dovecot: a customer mail builder, an account per test
(its password in a fresh env variable) and a `run` fixture that starts connectors and stops
them at teardown. A pytest plugin (tests/conftest.py), so every IMAP test file shares them."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from connectors.email.config import EmailAccount
from connectors.email.imap import ImapConnector
from connectors.state import CursorStore
from tests.services import eventually


async def more_polls(connector: ImapConnector, count: int = 2, timeout: float = 5) -> bool:
    """True once `connector` has finished `count` more polls (its last_fetch moved on each
    time): "nothing else comes" is then seen over real polls, not over a guessed sleep."""
    for _ in range(count):
        before = connector.status.last_fetch
        if not await eventually(lambda b=before: connector.status.last_fetch != b, timeout):
            return False
    return True


def mail(subject: str, body: str = "السلام عليكم") -> tuple[bytes, str]:
    message_id = f"<{uuid.uuid4().hex}@customer.test>"
    raw = (
        "From: Customer <c@customer.test>\r\n"
        "To: support@example.test\r\n"
        f"Subject: {subject}\r\n"
        f"Message-ID: {message_id}\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n"
        "\r\n"
        f"{body}\r\n"
    ).encode()
    return raw, message_id


@pytest.fixture
def account_factory(dovecot, monkeypatch):
    def make(user: str, password: str = "secret", **overrides) -> EmailAccount:
        env = f"OD_TEST_PW_{uuid.uuid4().hex[:8].upper()}"
        monkeypatch.setenv(env, password)
        fields = {
            "name": f"support-{uuid.uuid4().hex[:6]}",
            "host": dovecot.host,
            "port": dovecot.port,
            "security": "none",
            "username": user,
            "password_env": env,
            "mode": "poll",
            "poll_interval": 0.2,
            "timeouts": {"idle": 5, "connect": 3, "command": 10},
        } | overrides
        return EmailAccount.model_validate(fields)

    return make


@pytest.fixture
async def run(redis_prefix):
    """Start connectors through the shared loop; stop and shut them down at teardown."""
    client, prefix = redis_prefix
    started: list[tuple[ImapConnector, asyncio.Task]] = []

    async def start(account: EmailAccount, sink, **kw) -> ImapConnector:
        connector = ImapConnector(account, CursorStore(client, prefix), **kw)
        await connector.initialize()
        started.append((connector, asyncio.create_task(connector.start(sink))))
        return connector

    async def stop(connector: ImapConnector) -> None:
        for c, task in started:
            if c is connector:
                await c.stop()
                await asyncio.wait_for(task, 10)
                await c.shutdown()

    start.stop = stop  # type: ignore[attr-defined]
    start.cursors = CursorStore(client, prefix)  # type: ignore[attr-defined]
    yield start
    for connector, task in started:
        await connector.stop()
        try:
            await asyncio.wait_for(task, 10)
        finally:
            await connector.shutdown()
