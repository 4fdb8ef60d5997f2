"""`omnidesk connectors` and `omnidesk connectors check` on a config with good and bad accounts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from omnidesk.cli import main
from tests.storekit import CONFIG


def write_config(tmp_path: Path, connectors: str) -> Path:
    path = tmp_path / "queue_config.yaml"
    service = "service:\n  http_port: 1\n"  # nothing listens there: "daemon not running"
    path.write_text(service + CONFIG.read_text("utf-8") + "connectors:\n" + connectors, "utf-8")
    return path


def test_check_reports_each_account(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OD_TEST_MISSING_TOKEN", raising=False)
    (tmp_path / "drop").mkdir()
    config = write_config(
        tmp_path,
        (
            f"  - {{name: good, kind: maildir, path: {tmp_path / 'drop'}}}\n"
            f"  - {{name: gone, kind: maildir, path: {tmp_path / 'nowhere'}}}\n"
            "  - {name: bot, kind: telegram, token_env: OD_TEST_MISSING_TOKEN}\n"
        ),
    )
    code = main(["connectors", "check", "--config", str(config), "--json"])
    rows = {r["connector"]: r for r in map(json.loads, capsys.readouterr().out.splitlines())}
    assert code == 2
    assert rows["good"]["result"] == "ok"
    assert rows["gone"]["result"] == "misconfigured" and "nowhere" in rows["gone"]["detail"]
    assert rows["bot"]["result"] == "invalid config"
    assert "OD_TEST_MISSING_TOKEN" in rows["bot"]["detail"]


def test_list_without_a_daemon_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, f"  - {{name: drop, kind: maildir, path: {tmp_path}}}\n")
    assert main(["connectors", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "drop" in out and "maildir" in out and "daemon not running" in out


def test_an_unknown_connector_kind_is_a_config_error(tmp_path: Path) -> None:
    config = write_config(tmp_path, "  - {name: pigeon, kind: carrier_pigeon}\n")
    from omnidesk.configload import load_config
    from omnidesk.errors import ConfigError

    with pytest.raises(ConfigError) as info:
        load_config(config)
    assert "connectors[0]" in info.value.problems[0]
    assert "carrier_pigeon" in info.value.problems[0]


def test_connector_entries_are_checked_as_their_kind_with_file_and_line(tmp_path: Path) -> None:
    """The union on `kind` picks the model; each problem names the entry's own line."""
    config = write_config(
        tmp_path,
        "  - {name: drop, kind: maildir, path: /x}\n"
        "  - {name: mail, kind: imap, host: h, username: u, folder: INBOX}\n"
        "  - {name: nokind, path: /y}\n"
        "  - {name: drop, kind: maildir, path: /z}\n",
    )
    from omnidesk.configload import load_config
    from omnidesk.errors import ConfigError

    with pytest.raises(ConfigError) as info:
        load_config(config)
    first = len(config.read_text("utf-8").splitlines()) - 3  # the line of connectors[0]
    problems = "\n".join(info.value.problems)
    assert f"{config}:{first + 1}: connectors[1].folder: unknown key" in problems
    assert f"{config}:{first + 2}: connectors[2].kind: required" in problems
    assert f"{config}:{first + 3}: connectors[3].name: duplicate connector 'drop'" in problems
    assert "connectors[1].imap" not in problems  # the union's member is not a key
