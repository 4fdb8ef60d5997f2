"""Property tests: whatever bytes arrive, the email normalizer returns an Inbound or raises
PayloadError, never anything else."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.email import normalize
from connectors.email.charsets import decode_bytes, decode_header, detect
from connectors.email.normalize import _author_fast, _author_parsed
from connectors.email.split import split_body
from omnidesk.errors import PayloadError
from omnidesk.model import IdentityKind, Inbound, Skipped, from_json, to_json

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


# --- issue 14: the charset guesses and header repairs, over generated text -------------------
ACCENTED = "àáâãäåæçèéêëìíîïñòóôõöøùúûüýÿßÀÁÂÄÅÆÇÈÉÊËÌÍÎÏÑÒÓÔÖØÙÚÛÜÝ"
ASCII_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
# Arabic letters windows-1256 and ISO-8859-6 both have
ARABIC_LETTERS = "ءآأؤإئابةتثجحخدذرزسشصضطظعغفقكلمنهوي"


def _latin_word(ascii_part: str, accents: str, at: int) -> str:
    """An ASCII word with a few accented letters set into it (Jørn, Peña, façade)."""
    at = at % (len(ascii_part) + 1)
    return ascii_part[:at] + accents + ascii_part[at:]


latin_words = st.builds(
    _latin_word,
    st.text(ASCII_LETTERS, min_size=1, max_size=8),
    st.text(ACCENTED, max_size=2),
    st.integers(0, 8),
)
latin_texts = st.lists(latin_words, min_size=1, max_size=12).map(" ".join)
arabic_texts = st.lists(
    st.text(ARABIC_LETTERS, min_size=2, max_size=8), min_size=1, max_size=12
).map(" ".join)


@PROPS
@given(latin_texts, st.sampled_from(["iso-8859-1", "windows-1252", "latin1", None]))
def test_latin_text_is_never_read_as_arabic(text: str, charset: str | None) -> None:
    """Latin-1 words with a few accents decode as themselves, labelled or not: the Arabic
    reading makes lone letters and marks inside Latin words, never Arabic words."""
    decoded, defect = decode_bytes(text.encode("latin-1"), charset)
    assert decoded == text
    assert defect != "CharsetMismatch"


def _with_lone_letters(pairs: list[tuple[str, str]], last: str) -> str:
    """Latin words with one-letter accented words between them ("Merci à vous")."""
    return " ".join(w for word, lone in pairs for w in (word, lone) if w) + " " + last


lone_letters = st.sampled_from(["à", "À", "ó", "é", "É", "ù", "ý", "Ó", ""])
french_texts = st.builds(
    _with_lone_letters,
    st.lists(st.tuples(latin_words, lone_letters), min_size=1, max_size=8),
    latin_words,
)


@PROPS
@given(
    french_texts,
    st.booleans(),
    st.sampled_from(["windows-1252", None]),
)
def test_latin_with_one_letter_words_is_never_read_as_arabic(
    text: str, upper: bool, charset: str | None
) -> None:
    """ "Merci à vous", "Réponse à votre demande", "ÉTÉ À PARIS": one-letter accented words
    and capitals decode as themselves, never as Arabic (ﻓ, ŕ) nor as half-width katakana."""
    if upper:
        text = text.upper()
    decoded, defect = decode_bytes(text.encode("cp1252"), charset)
    assert decoded == text
    assert defect != "CharsetMismatch"


def test_french_with_one_letter_words_unlabelled() -> None:
    for text in ("Merci à vous", "Réponse à votre demande", "ÉTÉ À PARIS"):
        for charset in ("latin-1", "cp1252"):
            assert detect(text.encode(charset)) == (text, "cp1252")


@PROPS
@given(arabic_texts, st.sampled_from(["iso-8859-1", "windows-1252", None]))
def test_windows_1256_arabic_is_still_repaired(text: str, charset: str | None) -> None:
    """Arabic in windows-1256, labelled Latin-1 by an old client or not labelled at all."""
    decoded, defect = decode_bytes(text.encode("cp1256"), charset)
    assert decoded == text
    assert defect == ("CharsetMismatch" if charset else "CharsetMissing")


@PROPS
@given(st.binary(min_size=1, max_size=64))
def test_header_bytes_are_never_guessed_utf16(data: bytes) -> None:
    """A UTF-16 reading of 8-bit header bytes is CJK garbage: never guessed for a header."""
    text, codec = detect(data, header=True)
    assert not codec.startswith(("utf_16", "utf_32", "utf-16", "utf-32"))
    assert isinstance(text, str)


KANA = "".join(chr(c) for c in range(0x3041, 0x3094)) + "".join(
    chr(c) for c in range(0x30A1, 0x30F7)
)


@PROPS
@given(st.text(KANA + "登録更新問合 。、", min_size=1, max_size=60))
def test_iso_2022_jp_decodes_labelled_or_not(text: str) -> None:
    data = text.encode("iso-2022-jp")
    assert decode_bytes(data, "ISO-2022-JP") == (text, None)
    assert decode_bytes(data, None)[0] == text


header_names = st.sampled_from(["To", "Cc", "Reply-To", "X-Mailer", "MIME-Version", "Received"])
stray_lines = st.text(ASCII_LETTERS + " .,;-()[]0123456789", min_size=1, max_size=40).filter(
    lambda s: s[0] not in " \t" and not s.startswith("From ") and s.strip()
)


@PROPS
@given(
    st.lists(header_names, min_size=2, max_size=8),
    stray_lines,
    st.integers(0, 7),
    st.text(" \t", max_size=3),
)
def test_stray_and_obsolete_header_lines_keep_the_headers(
    names: list[str], stray: str, at: int, space: str
) -> None:
    """A stray line anywhere in the header block, and white space before a colon (RFC 5322
    section 4.5), never lose From, Subject or Date."""
    lines = [f"{n}{space}: v{i}" for i, n in enumerate(names)]
    lines.insert(at % len(lines), stray)
    raw = (
        "\n".join(lines)
        + f"\nFrom{space}: Huda <huda@example.sa>\nSubject{space}: Renewal\n"
        + "Date: Sun, 04 Jan 2026 10:00:00 +0300\n\nThe body.\n"
    ).encode()
    inbound = normalize(raw)
    assert isinstance(inbound, Inbound)
    assert inbound.author.identity(IdentityKind.EMAIL) == "huda@example.sa"
    assert inbound.subject == "Renewal"
    assert inbound.sent_at is not None
    assert inbound.text == "The body."


display_names = st.text(
    ASCII_LETTERS + " .-'" + ARABIC_LETTERS + "éñ", min_size=1, max_size=30
).filter(lambda s: s.strip() == s and s)
addresses = st.builds(
    "{}@{}.{}".format,
    st.text("abcdefghijklmnopqrstuvwxyz0123456789._-", min_size=1, max_size=12).filter(
        lambda s: s[0] not in "." and s[-1] != "." and ".." not in s
    ),
    st.text("abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=12),
    st.sampled_from(["com", "sa", "gov.sa", "org"]),
)


@PROPS
@given(display_names, addresses, st.sampled_from(['"{n}" <{a}>', "{n} <{a}>", "{a}", "<{a}>"]))
def test_from_fast_path_agrees_with_the_stdlib_parser(name: str, addr: str, shape: str) -> None:
    """The regex fast path for From: reads what `email.utils.getaddresses` reads."""
    value = shape.format(n=name.replace("\\", "\\\\").replace('"', '\\"'), a=addr)
    fast = _author_fast(value)
    assert fast is not None
    assert fast == _author_parsed(value)
    assert fast.identity(IdentityKind.EMAIL) == addr.lower()


@PROPS
@given(st.lists(addresses, min_size=1, max_size=4), st.sampled_from([" ", "  ", " \t"]))
def test_addresses_without_commas_are_all_kept(addrs: list[str], gap: str) -> None:
    raw = f"From: {gap.join(addrs)}\nSubject: x\n\nbody\n".encode()
    inbound = normalize(raw)
    assert isinstance(inbound, Inbound)
    assert inbound.author.identity(IdentityKind.EMAIL) == addrs[0].lower()
    others = [a.lower() for a in addrs[1:] if a.lower() != addrs[0].lower()]
    assert inbound.meta.get("from_others", "") == ",".join(dict.fromkeys(others))


param_values = st.one_of(
    st.sampled_from(["utf-8", "UTF-8", "windows-1256", "ISO-8859-6", "us-ascii", "x.txt"]),
    st.text("abcdefgXYZ0123456789-_.; =", min_size=1, max_size=20),
)
param_names = st.sampled_from(["charset", "name", "format", "xcharset", "delsp", "CHARSET"])


@PROPS
@given(
    st.sampled_from(["text/plain", "text/html", "TEXT/PLAIN"]),
    st.lists(st.tuples(param_names, param_values, st.booleans()), max_size=4),
    st.sampled_from([";", "; ", " ;\t"]),
)
def test_charset_fast_path_agrees_with_the_stdlib(
    ctype: str, params: list[tuple[str, str, bool]], sep: str
) -> None:
    """The regex that reads a part's charset agrees with `get_content_charset()`."""
    import email
    from email.policy import compat32

    from connectors.email.normalize import _charset

    header = ctype + "".join(
        f'{sep}{name}="{value}"' if quoted or not value.strip(" ;=") else f"{sep}{name}={value}"
        for name, value, quoted in params
    )
    part = email.message_from_string(f"Content-Type: {header}\n\nx", policy=compat32)
    assert _charset(part) == part.get_content_charset()
