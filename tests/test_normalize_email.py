"""Every email fixture normalizes to the fields its row in expected.json names."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from connectors.email import EmailLimits, find_ticket_ref, format_ticket_ref, normalize
from connectors.email.threading import tag_subject
from omnidesk.errors import PayloadError
from omnidesk.model import Channel, IdentityKind, Inbound
from omnidesk.text import mask_pii

FIXTURES = Path(__file__).parent / "fixtures" / "email"
EXPECTED: dict[str, dict] = json.loads((FIXTURES / "expected.json").read_text())


def test_corpus_is_complete() -> None:
    names = {p.stem for p in FIXTURES.glob("*.eml")}
    assert names == set(EXPECTED)
    assert len(names) >= 60


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture(name: str) -> None:
    expect = EXPECTED[name]
    raw = (FIXTURES / f"{name}.eml").read_bytes()
    if "error" in expect:
        with pytest.raises(PayloadError) as caught:
            normalize(raw)
        assert caught.value.reason == expect["error"]
        return
    inbound = normalize(raw, account="care")
    assert isinstance(inbound, Inbound)
    assert inbound.channel == Channel.EMAIL and inbound.account == "care"
    _check(inbound, expect)


def _bounce(msg: Inbound) -> dict[str, Any] | None:
    if msg.bounce is None:
        return None
    return {"recipient": msg.bounce.recipient, "status": msg.bounce.status,
            "action": msg.bounce.action}  # fmt: skip


# Expectation keys whose value must equal what the getter reads off the message.
_EQUALS: dict[str, Callable[[Inbound], Any]] = {
    "subject": lambda m: m.subject,
    "from_email": lambda m: m.author.identity(IdentityKind.EMAIL),
    "from_name": lambda m: m.author.name,
    "language": lambda m: m.language.value,
    "text": lambda m: m.text,
    "html_text": lambda m: m.html_text,
    "quoted": lambda m: m.quoted,
    "signature": lambda m: m.signature,
    "thread_keys": lambda m: m.thread_keys,
    "thread_keys_len": lambda m: len(m.thread_keys),
    "external_id": lambda m: m.external_id,
    "message_keys": lambda m: m.message_keys,
    "segment": lambda m: m.segment_hint.value,
    "inline_count": lambda m: sum(a.inline for a in m.attachments),
    "bounce": _bounce,
    "flags": lambda m: sorted(f.value for f in m.flags),
}
_ATTACHMENT_ATTRS = {"attachment_sha": "sha256", "attachment_size": "size",
                     "attachment_types": "content_type"}  # fmt: skip


def _check(msg: Inbound, expect: dict) -> None:
    for key, want in expect.items():
        if key in _EQUALS:
            assert _EQUALS[key](msg) == (sorted(want) if key == "flags" else want), key
        elif not (_check_snippets(msg, key, want) or _check_attachments(msg, key, want)):
            _check_other(msg, key, want)


def _check_snippets(msg: Inbound, key: str, want: list[str]) -> bool:
    """The snippet keys (`<field>_contains`, text_absent, masked_absent); False for others."""
    if key.endswith("_contains") and key != "defects_contains":
        field = key.removesuffix("_contains")
        for snippet in want:
            assert snippet in getattr(msg, field), (field, snippet, getattr(msg, field))
    elif key in ("text_absent", "masked_absent"):
        text = msg.text if key == "text_absent" else mask_pii(msg.text)
        for snippet in want:
            assert snippet not in text, (key, snippet)
    else:
        return False
    return True


def _check_attachments(msg: Inbound, key: str, want: Any) -> bool:
    """The attachment keys (names, and sha256, size or type by name); False for others."""
    if key == "attachments":
        assert sorted(a.filename for a in msg.attachments) == sorted(want)
    elif key in _ATTACHMENT_ATTRS:
        got = {a.filename: getattr(a, _ATTACHMENT_ATTRS[key]) for a in msg.attachments}
        for filename, value in want.items():
            assert got[filename] == value
    else:
        return False
    return True


def _check_other(msg: Inbound, key: str, want: Any) -> None:
    if key == "defects_contains":
        assert set(want) <= set(msg.defects), msg.defects
    elif key == "defects_absent":
        assert not set(want) & set(msg.defects), msg.defects
    elif key == "thread_keys_first":
        assert msg.thread_keys[: len(want)] == want
    elif key == "external_id_prefix":
        assert msg.external_id.startswith(want)
    elif key == "hints":
        assert want.items() <= msg.hints.items(), msg.hints
    elif key == "meta":
        assert want.items() <= msg.meta.items(), msg.meta
    else:
        raise AssertionError(f"unknown expectation key {key}")


def test_every_fixture_is_json_serializable_and_dated() -> None:
    from omnidesk.model import from_json, to_json

    for name, expect in EXPECTED.items():
        if "error" in expect:
            continue
        inbound = normalize((FIXTURES / f"{name}.eml").read_bytes())
        assert from_json(to_json(inbound), Inbound) == inbound
        assert inbound.received_at.tzinfo is not None
        assert inbound.raw_ref and len(inbound.raw_ref) == 64


def test_date_header_is_only_the_sent_at_fact() -> None:
    """The sender writes Date:, so it is never the message's time: that is when the mail
    reached us (given by the connector, else now)."""
    raw = (FIXTURES / "plain_ascii_en.eml").read_bytes()
    before = datetime.now(UTC)
    inbound = normalize(raw)
    assert inbound.sent_at == datetime(2026, 1, 4, 7, 0, tzinfo=UTC)
    assert before <= inbound.received_at <= datetime.now(UTC)
    given = datetime(2026, 2, 1, tzinfo=UTC)
    assert normalize(raw, received_at=given).received_at == given
    undated = raw.replace(b"Date: Sun, 04 Jan 2026 10:00:00 +0300\n", b"")
    assert undated != raw
    missing = normalize(undated, received_at=given)
    assert missing.sent_at is None and "DateMissing" in missing.defects


def test_too_large_is_a_payload_error() -> None:
    raw = (FIXTURES / "plain_ascii_en.eml").read_bytes()
    with pytest.raises(PayloadError) as caught:
        normalize(raw, limits=EmailLimits(max_raw_bytes=100))
    assert caught.value.reason == "too_large"
    assert "100 byte limit" in str(caught.value)


def test_long_text_is_truncated_with_a_defect() -> None:
    raw = b"From: a@b.example\nSubject: long\n\n" + b"word " * 50_000
    inbound = normalize(raw, limits=EmailLimits(max_text_chars=1000))
    assert len(inbound.text) <= 1000
    assert "TextTruncated" in inbound.defects


def test_huge_subject_is_truncated_with_a_defect() -> None:
    inbound = normalize(b"From: a@b.example\nSubject: " + b"x" * 100_000 + b"\n\nbody")
    assert len(inbound.subject) == 998
    assert "SubjectTruncated" in inbound.defects


def test_deep_nesting_is_a_payload_error_not_a_crash() -> None:
    parts = b"".join(
        b'Content-Type: multipart/mixed; boundary="L%d"\n\n--L%d\n' % (i, i) for i in range(2000)
    )
    with pytest.raises(PayloadError) as caught:
        normalize(b"From: a@b.example\nSubject: deep\n" + parts + b"\nx\n")
    assert caught.value.reason == "unparseable"


def test_non_bytes_is_rejected() -> None:
    with pytest.raises(PayloadError) as caught:
        normalize("From: a@b\n\nx")  # type: ignore[arg-type]
    assert caught.value.reason == "not_bytes"


def test_ticket_reference_round_trip() -> None:
    tag = format_ticket_ref("OD-2026-000123")
    assert tag == "[#OD-2026-000123]"
    assert find_ticket_ref(f"Re: طلب {tag}") == "OD-2026-000123"
    assert find_ticket_ref("Re: [# od-2026-000123 ]") == "OD-2026-000123"
    assert find_ticket_ref("no reference OD-2026-000123") is None
    assert tag_subject(f"Re: x {tag}", "OD-2026-000123") == f"Re: x {tag}"
    assert tag_subject("Re: x", "OD-2026-000123") == f"Re: x {tag}"


_HEAD = b"From: a@b.example\nSubject: x\nDate: Sun, 04 Jan 2026 10:00:00 +0300\n"


@pytest.mark.parametrize(
    ("where", "raw"),
    [
        (
            "a filename",
            _HEAD + b"Content-Type: multipart/mixed; boundary=X\n\n--X\n"
            b"Content-Type: text/plain\n\nsee the file\n--X\n"
            b"Content-Type: application/pdf\nContent-Disposition: attachment;\n"
            b" filename*0*=utf-8''%D8%B3%D8%AC%D9%84%20;\n filename*=x;\n"
            b" filename*1*=%D8%AA.pdf\n\nJVBERi0=\n--X--\n",
        ),
        ("a charset", _HEAD + b"Content-Type: text/plain; charset*=utf-8; charset*1=x\n\nsee\n"),
        (
            "a boundary",
            _HEAD + b"Content-Type: multipart/mixed; boundary*=X; boundary*1=Y\n\n"
            b"--X\nContent-Type: text/plain\n\nsee the boundary\n--X--\n",
        ),
    ],
)
def test_mixed_rfc2231_sections_are_a_defect_not_a_crash(where: str, raw: bytes) -> None:
    """`name*` beside `name*1` makes Python 3.11's decoder raise TypeError (gh-134151), in
    the parser itself for a boundary. Found by test_mutated_fixtures."""
    inbound = normalize(raw)
    assert isinstance(inbound, Inbound)
    assert "ParameterContinuationDefect" in inbound.defects
    assert "see" in inbound.text  # a multipart without a usable boundary reads as text
    assert [a.content_type for a in inbound.attachments] == (
        ["application/pdf"] if where == "a filename" else []
    )


def test_obsolete_from_is_not_taken_for_an_mbox_envelope_line() -> None:
    """`From  : x` on the first line looks like mbox's `From sender date` to the stdlib."""
    inbound = normalize(b"From  : Huda <huda@example.sa>\nSubject: hi\n\nbody\n")
    assert inbound.author.identity(IdentityKind.EMAIL) == "huda@example.sa"
    assert inbound.author.name == "Huda" and inbound.subject == "hi"
    assert "ObsoleteHeaderSyntax" in inbound.defects
    mbox = normalize(b"From huda@example.sa Sun Jan  4 10:00:00 2026\nFrom: huda@example.sa\n\nx")
    assert mbox.author.identity(IdentityKind.EMAIL) == "huda@example.sa"
    assert "ObsoleteHeaderSyntax" not in mbox.defects


def test_a_utf16_reading_is_never_guessed_for_header_bytes() -> None:
    """charset-normalizer reads these bytes as UTF-16 (CJK); a header never gets that."""
    from charset_normalizer import from_bytes

    from connectors.email.charsets import detect

    data = b"\xb0\xcd\xc8\xffa\xe4"
    assert from_bytes(data).best().encoding.startswith("utf_16")  # the trap is real
    text, codec = detect(data, header=True)
    assert codec == "cp1252" and text == data.decode("cp1252")
    subject = normalize(b"From: a@b.example\nSubject: " + data + b"\n\nx\n").subject
    assert not any("\u3000" <= ch <= "\u9fff" or "\uac00" <= ch <= "\ud7af" for ch in subject)


def test_raw_iso_2022_jp_in_a_header_decodes() -> None:
    subject = "登録の更新".encode("iso-2022-jp")
    inbound = normalize(b"From: a@b.example\nSubject: " + subject + b"\n\nx\n")
    assert inbound.subject == "登録の更新"
