"""bench/normalize.py stays runnable and honest: a small run checks the subject and text of
every message on every side before timing it and ends with its JSON figures; a side that
extracts the wrong subject or text stops the run instead of scoring."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import connectors.web
from connectors.email import normalize as normalize_email

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench" / "normalize.py"
KEYS = {"email_per_s", "modern_parse_per_s", "floor_per_s", "ratio_vs_modern",
        "ratio_vs_floor", "json_per_s"}  # fmt: skip
SMALL = ["--emails", "12", "--json", "2", "--seconds", "0.05", "--rounds", "1"]


@pytest.fixture(scope="module")
def bench() -> Iterator[ModuleType]:
    """The script as a module (bench/ is no package); dataclasses need it in sys.modules."""
    spec = importlib.util.spec_from_file_location("bench_normalize", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[spec.name]


def test_small_run_checks_every_side_and_prints_its_json_line() -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH), *SMALL], cwd=ROOT, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    assert "subject and text checked on all 12 e-mails, every side" in lines
    figures = json.loads(lines[-1])
    assert set(figures) == KEYS
    assert figures["email_per_s"] > 0 and figures["json_per_s"] > 0


def test_the_expected_values_do_not_come_from_our_normalizer(bench: ModuleType) -> None:
    """The generator's expectations are its own inputs: e.g. the windows-1256 subject is the
    Arabic word it encoded, and the HTML-only body a plain parse gives is the HTML it wrote."""
    samples = bench.make_emails(12)
    subjects = {expected.subject for _, expected in samples}
    assert subjects <= {text for _, text in bench.SUBJECTS}
    html_only = [expected for i, (_, expected) in enumerate(samples) if i % 6 == 3]
    assert html_only and all(e.body.startswith("<html>") for e in html_only)
    assert all("<" not in e.text for e in html_only)


def latin1_floor(raw: bytes) -> tuple[str, str]:
    """A fast parse that ignores the declared charset: Arabic comes out as mojibake."""
    import email
    import email.header

    msg = email.message_from_bytes(raw)
    subject = str(email.header.make_header(email.header.decode_header(msg["subject"] or "")))
    for part in msg.walk():
        if part.get_content_maintype() == "text":
            return subject, (part.get_payload(decode=True) or b"").decode("latin-1")
    return subject, ""


def raw_subject_floor(raw: bytes) -> tuple[str, str]:
    """Right body, but the subject left as its RFC 2047 encoded words."""
    import email

    msg = email.message_from_bytes(raw)
    return str(msg["subject"] or ""), _body(msg)


def _body(msg: Any) -> str:
    for part in msg.walk():
        if part.get_content_maintype() == "text":
            data = part.get_payload(decode=True) or b""
            return data.decode(part.get_content_charset() or "utf-8", "replace")
    return ""


@pytest.mark.parametrize(
    ("side", "wrong"), [(latin1_floor, "wrong text"), (raw_subject_floor, "wrong subject")]
)
def test_a_side_that_extracts_garbage_stops_the_run(
    bench: ModuleType, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, side: Any,
    wrong: str,
) -> None:  # fmt: skip
    monkeypatch.setattr(bench, "floor_parse", side)
    with pytest.raises(SystemExit) as stopped:
        bench.main(SMALL)
    assert stopped.value.code != 0
    assert "compat32 floor" in str(stopped.value.code) and wrong in str(stopped.value.code)
    assert "{" not in capsys.readouterr().out  # no figures were printed


def test_our_normalizer_returning_garbage_fails_too(
    bench: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    def lossy(raw: bytes) -> tuple[str, str]:  # drops the last line of every body
        inbound = normalize_email(raw)
        return inbound.subject, "\n".join(inbound.text.splitlines()[:-1])

    monkeypatch.setattr(bench, "ours", lossy)
    with pytest.raises(SystemExit) as stopped:
        bench.main(SMALL)
    assert "email normalize: message 0: wrong text" in str(stopped.value.code)


def test_a_json_normalizer_returning_the_wrong_text_fails(
    bench: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = connectors.web.normalize

    def swapped(payload: Any, **kwargs: Any) -> Any:
        inbound = real(payload, **kwargs)
        inbound.text, inbound.subject = inbound.subject, inbound.text
        return inbound

    monkeypatch.setattr(connectors.web, "normalize", swapped)
    with pytest.raises(SystemExit) as stopped:
        bench.main(SMALL)
    assert "web normalize: message 0: wrong subject" in str(stopped.value.code)


@pytest.mark.parametrize("channel", ["telegram", "twitter"])
def test_a_json_side_that_fails_to_import_stops_the_run(
    bench: ModuleType, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture,
    channel: str,
) -> None:  # fmt: skip
    """A None entry in sys.modules makes `import connectors.<channel>` raise ImportError, as
    a broken or absent module would: the run says which side and prints no figures."""
    monkeypatch.setitem(sys.modules, f"connectors.{channel}", None)
    with pytest.raises(SystemExit) as stopped:
        bench.main(SMALL)
    message = str(stopped.value.code)
    assert stopped.value.code not in (0, None)
    assert f"{channel} normalize: connectors.{channel}.normalize cannot be loaded" in message
    assert "ImportError" in message or "ModuleNotFoundError" in message
    assert "{" not in capsys.readouterr().out  # no figures were printed


def test_a_json_side_without_a_normalize_stops_the_run(
    bench: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delattr(connectors.web, "normalize")
    with pytest.raises(SystemExit) as stopped:
        bench.main(SMALL)
    assert "web normalize: connectors.web.normalize cannot be loaded" in str(stopped.value.code)
    assert "AttributeError" in str(stopped.value.code)
