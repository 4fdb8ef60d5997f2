"""`fold` and `mask_pii` translate characters with one regex pass (`text.translator`), not
`str.translate`: the two must agree on every character, alone and in any mix."""

from __future__ import annotations

import random

from omnidesk.text import _DIGITS, _FOLD_TABLE, fold, mask_pii, translator

EVERY_BMP_CHARACTER = "".join(chr(c) for c in range(0x20, 0x10000) if not 0xD800 <= c < 0xE000)


def test_fold_agrees_with_str_translate_on_every_character() -> None:
    assert fold(EVERY_BMP_CHARACTER) == EVERY_BMP_CHARACTER.translate(_FOLD_TABLE).casefold()


def test_fold_agrees_with_str_translate_on_mixed_text() -> None:
    rng = random.Random(7)
    # letters that fold, tashkeel, tatweel, joiners, both kinds of Arabic digits, and plain
    # Arabic and Latin around them
    alphabet = [chr(c) for c in _FOLD_TABLE] + list("ابتثجحخدذرسشصضطظعغفقكلمنهويABCxyzİß 0123.")
    for _ in range(500):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 80)))
        assert fold(text) == text.translate(_FOLD_TABLE).casefold(), text
    assert fold("الشَّكْوَى رقم ١٢٣ أُرسِلت إلى الإدارة") == "الشكوي رقم 123 ارسلت الي الاداره"


def test_a_translator_takes_tables_of_strings_code_points_and_deletions() -> None:
    table = {ord("a"): "α", ord("b"): ord("β"), ord("c"): None, ord("["): "(", ord("]"): ")"}
    assert translator(table)("abc[d]^") == "abc[d]^".translate(table) == "αβ(d)^"


def test_mask_pii_reads_arabic_indic_digits() -> None:
    assert mask_pii("هويتي ١٠٢٣٤٥٦٧٨٩") == "هويتي 1••••••789"
    text = "رقم ٠٥٠١٢٣ و ۱۲۳"
    assert mask_pii(text) == text.translate(_DIGITS)
