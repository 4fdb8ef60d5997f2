"""Splitting replies for Telegram's 4,096-unit limit: boundaries and graphemes. Pure."""

from __future__ import annotations

import unicodedata

from connectors.telegram.split import MAX_MESSAGE, is_grapheme_boundary, split_text, utf16_len


def test_short_text_is_one_piece() -> None:
    assert split_text("مرحبا") == ["مرحبا"]


def test_paragraphs_then_lines_then_words() -> None:
    assert split_text("aaaa bbbb\n\ncccc dddd", limit=12) == ["aaaa bbbb", "cccc dddd"]
    assert split_text("aaaa bbbb\ncccc dddd", limit=12) == ["aaaa bbbb", "cccc dddd"]
    assert split_text("aaaa bbbb cccc dddd", limit=12) == ["aaaa bbbb", "cccc dddd"]


def test_limit_is_counted_in_utf16_units() -> None:
    text = "😀" * 3000  # 6,000 UTF-16 units, 3,000 code points
    pieces = split_text(text)
    assert len(pieces) == 2 and all(utf16_len(p) <= MAX_MESSAGE for p in pieces)
    assert "".join(pieces) == text


def test_never_cuts_a_letter_from_its_harakat() -> None:
    text = "بِسْمِ" * 40  # no spaces: the cut must fall between graphemes
    pieces = split_text(text, limit=25)
    assert "".join(pieces) == text
    for piece in pieces:
        assert utf16_len(piece) <= 25
        assert unicodedata.category(piece[0]) not in ("Mn", "Mc", "Me")


def test_never_cuts_emoji_sequences_or_flags() -> None:
    family = "👩\u200d👩\u200d👧"
    flags = "🇸🇦" * 10
    for text in (family * 10, flags, "ab" + "👍🏽" * 10):
        pieces = split_text(text, limit=9)
        assert "".join(pieces) == text
        cuts = [sum(len(p) for p in pieces[: i + 1]) for i in range(len(pieces) - 1)]
        assert all(is_grapheme_boundary(text, c) for c in cuts)
    assert not is_grapheme_boundary(flags, 1) and is_grapheme_boundary(flags, 2)
