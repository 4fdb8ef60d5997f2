"""The catalogues are complete: every message the code marks (found by Babel's own
extractor with babel.cfg, as `pybabel extract` does) has a translation in Arabic and
English; and numbers, dates and plurals come out in each language's form."""

from __future__ import annotations

import io
import tokenize
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg

from omnidesk.i18n import LANGS, LOCALE_DIR, catalog, gettext, ngettext, translator

ROOT = Path(__file__).resolve().parent.parent


def extracted() -> set[str | tuple[str, str]]:
    with (ROOT / "babel.cfg").open() as f:
        method_map, options_map = parse_mapping_cfg(f)
    out: set[str | tuple[str, str]] = set()
    for _file, _line, msg, _comments, _ctx in extract_from_dir(str(ROOT), method_map, options_map):
        out.add(tuple(msg) if isinstance(msg, tuple | list) else msg)
    return out


def test_the_code_marks_messages_for_the_reports() -> None:
    found = extracted()
    assert "Performance report" in found and "no data" in found
    assert any(isinstance(m, tuple) for m in found)  # a plural too


@pytest.mark.parametrize("lang", LANGS)
def test_every_message_in_the_code_is_translated(lang: str) -> None:
    have = catalog(lang)  # untranslated and fuzzy entries are left out of it
    missing = sorted(str(m) for m in extracted() if m not in have)
    assert not missing, f"{lang} catalogue lacks: {missing}"


def test_the_template_holds_what_the_code_marks() -> None:
    """omnidesk.pot is what `pybabel update` fills the catalogues from: when it lags the
    code, a new message is never offered to a translator. Extract it again (docs/reports.md)."""
    from babel.messages.pofile import read_po

    with (LOCALE_DIR / "omnidesk.pot").open("rb") as f:
        template = {m.id if isinstance(m.id, str) else tuple(m.id) for m in read_po(f) if m.id}
    assert extracted() == template


def test_a_missing_key_is_caught(tmp_path, monkeypatch) -> None:
    """The check above can fail: a catalogue without one message does not hold it."""
    import omnidesk.i18n as i18n

    po = (LOCALE_DIR / "ar" / "LC_MESSAGES" / "omnidesk.po").read_text("utf-8")
    cut = po.replace('msgstr "لا توجد بيانات"', 'msgstr ""')
    assert cut != po
    (tmp_path / "ar" / "LC_MESSAGES").mkdir(parents=True)
    (tmp_path / "ar" / "LC_MESSAGES" / "omnidesk.po").write_text(cut, "utf-8")
    monkeypatch.setattr(i18n, "LOCALE_DIR", tmp_path)
    i18n.catalog.cache_clear()
    try:
        assert "no data" not in i18n.catalog("ar")
        assert i18n.gettext("ar", "no data") == "no data"  # falls back to the msgid
    finally:
        monkeypatch.undo()
        i18n.catalog.cache_clear()


def test_no_marked_message_hides_in_an_f_string() -> None:
    """The extractor does not look inside f-strings: `tr._("x")` there would go unchecked."""
    offenders = []
    for path in (ROOT / "omnidesk").rglob("*.py"):
        tokens = tokenize.generate_tokens(io.StringIO(path.read_text("utf-8")).readline)
        for tok in tokens:
            text = tok.string
            if (
                tok.type == tokenize.STRING
                and text[:2].lower() in ('f"', "f'", "rf", "fr")
                and ('._("' in text or "._('" in text or 'ngettext("' in text)
            ):
                offenders.append(f"{path.relative_to(ROOT)}:{tok.start[0]}")
    assert not offenders


def test_arabic_numbers_percentages_dates_and_plurals() -> None:
    ar, arab, en = translator("ar"), translator("ar", "arab"), translator("en")
    assert gettext("ar", "no data") == "لا توجد بيانات"
    assert gettext("en", "no data") == "no data"
    assert arab.number(1234) == "١٬٢٣٤" and ar.number(1234) == "1,234"
    assert en.number(1234.5) == "1,234.5"
    assert arab.percent(0.953) == "٩٥٫٣٪" and en.percent(0.953) == "95.3%"
    assert arab.date(date(2026, 3, 1), "long") == "١ مارس ٢٠٢٦"
    assert en.date(date(2026, 3, 1), "long") == "March 1, 2026"
    # Asia/Riyadh, whatever zone the time comes in: 03:30 UTC is 06:30 in Riyadh
    at = datetime(2026, 1, 11, 3, 30, tzinfo=UTC)
    assert "6:30" in en.datetime(at, "short") and "٦:٣٠" in arab.datetime(at, "short")
    one, many = "Only the first {n} entry is listed.", "Only the first {n} entries are listed."
    assert arab.ngettext(one, many, 2) == "تُعرض أول مدخلتين فقط."  # Arabic's dual form
    assert arab.ngettext(one, many, 3) == "تُعرض أول ٣ مدخلات فقط."
    assert arab.ngettext(one, many, 100) == "تُعرض أول ١٠٠ مدخلة فقط."
    assert en.ngettext(one, many, 1) == "Only the first 1 entry is listed."
    assert ngettext("en", one, many, 5) == many


def test_an_unknown_language_is_refused() -> None:
    with pytest.raises(ValueError, match="fr"):
        translator("fr")
