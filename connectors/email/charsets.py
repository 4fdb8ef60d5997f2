"""Bytes to text for email: declared charsets first, detection when they are missing or wrong.

Arabic mail is the common case here, so cheap Arabic and Latin checks (does the reading form
words of its script?) run before charset-normalizer, which guesses poorly on short texts.
"""

from __future__ import annotations

import binascii
import codecs
import re

from charset_normalizer import from_bytes

_HIGH_BYTE = re.compile(rb"[\x80-\xff]")
_NON_ASCII = re.compile(r"[^\x00-\x7f]")
# Arabic letters, and the marks (harakat, tatweel) that sit on them.
_AR_LETTER = "\u0621-\u063a\u0641-\u064a\u0671-\u06d3\u06fa-\u06fc"
_AR_MARK = "\u0640\u064b-\u065f\u0670"
_LATIN_LETTER = "A-Za-z\u00c0-\u024f"
# An Arabic word: two or more Arabic letters (marks between them), not glued to Latin
# letters. A Latin text misread as Arabic gives lone letters and marks inside Latin words.
_ARABIC_WORD = re.compile(
    f"(?<![{_LATIN_LETTER}])(?:[{_AR_LETTER}][{_AR_MARK}]*){{2,}}(?![{_LATIN_LETTER}])"
)
# An accented Latin letter (or typographic mark) inside a word of ASCII letters.
_LATIN_IN_WORD = re.compile(
    "(?<=[A-Za-z])[\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u00ff\u0152\u0153\u0160\u0161"
    "\u017d\u017e\u0178]+|[\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u00ff\u0152\u0153"
    "\u0160\u0161\u017d\u017e\u0178]+(?=[A-Za-z])"
)
_ACCENTED = re.compile(
    "[\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u00ff\u0152\u0153\u0160\u0161\u017d\u017e\u0178]"
)
_HAS_ASCII_LETTER = re.compile("[A-Za-z]")
_ASCII_PUNCTUATION = "\"'()[]{}<>,.;:!?-"
# Non-letters a Western text carries: NBSP, ¡ ¿ « » ° £ € quotes, dashes, ellipsis, ...
_LATIN_PUNCTUATION = re.compile("[\u00a0-\u00bf\u00d7\u00f7\u2013\u2014\u2018-\u201e\u2026\u20ac]")
_CLEARLY = 0.8  # the share of non-ASCII characters a reading must explain to be taken
# Unlabelled text whose cp1252 reading explains this much as Latin is read so, unless the
# Arabic reading explains more: charset-normalizer reads "Merci à vous" as cp1006 Urdu.
_FAIRLY = 0.5

# Declared charsets that decode any byte without error, so a wrong label never fails loudly.
_PERMISSIVE = {"latin-1", "iso8859-1", "cp1252", "ascii", "iso8859-15", "cp1256", "iso8859-6"}
_WESTERN = ("latin-1", "iso8859-1", "cp1252", "ascii", "iso8859-15")
# Charsets where ASCII bytes do not mean ASCII text.
_NOT_ASCII_COMPATIBLE = ("utf-16", "utf-32", "utf-7", "cp037", "cp500")
# 7-bit charsets that switch character sets with ESC sequences (RFC 1468 and relatives).
_ESCAPE_CODECS = ("iso2022", "hz", "utf-7")
_ISO2022_JP = re.compile(rb"\x1b(?:\$[@B]|\$\(D|\(J|\(I)")
_ARABIC_CANDIDATES = ("cp1256", "iso8859-6")
_UTF16_BOM = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE, codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)


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


def arabic_score(text: str) -> float:
    """Share of the non-ASCII characters that belong to Arabic words. Mis-labelled Arabic
    scores near 1; Latin text read as Arabic ("Jّrn Stّylen", "Peٌa") scores near 0."""
    non_ascii = len(_NON_ASCII.findall(text))
    if not non_ascii:
        return 0.0
    return sum(m.end() - m.start() for m in _ARABIC_WORD.finditer(text)) / non_ascii


def latin_score(text: str) -> float:
    """Share of the non-ASCII characters that are accented letters inside Latin words, or
    Western punctuation. Arabic or Cyrillic bytes read as Latin-1 form words of accented
    letters only, which do not count."""
    non_ascii = len(_NON_ASCII.findall(text))
    if not non_ascii:
        return 0.0
    in_words = sum(m.end() - m.start() for m in _LATIN_IN_WORD.finditer(text))
    latin = in_words + _lone_latin_letters(text) + len(_LATIN_PUNCTUATION.findall(text))
    return latin / non_ascii


def _lone_latin_letters(text: str) -> int:
    """One-letter accented words ("à", "À", "ó") standing beside a word with ASCII letters:
    French and Spanish have them; Arabic read as Latin-1 has no ASCII-lettered neighbours."""
    words = text.split()
    count = 0
    for i, word in enumerate(words):
        core = word.strip(_ASCII_PUNCTUATION)
        if len(core) != 1 or not _ACCENTED.match(core):
            continue
        neighbours = words[max(i - 1, 0) : i] + words[i + 1 : i + 2]
        if any(_HAS_ASCII_LETTER.search(n) for n in neighbours):
            count += 1
    return count


def _western(data: bytes) -> tuple[str, str]:
    """windows-1252 where it defines every byte, else Latin-1 (which defines them all)."""
    try:
        return data.decode("cp1252"), "cp1252"
    except UnicodeDecodeError:
        return data.decode("latin-1"), "latin-1"


def _plausible_utf16(data: bytes) -> bool:
    """A UTF-16/32 guess needs a BOM, or the zero bytes that mostly-ASCII text has in it."""
    if data.startswith(_UTF16_BOM):
        return True
    return len(data) >= 4 and data.count(0) * 4 >= len(data)


def detect(data: bytes, *, header: bool = False) -> tuple[str, str]:
    """Decode bytes of unknown charset; returns (text, codec used). Order: UTF-8, Arabic
    when it reads clearly as Arabic words, Latin when it reads clearly as accented Latin
    words (or fairly, and better than as Arabic), then charset-normalizer (never UTF-16/32
    for a header, nor without a BOM or zero bytes for a body: on 8-bit text it reads CJK
    garbage), then windows-1252."""
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
        score = arabic_score(text)
        if best is None or score > best[0]:
            best = (score, text, codec)
    if best is not None and best[0] >= _CLEARLY:
        return best[1], best[2]
    western, codec = _western(data)
    latin = latin_score(western)
    if latin >= _CLEARLY or (latin >= _FAIRLY and (best is None or best[0] < latin)):
        return western, codec
    try:
        match = from_bytes(data[:65536]).best()
    except Exception:  # the detector is a heuristic; never let it sink a message
        match = None
    guess = match.encoding if match is not None else None
    if guess and guess.startswith(("utf_16", "utf_32")) and (header or not _plausible_utf16(data)):
        guess = None
    if guess:
        try:
            return data.decode(guess, "replace"), guess
        except LookupError:
            pass
    return data.decode("cp1252", "replace"), "cp1252"


def _escaped(data: bytes, codec: str | None) -> tuple[str, str | None] | None:
    """7-bit data in an escape-switching charset: labelled, or unlabelled ISO-2022-JP."""
    if codec is None or not codec.startswith(_ESCAPE_CODECS):
        if codec is not None and codec not in _WESTERN and codec != "utf-8":
            return None
        if not _ISO2022_JP.search(data):
            return None
        codec = "iso2022_jp_2"  # a superset of ISO-2022-JP: its escapes are a strong signal
    try:
        return data.decode(codec), None
    except UnicodeDecodeError:
        return data.decode(codec, "replace"), "CharsetMismatch"


def decode_bytes(
    data: bytes, charset: str | None, *, header: bool = False
) -> tuple[str, str | None]:
    """Decode a body or header chunk; returns (text, defect or None).

    The defect names what went wrong with the declared charset: CharsetMissing,
    CharsetUnknown, CharsetMismatch. `header` forbids guesses only a long text can back.
    """
    codec = codec_name(charset)
    ascii_compatible = codec is None or not codec.startswith(_NOT_ASCII_COMPATIBLE)
    if ascii_compatible and not _HIGH_BYTE.search(data):
        if b"\x1b" in data:
            escaped = _escaped(data, codec)
            if escaped is not None:
                return escaped
        return data.decode("ascii"), None
    if codec is None:
        text, _ = detect(data, header=header)
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
        text, used = detect(data, header=header)
        return text, (None if used == codec else "CharsetMismatch")
    except LookupError:
        text, _ = detect(data, header=header)
        return text, "CharsetUnknown"
    if codec in _WESTERN:
        # Arabic windows-1256 text labelled Latin-1 by old clients: only when the Arabic
        # reading is clearly words and the Latin one is not.
        arabic = data.decode("cp1256")
        if arabic_score(arabic) >= _CLEARLY and latin_score(text) < _CLEARLY:
            return arabic, "CharsetMismatch"
    return text, None


def unescape_surrogates(value: str) -> str:
    """compat32 keeps raw 8-bit header bytes as surrogate escapes; decode them properly."""
    try:
        value.encode("utf-8")
        if "\x1b" in value and value.isascii():  # raw ISO-2022-JP, 7-bit but not ASCII
            return decode_bytes(value.encode("ascii"), None, header=True)[0]
        return value
    except UnicodeEncodeError:
        raw = value.encode("ascii", "surrogateescape")
        return decode_bytes(raw, None, header=True)[0]


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
            out.append(decode_bytes(bytes(run), run_charset, header=True)[0])
            run = None
        if run is None:
            out.append(value[pos : match.start()])
            run, run_charset = bytearray(), charset
        run += data
        pos = match.end()
    if run is not None:
        out.append(decode_bytes(bytes(run), run_charset, header=True)[0])
    out.append(value[pos:])
    return "".join(out)
