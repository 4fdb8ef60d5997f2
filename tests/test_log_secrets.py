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
    dovecot,
    botapi,
    prefix: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
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


def _cli_stderr(tmp_path: Path, url: str, *flags: str, code: int = 2, **env: str) -> str:
    """`omnidesk show` as a real process with this database URL: its whole stderr."""
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent
    config = root / "tests" / "fixtures" / "config" / "store.yaml"
    proc = subprocess.run(
        [sys.executable, "-m", "omnidesk", *flags, "show", "OD-1", "--config", str(config)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(root), "OMNIDESK_DATABASE_URL": url, **env},
        timeout=60,
    )
    assert proc.returncode == code, proc.stderr
    return proc.stderr


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://u:s3cretpw@[::1/db", ["s3cretpw"]),  # psycopg cannot parse it
        ("postgresql://u:p%40ss-w0rd@[::1/db", ["p%40ss-w0rd", "p@ss-w0rd"]),  # encoded
    ],
)
def test_a_database_url_the_cli_cannot_parse_shows_no_password_on_stderr(
    tmp_path: Path, url: str, shown: list[str]
) -> None:
    """The logged traceback and the one-line error both quote the URL: both are masked."""
    stderr = _cli_stderr(tmp_path, url)
    assert "unexpected ProgrammingError" in stderr and "[::1/db" in stderr  # the error is there
    for password in shown:
        assert password not in stderr, stderr
    assert "postgresql://u:***@[::1/db" in stderr


def test_a_url_password_is_masked_decoded_and_percent_encoded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OMNIDESK_DATABASE_URL", "postgresql://u:p%40ss-4716@127.0.0.1/db")
    load_config(Path(__file__).parent / "fixtures" / "config" / "store.yaml")
    assert logs.mask_secrets("p@ss-4716 p%40ss-4716") == "*** ***"


def test_a_secret_too_short_to_mask_is_named_in_one_warning(tmp_path: Path) -> None:
    """A 3-character password cannot be masked: stderr says which variable, never the value."""
    stderr = _cli_stderr(
        tmp_path, "postgresql://u:s3cretpw@[::1/db", OMNIDESK_DASHBOARD_TOKEN="x9q"
    )
    warnings = [line for line in stderr.splitlines() if "shorter than 4" in line]
    assert len(warnings) == 1 and "OMNIDESK_DASHBOARD_TOKEN" in warnings[0], stderr
    assert "x9q" not in stderr


def test_the_debug_traceback_is_masked_too(tmp_path: Path) -> None:
    stderr = _cli_stderr(tmp_path, "postgresql://u:s3cretpw@[::1/db", "--debug", code=1)
    assert "Traceback" in stderr and "ProgrammingError" in stderr
    assert "s3cretpw" not in stderr and "postgresql://u:***@[::1/db" in stderr
