"""The reference queue_config.yaml copied to a folder of its own, as an operator deploys it:
`omnidesk check` names the rule tests it cannot run there (and passes when told to accept
that, with the very command it prints), and `omnidesk run` starts, saying the same in its
log instead of refusing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.services import free_port, wait_for

ROOT = Path(__file__).resolve().parent.parent


def omnidesk(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "omnidesk", *args],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def deployed(tmp_path: Path) -> Path:
    """The reference config alone in /etc-like folder, no examples/ beside it."""
    folder = tmp_path / "etc-omnidesk"
    folder.mkdir()
    shutil.copy(ROOT / "queue_config.yaml", folder / "queue_config.yaml")
    return folder


def test_check_of_a_copied_config_names_the_skipped_tests_and_the_command_to_accept_them(
    deployed: Path,
) -> None:
    done = omnidesk("check", "queue_config.yaml", cwd=deployed)
    assert done.returncode == 1, done.stderr
    assert "no such file 'examples/inbox/01-cr-renewal.eml' beside the config" in done.stderr
    assert "skipped" in done.stdout
    hint = next(line for line in done.stderr.splitlines() if "--allow-missing-files" in line)
    command = hint.split("accept with: ", 1)[1].rstrip(")")
    accepted = subprocess.run(  # the printed command, run by a shell as it is, elsewhere
        ["bash", "-c", command], cwd=deployed.parent, capture_output=True, text=True, timeout=60
    )
    assert accepted.returncode == 0, accepted.stderr
    assert " 0 failed, 11 skipped" in accepted.stdout


@pytest.fixture
def running(deployed: Path, prefix: str) -> Iterator[tuple[subprocess.Popen[bytes], int, Path]]:
    port = free_port()
    config = deployed / "queue_config.yaml"
    text = config.read_text("utf-8")
    # only what two daemons on one machine cannot share: the Redis key prefix and the port
    text = text.replace("  key_prefix: od\n", f"  key_prefix: {prefix}\n", 1)
    text = text.replace("  http_port: 8080\n", f"  http_port: {port}\n", 1)
    config.write_text(text, "utf-8")
    log = deployed / "daemon.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "omnidesk", "--log-level", "INFO", "run", "--workers", "1"],
        cwd=deployed,  # ./queue_config.yaml, ./state: the folder it was copied to
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=log.open("ab"),
    )
    try:
        yield proc, port, log
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def health(port: int) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())
    except OSError:
        return 0, {}


def test_run_of_a_copied_config_starts_and_logs_the_skipped_tests(
    running: tuple[subprocess.Popen[bytes], int, Path],
) -> None:
    proc, port, log = running
    assert wait_for(lambda: proc.poll() is not None or health(port)[0] in (200, 503), 60)
    assert proc.poll() is None, log.read_text()
    text = log.read_text("utf-8")
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    skipped = [
        line["msg"] for line in lines if line["level"] == "warning" and "skipped" in line["msg"]
    ]
    assert len(skipped) == 11, text[-3000:]
    assert "examples/inbox/01-cr-renewal.eml" in skipped[0]
    # its reports' SMTP relay (smtp.moc.example.sa) is not there: /healthz says so
    assert wait_for(lambda: "report_mail_down" in health(port)[1].get("degraded", []), 90), (
        log.read_text()[-3000:]
    )
    status, report = health(port)
    assert status == 200 and report["status"] == "degraded"
    assert "smtp.moc.example.sa" in report["reports"]["error"]  # type: ignore[index]
