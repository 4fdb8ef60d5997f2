"""Secrets never reach a log line: `omnidesk run` as a process, with an IMAP account whose
login Dovecot refuses and a Telegram bot polling the local Bot API; every line it writes is
grepped for the password and the token. The Bot API URL holds the token (httpx logs it on
every request), and the IMAP account's password is its own user name (a classic), so the
connector's own "refused the credentials of ..." line would show it."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path

import pytest

from omnidesk import logs
from omnidesk.configload import load_config
from tests.botapi import GOOD_TOKEN, botapi, update  # noqa: F401
from tests.services import free_port
from tests.test_daemon import DaemonProc, write_daemon_config


async def _until(check, timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{what} not seen in {timeout}s:\n{log.read_text()[-3000:]}")


async def test_a_connectors_password_and_token_never_appear_in_the_daemons_logs(
    dovecot, botapi, prefix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    user = dovecot.new_user()
    password = user.split("@")[0]  # wrong (Dovecot's is "secret"), and inside the user name
    suffix = uuid.uuid4().hex[:8].upper()
    monkeypatch.setenv(f"OD_TEST_IMAP_PW_{suffix}", password)
    monkeypatch.setenv(f"OD_TEST_BOT_TOKEN_{suffix}", GOOD_TOKEN)
    drop, port = tmp_path / "drop", free_port()
    (drop / "new").mkdir(parents=True)
    config = tmp_path / "queue_config.yaml"
    write_daemon_config(config, prefix=prefix, state=tmp_path / "state", drop=drop, port=port)
    imap = {
        "name": "mail", "kind": "imap", "host": dovecot.host, "port": dovecot.port,
        "security": "none", "username": user, "password_env": f"OD_TEST_IMAP_PW_{suffix}",
        "mode": "poll", "poll_interval": 0.2,
        "timeouts": {"idle": 5, "connect": 3, "command": 10},
    }  # fmt: skip
    bot = {
        "name": "bot", "kind": "telegram", "token_env": f"OD_TEST_BOT_TOKEN_{suffix}",
        "base_url": botapi.base_url, "poll_timeout": 1,
    }  # fmt: skip
    with config.open("a", encoding="utf-8") as f:
        f.write(f"  - {json.dumps(imap)}\n  - {json.dumps(bot)}\n")
    botapi.push(update(1, "السلام عليكم، عندي استفسار"))
    log = tmp_path / "daemon.log"
    daemon = DaemonProc(config, drop, port, prefix, log, "redis://127.0.0.1:6379/0")
    await asyncio.to_thread(daemon.start)
    try:
        # the lines that would carry the secrets have been written
        await _until(
            lambda: "connector mail: authentication failed" in log.read_text(),
            30, "the IMAP connector's authentication failure", log,
        )  # fmt: skip
        await _until(lambda: botapi.count("getUpdates") >= 2, 30, "Bot API polling", log)
        await _until(lambda: "/getUpdates" in log.read_text(), 30, "httpx's request line", log)
    finally:
        await asyncio.to_thread(daemon.stop)
    text = log.read_text("utf-8")
    assert password not in text
    assert GOOD_TOKEN not in text
    assert GOOD_TOKEN.split(":")[1] not in text
    # and they were masked, not merely absent: the lines are there with *** in their place
    assert "refused the credentials of '***@" in text
    assert "/bot***/getUpdates" in text


def test_a_config_load_registers_every_secret_it_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every `*_env` of a config (service, SMTP, each connector) is masked once it is loaded,
    in a handler's output too (the CLI's plain one)."""
    values = {
        "OD_T_DB_PW": "db-pass-4711",
        "OD_T_SMTP_PW": "smtp-pass-4712",
        "OD_T_WA_TOKEN": "wa-access-4713",
        "OD_T_WA_SECRET": "wa-app-secret-4714",
        "OD_T_WA_VERIFY": "wa-verify-4715",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    config = tmp_path / "queue_config.yaml"
    config.write_text(
        Path(__file__).parent.joinpath("fixtures", "config", "store.yaml").read_text("utf-8")
        + "service:\n  database_password_env: OD_T_DB_PW\n"
        "  smtp: {host: 127.0.0.1, from_address: desk@example.sa, username: desk,"
        " password_env: OD_T_SMTP_PW}\n"
        "connectors:\n  - {name: wa, kind: whatsapp, phone_number_id: '1234',"
        " access_token_env: OD_T_WA_TOKEN, app_secret_env: OD_T_WA_SECRET,"
        " verify_token_env: OD_T_WA_VERIFY}\n",
        "utf-8",
    )
    load_config(config)
    line = " ".join(values.values())
    assert logs.mask_secrets(line) == " ".join(["***"] * len(values))
    record = logging_record(f"connecting with {values['OD_T_WA_TOKEN']}")
    logs.SecretMask().filter(record)
    assert record.getMessage() == "connecting with ***"


def logging_record(message: str):  # type: ignore[no-untyped-def]
    import logging

    return logging.LogRecord("httpx", logging.INFO, __file__, 1, "%s", (message,), None)
