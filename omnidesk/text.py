"""Text helpers shared by normalizers and the router: one Arabic-aware fold,
script-based language detection, and masking of national IDs and card numbers.

Pure functions, no I/O, depend on nothing else in the project.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

import re2

from omnidesk.model import Language

# Tashkeel (harakat, tanween, shadda, sukun, superscript alef) and tatweel are dropped;
# alef forms, alef maqsura and taa marbuta are unified; Arabic-Indic digits become ASCII.
_TASHKEEL = (
    "\u0610\u0611\u0612\u0613\u0614\u0615\u0616\u0617\u0618\u0619\u061a"
    + "".join(chr(c) for c in range(0x064B, 0x0660))
    + "\u0670\u06d6\u06d7\u06d8\u06d9\u06da\u06db\u06dc\u06df\u06e0\u06e1"
    + "\u06e2\u06e3\u06e4\u06e7\u06e8\u06ea\u06eb\u06ec\u06ed"
)
_TATWEEL = "\u0640"
_FOLD_TABLE: dict[int, str | None] = {ord(c): None for c in _TASHKEEL + _TATWEEL}
_FOLD_TABLE.update(
    {
        ord("أ"): "ا",
        ord("إ"): "ا",
        ord("آ"): "ا",
        ord("ٱ"): "ا",
        ord("ى"): "ي",
        ord("ة"): "ه",
        # zero-width joiners and marks that split words invisibly
        0x200C: None,
        0x200D: None,
        0x200E: None,
        0x200F: None,
        0x061C: None,
    }
)
for _i in range(10):
    _FOLD_TABLE[0x0660 + _i] = str(_i)  # Arabic-Indic digits
    _FOLD_TABLE[0x06F0 + _i] = str(_i)  # Extended (Persian) digits


def translator(table: Mapping[int, str | int | None]) -> Callable[[str], str]:
    """`str.translate(table)` for a table of a few characters, as one regex pass. CPython's
    translate looks every character of a non-ASCII text up in the table (measured: 120 ns a
    character, 45 µs for a 375-character Arabic message); a character class finds the few
    that change in C, a quarter of the time."""
    replacements = {
        chr(code): "" if to is None else to if isinstance(to, str) else chr(to)
        for code, to in table.items()
    }
    changed = re.compile("[" + "".join(re.escape(c) for c in sorted(replacements)) + "]")

    def translate(text: str) -> str:
        return changed.sub(lambda found: replacements[found[0]], text)

    return translate


_fold_chars = translator(_FOLD_TABLE)


def fold(text: str) -> str:
    """The one normalization keywords and text are matched after.

    Latin is case-folded; Arabic loses tashkeel and tatweel, alef forms unify
    (أ إ آ → ا), ى → ي, ة → ه, and Arabic-Indic digits become ASCII.
    """
    return _fold_chars(text).casefold()


_ARABIC_LETTER = re.compile(r"[\u0600-\u06FF\u0750-\u077F\u08A0-\u08FF\uFB50-\uFDFF\uFE70-\uFEFF]")
_LATIN_LETTER = re.compile(r"[A-Za-z\u00C0-\u024F]")


def detect_language(text: str) -> Language:
    """Arabic, English or mixed from the letters' script (15 % of letters decides 'mixed')."""
    arabic = len(_ARABIC_LETTER.findall(text))
    latin = len(_LATIN_LETTER.findall(text))
    total = arabic + latin
    if total == 0:
        return Language.UNKNOWN
    if arabic / total >= 0.85:
        return Language.AR
    if latin / total >= 0.85:
        return Language.EN
    return Language.MIXED


# National ID / iqama: 10 digits starting with 1 or 2.
# Cards: 13-19 digits, spaces or dashes allowed.
_NATIONAL_ID = re.compile(r"(?<![0-9])[12][0-9]{9}(?![0-9])")
_CARD = re.compile(r"(?<![0-9])(?:[0-9][ -]?){12,18}[0-9](?![0-9])")


def _mask_card(match: re.Match[str]) -> str:
    digits = re.sub(r"[^0-9]", "", match.group(0))
    if not 13 <= len(digits) <= 19:
        return match.group(0)
    return "•" * (len(digits) - 4) + digits[-4:]


# Arabic-Indic and Eastern Arabic-Indic digits to ASCII; built once (previews are per ticket)
_DIGITS = {0x0660 + i: str(i) for i in range(10)} | {0x06F0 + i: str(i) for i in range(10)}
_ascii_digits = translator(_DIGITS)


def mask_pii(text: str) -> str:
    """Mask national/iqama IDs and card numbers for logs and previews (digits folded first)."""
    text = _ascii_digits(text)
    text = _CARD.sub(_mask_card, text)
    return _NATIONAL_ID.sub(lambda m: m.group(0)[:1] + "•" * 6 + m.group(0)[-3:], text)


def preview(text: str, limit: int = 200) -> str:
    """The first `limit` characters of a text, whitespace collapsed, PII masked."""
    flat = " ".join(text.split())
    masked = mask_pii(flat)
    return masked if len(masked) <= limit else masked[: limit - 1] + "…"


class PatternError(ValueError):
    """A regular expression RE2 cannot compile; the message is one clean line."""


def compile_pattern(pattern: str, *, ignore_case: bool = True) -> Any:
    """Compile with RE2: linear time, so no config regex can hang the router.

    RE2's own error logging to stderr is turned off; errors become PatternError.
    """
    options = re2.Options()
    options.log_errors = False
    options.case_sensitive = not ignore_case
    try:
        return re2.compile(pattern, options)
    except re2.error as exc:
        detail = exc.args[0] if exc.args else "invalid"
        if isinstance(detail, bytes):
            detail = detail.decode("utf-8", "replace")
        raise PatternError(str(detail)) from None


# ---------------------------------------------------------------- display safety
#
# Customer text reaches screens: the agents' console and API, the dashboard, the CLI.
# Terminal escape sequences (ESC [ ... / ESC ] ... BEL) can retitle, clear or rewrite an
# operator's terminal; bidi overrides (RLO, ...) reorder what is shown, so that
# "invoice\u202efdp.exe" reads as "invoiceexe.pdf". Arabic letters, ZWJ/ZWNJ and the
# direction marks (LRM, RLM, ALM) only ever set the direction of neutral characters and
# are kept; isolates (LRI/RLI/FSI ... PDI) are kept when they pair up on one line, since a
# closed isolate cannot reach outside itself.

# An escape sequence: CSI (ESC [ params final), an OSC/DCS/SOS/PM/APC string ended by BEL
# or ST on the same line, or a two-character escape. A string opener with no terminator is
# a stray ESC before text ("\x1bPayment failed"): only the ESC goes, the text stays. The
# 8-bit C1 forms go as single characters: text mis-decoded from cp1252 holds them, and
# what follows is text.
_ESCAPE_SEQUENCE = re.compile(
    r"\x1b\[[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]?"
    r"|\x1b[\]PX^_][^\x07\x1b\x9c\n]*(?:\x07|\x1b\\|\x9c)"
    r"|\x1b(?![\]PX^_])[\x20-\x7e]?"
    r"|\x1b"
)
# C0 controls but tab and newline, DEL, C1 controls, the bidi embeddings and overrides
# (LRE RLE PDF LRO RLO), and the line/paragraph separators (newlines where dropped).
_UNSAFE_CHAR = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2028\u2029]")
_ANY_UNSAFE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2028\u2029\u2066-\u2069]")
_ISOLATE_OPEN = frozenset("\u2066\u2067\u2068")  # LRI RLI FSI
_ISOLATE_CLOSE = "\u2069"  # PDI


def _visible(char: str) -> str:
    return f"\\u{ord(char):04x}"


def _unpaired_isolates(line: str) -> set[int]:
    """Positions of isolate controls on one line that have no partner."""
    opened: list[int] = []
    stray: set[int] = set()
    for i, char in enumerate(line):
        if char in _ISOLATE_OPEN:
            opened.append(i)
        elif char == _ISOLATE_CLOSE:
            if opened:
                opened.pop()
            else:
                stray.add(i)
    return stray | set(opened)


def _pair_isolates(text: str, replace: str | None) -> str:
    if not any(c in text for c in "\u2066\u2067\u2068\u2069"):
        return text
    lines = []
    for line in text.split("\n"):
        bad = _unpaired_isolates(line)
        lines.append(
            "".join(
                (_visible(c) if replace is None else replace) if i in bad else c
                for i, c in enumerate(line)
            )
        )
    return "\n".join(lines)


def display_safe(text: str, *, visible: bool = False) -> str:
    """Customer text as it may be shown to a person: no escape sequences, no control
    characters but newline and tab, no bidi embeddings or overrides, isolates only in pairs.

    By default (the API and pages) such characters are dropped, whole escape sequences
    with them. With `visible=True` (the terminal) each is written as the text ``\\uXXXX``:
    the operator sees that something was there, and in a JSON line (where these characters
    can only stand inside strings) the result is the same JSON, escaped.
    """
    if _ANY_UNSAFE.search(text) is None:  # the common case: nothing to do
        return text
    text = text.replace("\r\n", "\n")
    if visible:
        text = _ESCAPE_SEQUENCE.sub(lambda m: _UNSAFE_CHAR.sub(_escape, m.group(0)), text)
        text = _UNSAFE_CHAR.sub(_escape, text)
        return _pair_isolates(text, None)
    text = _ESCAPE_SEQUENCE.sub("", text).replace("\u2028", "\n").replace("\u2029", "\n")
    return _pair_isolates(_UNSAFE_CHAR.sub("", text), "")


def _escape(match: re.Match[str]) -> str:
    return _visible(match.group(0))


def display_safe_tree(value: Any) -> Any:
    """`display_safe` over every string of a JSON-like value (dict keys included)."""
    if isinstance(value, str):
        return display_safe(value)
    if isinstance(value, dict):
        return {display_safe_tree(k): display_safe_tree(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [display_safe_tree(v) for v in value]
    return value


def one_line_safe(text: str) -> str:
    """`display_safe(visible=True)` on one line: for table cells, where a newline or tab in a
    customer's subject would break the columns."""
    return " ".join(display_safe(text, visible=True).split())
