"""Translations and locale-aware numbers and dates, for every page and file a person reads.

Messages live in gettext catalogues, omnidesk/locale/<lang>/LC_MESSAGES/omnidesk.po, read
with Babel at first use: the .po is the only copy, so `pip install -e .` needs no compile
step and no binary .mo can drift from its source. Code marks its strings so that
`pybabel extract -F babel.cfg` finds them (see docs/reports.md, "Translations"):

    tr = translator("ar")                # or translator("ar", digits="arab")
    tr._("Performance report")           # a literal: extracted
    tr.ngettext("{n} ticket", "{n} tickets", n)
    LABELS = {"email": N_("email")}      # a literal looked up later: N_ only marks it
    tr._(LABELS[key])                    # (or gettext(lang, msgid))

Numbers and dates go through Babel with the locale ar_SA or en: `tr.number`, `tr.percent`,
`tr.date`, `tr.datetime` (Asia/Riyadh unless told). Digits are Latin by default (what
Saudi government forms mostly print); `digits="arab"` gives Arabic-Indic ones (٠١٢٣).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from gettext import c2py
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime
from babel.messages.pofile import read_po
from babel.numbers import format_decimal, format_percent

LANGS = ("ar", "en")
DIGITS = ("latn", "arab")
DOMAIN = "omnidesk"
LOCALE_DIR = Path(__file__).with_name("locale")
BABEL_LOCALE = {"ar": "ar_SA", "en": "en"}
RIYADH = ZoneInfo("Asia/Riyadh")
_ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")

Lang = Literal["ar", "en"]


def N_(msgid: str) -> str:
    """Marks a string for extraction without translating it (it is looked up later)."""
    return msgid


class UnknownLanguage(ValueError):
    pass


@functools.cache
def catalog(lang: str) -> dict[str | tuple[str, str], str | tuple[str, ...]]:
    """msgid (or (singular, plural)) -> translation(s), from the language's .po. Untranslated
    and fuzzy entries are left out, so a lookup falls back to the msgid (and the test
    tests/test_i18n.py fails on them)."""
    if lang not in LANGS:
        raise UnknownLanguage(f"language {lang!r}: use {', '.join(LANGS)}")
    path = LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"
    with path.open("rb") as f:
        cat = read_po(f, locale=BABEL_LOCALE[lang], domain=DOMAIN)
    out: dict[str | tuple[str, str], str | tuple[str, ...]] = {}
    for msg in cat:
        if not msg.id or msg.fuzzy:
            continue
        if isinstance(msg.id, tuple):
            forms = tuple(msg.string or ())
            if all(forms):
                out[(msg.id[0], msg.id[1])] = forms
        elif isinstance(msg.id, str) and isinstance(msg.string, str) and msg.string:
            out[msg.id] = msg.string
    return out


@functools.cache
def _plural(lang: str) -> Callable[[int], int]:
    """The catalogue's own Plural-Forms expression as a function (Arabic has six forms)."""
    path = LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"
    with path.open("rb") as f:
        expr = read_po(f, locale=BABEL_LOCALE[lang], domain=DOMAIN).plural_expr
    return c2py(expr)


def gettext(lang: str, msgid: str) -> str:
    found = catalog(lang).get(msgid)
    return found if isinstance(found, str) else msgid


def ngettext(lang: str, singular: str, plural: str, n: int) -> str:
    forms = catalog(lang).get((singular, plural))
    if not isinstance(forms, tuple):
        return singular if n == 1 else plural
    return forms[min(int(_plural(lang)(n)), len(forms) - 1)]


def in_every_language(msgid: str, **values: object) -> dict[str, str]:
    """{"ar": ..., "en": ...}: one message in every language with `values` filled in, for an
    answer that carries both (a page switches language without asking again)."""
    return {lang: gettext(lang, msgid).format(**values) for lang in LANGS}


@dataclass(frozen=True)
class Translator:
    """One language and digit system: the messages, numbers and dates of one page."""

    lang: str = "en"
    digits: str = "latn"
    tz: ZoneInfo = RIYADH

    def __post_init__(self) -> None:
        if self.lang not in LANGS:
            raise UnknownLanguage(f"language {self.lang!r}: use {', '.join(LANGS)}")
        if self.digits not in DIGITS:
            raise ValueError(f"digits {self.digits!r}: use {', '.join(DIGITS)}")

    @property
    def locale(self) -> str:
        return BABEL_LOCALE[self.lang]

    @property
    def direction(self) -> str:
        return "rtl" if self.lang == "ar" else "ltr"

    def _(self, msgid: str) -> str:
        return gettext(self.lang, msgid)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        """The plural form for n, with ``{n}`` filled in as a localized number."""
        return ngettext(self.lang, singular, plural, n).format(n=self.number(n))

    def _arab(self) -> bool:
        return self.digits == "arab" and self.lang == "ar"

    def digits_of(self, text: str) -> str:
        """Western digits in already formatted text turned Arabic-Indic when asked."""
        return text.translate(_ARABIC_INDIC) if self._arab() else text

    def number(self, value: float) -> str:
        """CLDR's separators for the digit system (Babel gives them, not the digits)."""
        system = "arab" if self._arab() else "latn"
        return self.digits_of(format_decimal(value, locale=self.locale, numbering_system=system))

    def percent(self, share: float, decimals: int = 1) -> str:
        """0.953 -> "95.3%" (or "٩٥٫٣٪؜")."""
        system = "arab" if self._arab() else "latn"
        pattern = "#,##0" + ("." + "0" * decimals if decimals else "") + "%"
        text = format_percent(share, pattern, locale=self.locale, numbering_system=system)
        return self.digits_of(text.replace("%", "٪") if self._arab() else text)

    def date(self, day: date, form: str = "medium") -> str:
        return self.digits_of(format_date(day, form, locale=self.locale))

    def datetime(self, at: datetime, form: str = "medium") -> str:
        """In this translator's time zone (Asia/Riyadh), whatever zone `at` is in."""
        return self.digits_of(format_datetime(at, form, tzinfo=self.tz, locale=self.locale))


def translator(lang: str = "en", digits: str = "latn") -> Translator:
    return Translator(lang=lang, digits=digits)
