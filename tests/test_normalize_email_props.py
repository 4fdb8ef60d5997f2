"""Property tests: whatever bytes arrive, the email normalizer returns an Inbound or raises
PayloadError, never anything else."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.email import normalize
from connectors.email.charsets import decode_header
from connectors.email.split import split_body
from omnidesk.errors import PayloadError
from omnidesk.model import Inbound, Skipped, from_json, to_json

FIXTURES = sorted((Path(__file__).parent / "fixtures" / "email").glob("*.eml"))
RAWS = [p.read_bytes() for p in FIXTURES]
PROPS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Bytes that matter to MIME parsing, so mutations hit boundaries, encodings and headers.
TOKENS = [
    b"\n",
    b"\r\n",
    b"--",
    b"=?",
    b"?=",
    b"?B?",
    b"?Q?",
    b"=\n",
    b":",
    b";",
    b'"',
    b"<",
    b">",
    b"boundary=",
    b"charset=",
    b"Content-Type: multipart/mixed; boundary=X\n",
    b"Content-Transfer-Encoding: base64\n",
    b"filename*0*=",
    b"%D8",
    b"\xd8",
    b"\xc7\xe1",
    b"\x00",
    b"\xff\xfe",
    b"message/rfc822",
    b"message/delivery-status",
    b"=?utf-8?B?2LM=?=",
]


def check(raw: bytes) -> None:
    try:
        result = normalize(raw)
    except PayloadError as exc:
        assert exc.reason and str(exc) and "\n" not in str(exc)
        return
    assert isinstance(result, Inbound | Skipped)
    if isinstance(result, Inbound):
        assert from_json(to_json(result), Inbound) == result  # always storable
        assert result.external_id


@PROPS
@given(st.binary(max_size=4096))
def test_random_bytes(raw: bytes) -> None:
    check(raw)


@PROPS
@given(st.binary(max_size=2048))
def test_random_body_after_real_headers(body: bytes) -> None:
    check(b"From: a@b.example\nSubject: x\nContent-Type: multipart/mixed; boundary=X\n\n" + body)


@PROPS
@given(
    st.sampled_from(RAWS),
    st.lists(
        st.tuples(
            st.floats(0, 1),
            st.sampled_from(["insert", "delete", "flip", "truncate"]),
            st.one_of(st.sampled_from(TOKENS), st.binary(min_size=1, max_size=8)),
        ),
        min_size=1,
        max_size=6,
    ),
)
def test_mutated_fixtures(raw: bytes, edits: list[tuple[float, str, bytes]]) -> None:
    data = bytearray(raw)
    for where, op, chunk in edits:
        at = int(where * len(data))
        if op == "insert":
            data[at:at] = chunk
        elif op == "delete":
            del data[at : at + len(chunk) * 4]
        elif op == "flip" and at < len(data):
            data[at] ^= chunk[0] or 0x80
        elif op == "truncate":
            del data[at:]
    check(bytes(data))


@PROPS
@given(st.text(max_size=300))
def test_header_decoding_never_raises(value: str) -> None:
    assert isinstance(decode_header(value), str)
    assert isinstance(decode_header("=?utf-8?B?" + value + "?="), str)


@PROPS
@given(st.text(max_size=500))
def test_split_keeps_every_word(body: str) -> None:
    text, quoted, signature = split_body(body)
    assert "".join(body.split()) == "".join((text + quoted + signature).split()) or (
        # a bare forward keeps the whole body as the new text
        "".join(text.split()) == "".join(body.split())
    )
