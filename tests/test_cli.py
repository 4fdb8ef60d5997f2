"""`omnidesk check`, `route` and `schema` as an operator runs them: exit codes, stdout, and
one-line errors on stderr."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from omnidesk.cli import main

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "queue_config.yaml"
EXAMPLES = ROOT / "examples"


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def test_check_passes_on_the_reference_config(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["check", str(CONFIG)], capsys)
    assert code == 0, err
    assert "rule tests: 77 passed, 0 failed" in out
    assert "21 queues, 52 rules" in out


def test_check_names_every_problem_of_a_broken_copy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copytree(EXAMPLES, tmp_path / "examples")  # the file tests' payloads
    text = CONFIG.read_text("utf-8")
    text = text.replace("  http_port: 8080\n", "  http_port: 8080\n  colour: blue\n", 1)
    text = text.replace("queue: trademarks", "queue: nowhere", 1)
    lines = text.splitlines()
    at = next(i for i, line in enumerate(lines) if "regex:" in line)
    indent = lines[at][: len(lines[at]) - len(lines[at].lstrip())]
    lines[at] = f'{indent}regex: "(unclosed"'
    broken = tmp_path / "queue_config.yaml"
    broken.write_text("\n".join(lines) + "\n", "utf-8")
    code, _, err = run(["check", str(broken)], capsys)
    problems = err.strip().splitlines()
    assert code == 1
    assert any(p.startswith(f"{broken}:") and "service.colour: unknown key" in p for p in problems)
    assert any("queue 'nowhere' does not exist" in p for p in problems)
    assert any("bad regular expression" in p for p in problems)
    for problem in problems:
        path, line, key, _ = problem.split(":", 3)
        assert path == str(broken) and int(line) > 0 and key.strip()


def test_a_failing_rule_test_is_named_with_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copytree(EXAMPLES, tmp_path / "examples")
    text = CONFIG.read_text("utf-8").replace(
        "expect: { queue: trademarks", "expect: { queue: general", 1
    )
    config = tmp_path / "queue_config.yaml"
    config.write_text(text, "utf-8")
    code, out, err = run(["check", str(config)], capsys)
    assert code == 1
    (failure,) = err.strip().splitlines()
    assert ".expect.queue: test " in failure and "expected general, got trademarks" in failure
    assert "76 passed, 1 failed" in out


def test_route_a_web_form_prints_the_decision_with_its_trace(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(
        [
            "route",
            "--config",
            str(CONFIG),
            "--channel",
            "web",
            str(EXAMPLES / "web" / "complaint.json"),
            "--json",
        ],
        capsys,
    )
    assert code == 0
    result = json.loads(out)
    assert result["decision"]["queue"] == "consumer-complaints"
    assert result["decision"]["rule"]
    assert any(step["matched"] for step in result["decision"]["trace"])
    assert result["ticket"]["channel"] == "web" and result["ticket"]["language"] == "ar"

    code, out, _ = run(
        [
            "route",
            "--config",
            str(CONFIG),
            "--channel",
            "web",
            str(EXAMPLES / "web" / "complaint.json"),
        ],
        capsys,
    )
    assert code == 0 and "queue:      consumer-complaints" in out and "why:" in out


@pytest.mark.parametrize(
    ("channel", "sample", "queue"),
    [
        ("email", "inbox/02-complaint-electronics.eml", "consumer-complaints"),
        ("telegram", "inbox/13-app-problem.telegram.json", "eservices-support"),
        ("twitter", "inbox/24-counterfeit-jeddah.twitter.json", "fraud-reports"),
        ("whatsapp", "inbox/17-refund.whatsapp.json", "consumer-complaints"),
    ],
)
def test_route_every_channel(
    channel: str, sample: str, queue: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(
        ["route", "--config", str(CONFIG), "--channel", channel, str(EXAMPLES / sample), "--json"],
        capsys,
    )
    assert code == 0
    assert json.loads(out.splitlines()[0])["decision"]["queue"] == queue


def test_route_skips_a_delivery_status(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        [
            "route",
            "--config",
            str(CONFIG),
            "--channel",
            "whatsapp",
            str(EXAMPLES / "inbox" / "37-delivery-status.whatsapp.json"),
        ],
        capsys,
    )
    assert code == 0 and json.loads(out) == {"skipped": "delivery_status"}


def test_route_bad_input_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(
        [
            "route",
            "--config",
            str(CONFIG),
            "--channel",
            "web",
            str(EXAMPLES / "inbox" / "36-broken.web.json"),
        ],
        capsys,
    )
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "not JSON" in err


def test_route_replays_a_folder_with_a_summary(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["route", "--config", str(CONFIG), str(EXAMPLES / "inbox")], capsys)
    lines = [json.loads(line) for line in out.splitlines()]
    summary = lines[-1]["summary"]
    assert code == 2  # the broken sample
    assert summary["files"] == 37 and summary["bad"] == 1 and summary["skipped"] == 1
    assert sum(summary["queues"].values()) == 35
    assert any(line.get("error") for line in lines[:-1])


def test_schema_is_json_schema_of_the_config(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["schema"], capsys)
    schema = json.loads(out)
    assert code == 0 and {"queues", "rules", "calendars"} <= set(schema["properties"])


def test_no_traceback_without_debug(tmp_path: Path) -> None:
    """A real process: a payload it cannot read is one line on stderr, no traceback."""
    bad = tmp_path / "x.eml"
    bad.write_bytes(b"")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "omnidesk",
            "route",
            "--config",
            str(CONFIG),
            "--channel",
            "email",
            str(bad),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=60,
    )
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
