"""Bytes to text for email: declared charsets first, detection when they are missing or wrong.

Arabic mail is the common case here, so a cheap Arabic check (windows-1256 vs ISO-8859-6)
runs before charset-normalizer, which guesses poorly on short Arabic texts.
"""

from __future__ import annotations

import binascii
import codecs
import re

from charset_normalizer import from_bytes

_HIGH_BYTE = re.compile(rb"[\x80-\xff]")
_ARABIC = re.compile(r"[\u0600-\u06FF]")
_NON_ASCII = re.compile(r"[^\x00-\x7f]")

# Declared charsets that decode any byte without error, so a wrong label never fails loudly.
_PERMISSIVE = {"latin-1", "iso8859-1", "cp1252", "ascii", "iso8859-15", "cp1256", "iso8859-6"}
# Charsets where ASCII bytes do not mean ASCII text.
_NOT_ASCII_COMPATIBLE = ("utf-16", "utf-32", "utf-7", "cp037", "cp500")
_ARABIC_CANDIDATES = ("cp1256", "iso8859-6")


def codec_name(charset: str | None) -> str | None:
    """The Python codec for a declared charset, or None when unknown or absent."""
    if not charset:
        return None
    label = charset.strip().strip("\"'").lower()
    if label.endswith("-i") or label.endswith("-e"):  # iso-8859-6-i / -e: visual/logical variants
        label = label[:-2]
    try:
        return codecs.lookup(label).name
    except (LookupError, ValueError):
        return None


def _arabic_share(text: str) -> float:
    non_ascii = len(_NON_ASCII.findall(text))
    if not non_ascii:
        return 0.0
    return len(_ARABIC.findall(text)) / non_ascii


def detect(data: bytes) -> tuple[str, str]:
    """Decode bytes of unknown charset; returns (text, codec used)."""
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    best: tuple[float, str, str] | None = None
    for codec in _ARABIC_CANDIDATES:
        try:
            text = data.decode(codec)
        except UnicodeDecodeError:
            continue
        share = _arabic_share(text)
        if best is None or share > best[0]:
            best = (share, text, codec)
    if best is not None and best[0] >= 0.8:
        return best[1], best[2]
    try:
        match = from_bytes(data[:65536]).best()
    except Exception:  # the detector is a heuristic; never let it sink a message
        match = None
    if match is not None and match.encoding:
        try:
            return data.decode(match.encoding, "replace"), match.encoding
        except LookupError:
            pass
    return data.decode("cp1252", "replace"), "cp1252"


def decode_bytes(data: bytes, charset: str | None) -> tuple[str, str | None]:
    """Decode a body or header chunk; returns (text, defect or None).

    The defect names what went wrong with the declared charset: CharsetMissing,
    CharsetUnknown, CharsetMismatch.
    """
    codec = codec_name(charset)
    ascii_compatible = codec is None or not codec.startswith(_NOT_ASCII_COMPATIBLE)
    if ascii_compatible and not _HIGH_BYTE.search(data):
        return data.decode("ascii"), None
    if codec is None:
        text, _ = detect(data)
        return text, ("CharsetMissing" if not charset else "CharsetUnknown")
    if codec != "utf-8" and codec in _PERMISSIVE:
        # A single-byte label on bytes that are valid UTF-8 is almost always a wrong label.
        try:
            return data.decode("utf-8"), "CharsetMismatch"
        except UnicodeDecodeError:
            pass
    try:
        text = data.decode(codec)
    except UnicodeDecodeError:
        text, used = detect(data)
        return text, (None if used == codec else "CharsetMismatch")
    except LookupError:
        text, _ = detect(data)
        return text, "CharsetUnknown"
    if codec in ("latin-1", "iso8859-1", "cp1252", "ascii", "iso8859-15"):
        # Arabic windows-1256 text labelled Latin-1 by old clients.
        try:
            arabic = data.decode("cp1256")
        except UnicodeDecodeError:
            return text, None
        if _arabic_share(arabic) >= 0.8:
            return arabic, "CharsetMismatch"
    return text, None


def unescape_surrogates(value: str) -> str:
    """compat32 keeps raw 8-bit header bytes as surrogate escapes; decode them properly."""
    try:
        value.encode("utf-8")
        return value
    except UnicodeEncodeError:
        raw = value.encode("ascii", "surrogateescape")
        return decode_bytes(raw, None)[0]


_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=")
_BETWEEN_WORDS = re.compile(r"\?=\s+=\?")


def _decode_word(encoding: str, payload: str) -> bytes:
    if encoding in "bB":
        data = payload.encode("ascii", "ignore")
        data += b"=" * (-len(data) % 4)
        return binascii.a2b_base64(data)
    return binascii.a2b_qp(payload.encode("ascii", "ignore"), header=True)


def decode_header(value: str | None) -> str:
    """An unstructured header as readable text: RFC 2047 words decoded, raw 8-bit decoded,
    folding removed. Lenient: words inside quotes or glued to text are decoded too, and
    adjacent words in one charset are joined before decoding (mailers split characters)."""
    if not value:
        return ""
    if not isinstance(value, str):  # compat32 may hand back a Header object
        value = str(value)
    value = unescape_surrogates(value)
    if "=?" in value:
        value = _decode_words(_BETWEEN_WORDS.sub("?==?", value))
    return " ".join(value.split())


def _decode_words(value: str) -> str:
    out: list[str] = []
    pos = 0
    run: bytearray | None = None
    run_charset = ""
    for match in _ENCODED_WORD.finditer(value):
        charset, encoding, payload = match.groups()
        charset = charset.split("*", 1)[0].lower()  # RFC 2231 language suffix: =?utf-8*ar?B?..
        try:
            data = _decode_word(encoding, payload)
        except (binascii.Error, ValueError):
            continue  # left as written
        if run is not None and (match.start() != pos or charset != run_charset):
            out.append(decode_bytes(bytes(run), run_charset)[0])
            run = None
        if run is None:
            out.append(value[pos : match.start()])
            run, run_charset = bytearray(), charset
        run += data
        pos = match.end()
    if run is not None:
        out.append(decode_bytes(bytes(run), run_charset)[0])
    out.append(value[pos:])
    return "".join(out)
