"""Text helpers shared by normalizers and the router: one Arabic-aware fold,
script-based language detection, and masking of national IDs and card numbers.

Pure functions, no I/O, depend on nothing else in the project.
"""

from __future__ import annotations

import re
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


def fold(text: str) -> str:
    """The one normalization keywords and text are matched after.

    Latin is case-folded; Arabic loses tashkeel and tatweel, alef forms unify
    (أ إ آ → ا), ى → ي, ة → ه, and Arabic-Indic digits become ASCII.
    """
    return text.translate(_FOLD_TABLE).casefold()


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


def mask_pii(text: str) -> str:
    """Mask national/iqama IDs and card numbers for logs and previews (digits folded first)."""
    text = text.translate(_DIGITS)
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
