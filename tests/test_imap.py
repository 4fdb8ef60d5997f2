"""The IMAP connector against a real Dovecot: IDLE, polling, cursors, resync, auth."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from email import message_from_bytes

import pytest

from connectors.email.config import EmailAccount
from connectors.email.imap import ImapConnector
from connectors.email.imapsession import ImapSession
from connectors.state import CursorStore, Lease
from omnidesk.errors import AuthError, ConfigError, PermanentError, TransientError
from omnidesk.model import Channel, RawPayload
from tests.imapkit import mail, more_polls
from tests.services import REDIS_URL, REPO, eventually

pytestmark = pytest.mark.imap


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


async def test_idle_delivers_an_appended_message_within_two_seconds(dovecot, account_factory, run):
    user = dovecot.new_user()
    sink = Collector()
    connector = await run(account_factory(user, mode="idle"), sink)
    assert await eventually(lambda: connector._idling, 5)
    raw, _ = mail("طلب سجل تجاري")
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
    assert await more_polls(again)  # a few more polls: nothing old comes back
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

    def counts() -> tuple[bytes, bytes]:
        conn = dovecot.client(user)
        _, inbox = conn.select("INBOX")
        _, processed = conn.select("Processed")
        conn.logout()
        return inbox[0], processed[0]

    # the move follows the hand-over of the last batch: give it its moment
    assert await eventually(lambda: counts() == (b"0", b"5"), 5), counts()


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
    with pytest.raises(TransientError, match=r"^host: "):
        bad_host = account_factory(user, port=1)
        await ImapConnector(bad_host, cursors=None).check()  # type: ignore[arg-type]
    with pytest.raises(AuthError, match="password_env"):
        bad_password = account_factory(user, password="nope")
        await ImapConnector(bad_password, cursors=None).check()  # type: ignore[arg-type]
    with pytest.raises(PermanentError, match=r"^folders: 'Nope'"):
        bad_folder = account_factory(user, folders=["INBOX", "Nope"])
        await ImapConnector(bad_folder, cursors=None).check()  # type: ignore[arg-type]


def test_config_rejects_unknown_keys_and_bad_after():
    base = {"name": "s", "host": "h", "username": "u", "password_env": "P"}
    with pytest.raises(ValueError, match="pasword_env"):
        EmailAccount.model_validate(base | {"pasword_env": "X"})
    with pytest.raises(ValueError, match="after"):
        EmailAccount.model_validate(base | {"after": "delete"})
    assert EmailAccount.model_validate(base | {"after": "move:Done"}).move_to == "Done"


async def test_two_daemons_one_polls_and_the_survivor_takes_over(
    dovecot, account_factory, redis_prefix
):
    """The holder is a real second process; SIGKILL leaves its lease to expire."""
    client, prefix = redis_prefix
    user = dovecot.new_user()
    account = account_factory(user, mode="idle")
    ttl = 1.0
    spec = {
        "redis": REDIS_URL,
        "prefix": prefix,
        "ttl": ttl,
        "token": "child",
        "account": account.model_dump(mode="json"),
    }
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.lease_holder", json.dumps(spec),
        cwd=REPO, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    survivor = None
    try:
        lease_key = f"{prefix}:lease:{account.name}"
        for _ in range(100):  # the child imports, connects and takes the lease
            if await client.get(lease_key) == b"child":
                break
            await asyncio.sleep(0.05)
        assert await client.get(lease_key) == b"child"
        sink = Collector()
        lease = Lease(client, prefix, account.name, ttl=ttl, token="parent")
        survivor = ImapConnector(account, CursorStore(client, prefix), lease=lease)
        await survivor.initialize()
        task = asyncio.create_task(survivor.start(sink))
        first, _ = mail("to the holder")
        dovecot.append(user, first)
        line = await asyncio.wait_for(child.stdout.readline(), 5)  # type: ignore[union-attr]
        assert line.split() == [b"HANDED", b"imap:INBOX:1"]
        assert survivor.status.state == "standby" and sink.payloads == []
        assert dovecot.logins(user) == 2  # the holder and the APPEND: the standby never did
        cursors = CursorStore(client, prefix)
        for _ in range(100):  # hand-over, then cursor: killed in between, it would re-deliver
            cursor = await cursors.get(account.name)
            if cursor and cursor["folders"]["INBOX"]["uid"] == 1:
                break
            await asyncio.sleep(0.02)
        child.kill()  # dies without releasing: its lease expires after the ttl
        await child.wait()
        killed = time.monotonic()
        second, second_id = mail("to the survivor")
        dovecot.append(user, second)
        assert await eventually(lambda: sink.payloads, ttl + 3)
        assert time.monotonic() - killed < ttl + 3
        assert sink.message_ids == [second_id]  # the shared cursor: no duplicate of the first
        assert await client.get(lease_key) == b"parent"
        await survivor.stop()
        await asyncio.wait_for(task, 5)
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()
        if survivor is not None:
            await survivor.shutdown()


async def test_several_folders_with_idle_on_the_first(dovecot, account_factory, run, capfd):
    """IDLE watches INBOX only, so it must end every poll_interval to look at the other
    folders. A mail only in Complaints arrives within 3 poll intervals. Given a float,
    imaplib2 idled its default 29 minutes (it takes only ints) and wrote a raw line to
    stderr; the connector then met its own IDLE deadline and reconnected after an error."""
    poll_interval = 2.0
    user = dovecot.new_user()
    conn = dovecot.client(user)
    conn.create("Complaints")
    conn.logout()
    sink = Collector()
    account = account_factory(
        user, mode="idle", folders=["INBOX", "Complaints"], poll_interval=poll_interval,
        timeouts={"idle": 600, "connect": 3, "command": 10},
    )  # fmt: skip
    connector = await run(account, sink)
    assert await eventually(lambda: connector._idling, 5)
    await asyncio.to_thread(dovecot.append, user, mail("complaint")[0], "Complaints")
    assert await eventually(lambda: sink.payloads, 3 * poll_interval), "IDLE outwaited the poll"
    assert [p.source for p in sink.payloads] == ["imap:Complaints:1"]
    assert connector.status.errors == {}  # no IDLE deadline missed, no reconnect
    cursor = await run.cursors.get(connector.name)
    assert cursor["folders"]["Complaints"]["uid"] == 1
    assert "bad arg" not in capfd.readouterr().err  # imaplib2 wrote nothing raw to stderr


def test_idle_timeouts_are_whole_seconds_for_imaplib2():
    from connectors.email.imapsession import idle_seconds

    assert [idle_seconds(t) for t in (0.2, 1.0, 2.5, 29.0)] == [1, 1, 3, 29]
    assert all(type(idle_seconds(t)) is int for t in (0.2, 5.0))


@pytest.mark.parametrize("security", ["tls", "starttls"])
async def test_tls_and_starttls_verify_the_server(dovecot, account_factory, run, security):
    if dovecot.tls_port is None:
        pytest.skip("openssl is missing: no certificate for the TLS test")
    port = dovecot.tls_port if security == "tls" else dovecot.port
    user = dovecot.new_user()
    untrusted = account_factory(user, security=security, port=port)
    with pytest.raises(PermanentError, match=r"^security: TLS certificate"):
        await ImapConnector(untrusted, cursors=None).check()  # type: ignore[arg-type]
    trusted = account_factory(user, security=security, port=port, ca_file=dovecot.ca_file)
    await ImapConnector(trusted, cursors=None).check()  # type: ignore[arg-type]
    raw, message_id = mail("over TLS")
    dovecot.append(user, raw)
    sink = Collector()
    await run(trusted, sink)
    # a TLS handshake per connection is slow on a loaded 2-core CI machine: allow for it
    assert await eventually(lambda: sink.payloads, 15)
    assert sink.message_ids == [message_id]


def test_every_starttls_session_gets_the_reply_to_its_first_command(dovecot, account_factory):
    """Over TLS 1.3 the server's session tickets arrive while imaplib2's writer thread sends
    the first command after STARTTLS. With the reader blocked inside OpenSSL, that reply was
    lost in 8 of 60 connects here. Thirty connects in a row must all answer."""
    if dovecot.tls_port is None:
        pytest.skip("openssl is missing: no certificate for the TLS test")
    account = account_factory(
        dovecot.new_user(), security="starttls", ca_file=dovecot.ca_file,
        timeouts={"idle": 5, "connect": 3, "command": 3},
    )  # fmt: skip
    failures = []
    for attempt in range(30):
        session = ImapSession(account, ("password", "secret"))
        try:
            session.connect()
            assert session.conn is not None and session.conn.sock.version() == "TLSv1.3"
        except TransientError as exc:
            failures.append(f"connect {attempt}: {exc}")
        finally:
            session.close()
    assert failures == []


async def test_the_catalog_builds_it_from_a_config_entry(dovecot, account_factory, run):
    from connectors.catalog import build, validate_entry

    user = dovecot.new_user()
    entry = account_factory(user).model_dump(mode="json")
    assert entry["kind"] == "imap"
    with pytest.raises(ValueError, match="folder"):
        validate_entry(entry | {"folder": "INBOX"})  # unknown keys are named
    connector = build(entry, cursors=run.cursors)
    assert isinstance(connector, ImapConnector) and connector.account.username == user
    await connector.check()


def utf7_imap(word: str) -> str:
    """Independent of our encoder, for all-Arabic words: UTF-7 with "&" for "+" and ","
    for "/" (RFC 3501 5.1.3)."""
    return word.encode("utf-7").replace(b"+", b"&").replace(b"/", b",").decode()


async def test_arabic_folder_names_in_modified_utf7(dovecot, account_factory, run):
    folder, done = "الشكاوى", "تمت المعالجة"
    wire = utf7_imap(folder)
    user = dovecot.new_user()
    conn = dovecot.client(user)
    assert conn.create(wire)[0] == "OK"
    conn.logout()
    raw, message_id = mail("شكوى")
    dovecot.append(user, raw, wire)
    sink = Collector()
    await run(account_factory(user, folders=[folder], after=f"move:{done}"), sink)
    assert await eventually(lambda: sink.payloads, 5)
    assert sink.message_ids == [message_id]
    assert sink.payloads[0].source == f"imap:{folder}:1"
    moved_to = " ".join(utf7_imap(word) for word in done.split(" "))

    def counts() -> tuple[bytes, bytes]:
        conn = dovecot.client(user)
        _, in_folder = conn.select(wire)
        _, in_done = conn.select(f'"{moved_to}"')
        conn.logout()
        return in_folder[0], in_done[0]

    # the move follows the hand-over: polled, not read at once
    assert await eventually(lambda: counts() == (b"0", b"1"), 5), counts()


async def test_stop_ends_a_long_idle_at_once(dovecot, account_factory, redis_prefix):
    client, prefix = redis_prefix
    account = account_factory(dovecot.new_user(), mode="idle", timeouts={"idle": 600})
    connector = ImapConnector(account, CursorStore(client, prefix))
    async with connector:
        task = asyncio.create_task(connector.start(Collector()))
        assert await eventually(lambda: connector._idling, 5)
        started = time.monotonic()
        await connector.stop()
        await asyncio.wait_for(task, 5)
        assert time.monotonic() - started < 1.5
    assert connector.status.state == "stopped"
