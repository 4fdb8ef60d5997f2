"""The IMAP connector against a real Dovecot: IDLE, polling, cursors, resync, auth."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from email import message_from_bytes

import pytest

from connectors.email.config import EmailAccount
from connectors.email.imap import ImapConnector
from connectors.state import CursorStore
from omnidesk.errors import AuthError, ConfigError, PermanentError, TransientError
from omnidesk.model import Channel, RawPayload
from tests.services import eventually

pytestmark = pytest.mark.imap


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


class Collector:
    """The sink: records every batch handed over, in order."""

    def __init__(self) -> None:
        self.batches: list[list[RawPayload]] = []
        self.fail_next = False

    async def __call__(self, batch: list[RawPayload]) -> None:
        if self.fail_next:
            self.fail_next = False
            raise TransientError("broker down")
        self.batches.append(batch)

    @property
    def payloads(self) -> list[RawPayload]:
        return [p for batch in self.batches for p in batch]

    @property
    def message_ids(self) -> list[str]:
        return [str(message_from_bytes(p.payload)["Message-ID"]) for p in self.payloads]


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
                await asyncio.wait_for(task, 5)
                await c.shutdown()

    start.stop = stop  # type: ignore[attr-defined]
    start.cursors = CursorStore(client, prefix)  # type: ignore[attr-defined]
    yield start
    for connector, task in started:
        await connector.stop()
        try:
            await asyncio.wait_for(task, 5)
        finally:
            await connector.shutdown()


async def test_idle_delivers_an_appended_message_within_two_seconds(dovecot, account_factory, run):
    user = dovecot.new_user()
    sink = Collector()
    connector = await run(account_factory(user, mode="idle"), sink)
    assert await eventually(lambda: connector._idling, 5)
    raw, message_id = mail("طلب سجل تجاري")
    sent = time.monotonic()
    await asyncio.to_thread(dovecot.append, user, raw)
    assert await eventually(lambda: sink.payloads, 2.0), "not handed over within 2 s"
    assert time.monotonic() - sent < 2.0
    payload = sink.payloads[0]
    assert payload.channel == Channel.EMAIL and payload.account == connector.name
    assert payload.payload == raw  # raw bytes, unparsed
    assert payload.source == "imap:INBOX:1"
    assert connector.status.handed_over == 1


async def test_polling_hands_over_marks_seen_and_advances_the_cursor(dovecot, account_factory, run):
    user = dovecot.new_user()
    raws = [mail(f"poll {i}") for i in range(3)]
    for raw, _ in raws:
        dovecot.append(user, raw)
    sink = Collector()
    account = account_factory(user, mode="poll", batch_size=2)
    connector = await run(account, sink)
    assert await eventually(lambda: len(sink.payloads) == 3, 5)
    assert [len(b) for b in sink.batches] == [2, 1]
    assert sink.message_ids == [mid for _, mid in raws]
    cursor = await run.cursors.get(connector.name)
    assert cursor["folders"]["INBOX"]["uid"] == 3
    later, later_id = mail("poll later")
    dovecot.append(user, later)
    assert await eventually(lambda: len(sink.payloads) == 4, 3)
    assert sink.message_ids[-1] == later_id
    await run.stop(connector)
    conn = dovecot.client(user)
    conn.select("INBOX")
    _, seen = conn.uid("SEARCH", "SEEN")
    conn.logout()
    assert seen[0].split() == [b"1", b"2", b"3", b"4"]


async def test_restart_resumes_from_the_cursor_without_duplicates(dovecot, account_factory, run):
    user = dovecot.new_user()
    account = account_factory(user)
    first, second = Collector(), Collector()
    dovecot.append(user, mail("before")[0])
    connector = await run(account, first)
    assert await eventually(lambda: len(first.payloads) == 1, 5)
    await run.stop(connector)
    after, after_id = mail("while stopped")
    dovecot.append(user, after)
    again = await run(account, second)
    assert await eventually(lambda: second.payloads, 5)
    await asyncio.sleep(0.5)  # a few more polls: nothing old comes back
    assert second.message_ids == [after_id]
    assert again.status.handed_over == 1


async def test_failed_hand_over_keeps_the_cursor_and_unseen(dovecot, account_factory, run):
    user = dovecot.new_user()
    raw, message_id = mail("retry me")
    dovecot.append(user, raw)
    sink = Collector()
    sink.fail_next = True
    connector = await run(account_factory(user), sink)
    assert await eventually(lambda: sink.payloads, 8)  # after the backoff
    assert sink.message_ids == [message_id]
    assert connector.status.errors.get("transient") == 1


async def test_uidvalidity_change_resyncs_with_the_same_message_ids(dovecot, account_factory, run):
    user = dovecot.new_user()
    folder = "Support"
    conn = dovecot.client(user)
    conn.create(folder)
    conn.logout()
    raws = [mail(f"resync {i}") for i in range(2)]
    for raw, _ in raws:
        dovecot.append(user, raw, folder)
    sink = Collector()
    account = account_factory(user, folders=[folder])
    connector = await run(account, sink)
    assert await eventually(lambda: len(sink.payloads) == 2, 5)
    before = await run.cursors.get(connector.name)
    await run.stop(connector)
    # Recreate the folder: the server gives it a new UIDVALIDITY, the UIDs start again.
    conn = dovecot.client(user)
    conn.delete(folder)
    conn.create(folder)
    conn.logout()
    for raw, _ in raws:
        dovecot.append(user, raw, folder)
    resync = Collector()
    connector = await run(account, resync)
    assert await eventually(lambda: len(resync.payloads) == 2, 5)
    after = await run.cursors.get(connector.name)
    assert after["folders"][folder]["uidvalidity"] != before["folders"][folder]["uidvalidity"]
    # Handed over again, but with the same Message-IDs: intake's dedupe makes it harmless.
    assert resync.message_ids == sink.message_ids == [mid for _, mid in raws]


async def test_a_broken_message_is_handed_over_raw_and_the_next_one_arrives(
    dovecot, account_factory, run
):
    user = dovecot.new_user()
    broken = b"\xff\xfe this is not a mail\r\nno headers at all \x00\x01\r\n"
    good, good_id = mail("after the broken one")
    dovecot.append(user, broken)
    dovecot.append(user, good)
    sink = Collector()
    await run(account_factory(user), sink)
    assert await eventually(lambda: len(sink.payloads) == 2, 5)
    assert sink.payloads[0].payload.startswith(b"\xff\xfe this is not a mail")
    assert str(message_from_bytes(sink.payloads[1].payload)["Message-ID"]) == good_id


async def test_cap_per_run_and_move_to_a_processed_folder(dovecot, account_factory, run):
    user = dovecot.new_user()
    for i in range(5):
        dovecot.append(user, mail(f"cap {i}")[0])
    sink = Collector()
    account = account_factory(user, max_per_run=2, after="move:Processed")
    await run(account, sink)
    assert await eventually(lambda: len(sink.payloads) == 5, 5)
    assert max(len(b) for b in sink.batches) <= 2
    conn = dovecot.client(user)
    _, inbox = conn.select("INBOX")
    _, processed = conn.select("Processed")
    conn.logout()
    assert inbox[0] == b"0" and processed[0] == b"5"


async def test_wrong_password_is_an_auth_error_not_a_tight_loop(dovecot, account_factory, run):
    user = dovecot.new_user()
    account = account_factory(user, password="wrong")
    connector = await run(account, Collector())
    assert await eventually(lambda: connector.status.state == "auth_error", 3)
    await asyncio.sleep(2.0)
    assert connector.status.state == "auth_error"
    assert connector.status.last_error_kind == "auth"
    assert connector.status.errors == {"auth": 1}
    assert dovecot.auth_failures(user) == 1  # the server saw one attempt in ~2 s
    assert "password_env" in (connector.status.last_error or "")


async def test_missing_password_variable_is_a_start_up_error_naming_it(dovecot):
    account = EmailAccount(
        name="support", host="127.0.0.1", port=dovecot.port, security="none",
        username="x@example.test", password_env="OD_TEST_SURELY_UNSET_VAR",
    )  # fmt: skip
    os.environ.pop("OD_TEST_SURELY_UNSET_VAR", None)
    with pytest.raises(ConfigError, match="OD_TEST_SURELY_UNSET_VAR"):
        await ImapConnector(account, cursors=None).initialize()  # type: ignore[arg-type]


async def test_check_names_the_bad_field(dovecot, account_factory):
    user = dovecot.new_user()
    await ImapConnector(account_factory(user), cursors=None).check()  # type: ignore[arg-type]
    with pytest.raises(TransientError, match="^host: "):
        bad_host = account_factory(user, port=1)
        await ImapConnector(bad_host, cursors=None).check()  # type: ignore[arg-type]
    with pytest.raises(AuthError, match="password_env"):
        bad_password = account_factory(user, password="nope")
        await ImapConnector(bad_password, cursors=None).check()  # type: ignore[arg-type]
    with pytest.raises(PermanentError, match="^folders: 'Nope'"):
        bad_folder = account_factory(user, folders=["INBOX", "Nope"])
        await ImapConnector(bad_folder, cursors=None).check()  # type: ignore[arg-type]


def test_config_rejects_unknown_keys_and_bad_after():
    base = {"name": "s", "host": "h", "username": "u", "password_env": "P"}
    with pytest.raises(ValueError, match="pasword_env"):
        EmailAccount.model_validate(base | {"pasword_env": "X"})
    with pytest.raises(ValueError, match="after"):
        EmailAccount.model_validate(base | {"after": "delete"})
    assert EmailAccount.model_validate(base | {"after": "move:Done"}).move_to == "Done"
