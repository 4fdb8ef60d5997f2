"""Split a reply into Telegram-sized messages. Pure.

Telegram limits a message to 4,096 characters, counted in UTF-16 code units, so the
limit is measured that way. A cut prefers a paragraph break, then a line break, then a
space, and never lands inside a grapheme (a letter with its harakat, an emoji sequence).
"""

from __future__ import annotations

import unicodedata

MAX_MESSAGE = 4096

_ZWJ = "\u200d"
_JOINERS = {"\u200c", "\u200d", "\u034f"}


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def split_text(text: str, limit: int = MAX_MESSAGE) -> list[str]:
    """Pieces of `text`, each at most `limit` UTF-16 units, cut at the best boundary."""
    if limit < 8:
        raise ValueError("limit too small to split on boundaries")
    pieces: list[str] = []
    rest = text
    while utf16_len(rest) > limit:
        window = _fit(rest, limit)  # code points that fit
        cut, skip = _best_cut(rest, window)
        piece = rest[:cut].rstrip()
        if piece:
            pieces.append(piece)
        rest = rest[cut + skip :].lstrip("\n")
    if rest.strip() or not pieces:
        pieces.append(rest)
    return pieces


def _fit(text: str, limit: int) -> int:
    """The number of code points of `text` whose UTF-16 length is at most `limit`."""
    units = 0
    for index, char in enumerate(text):
        units += 2 if ord(char) > 0xFFFF else 1
        if units > limit:
            return index
    return len(text)


def _best_cut(text: str, window: int) -> tuple[int, int]:
    """(cut index, separator length to drop) within text[:window + 1]."""
    head = text[: window + 1]  # a separator just past the window still ends a full piece
    for separator in ("\n\n", "\n", " "):
        at = head.rfind(separator, 0, window + len(separator))
        if at > window // 4:  # a break too early would waste most of the message
            return at, len(separator)
    for cut in range(window, 0, -1):
        if is_grapheme_boundary(text, cut):
            return cut, 0
    return window, 0


def is_grapheme_boundary(text: str, index: int) -> bool:
    """False when a cut before text[index] would split a user-perceived character."""
    if index <= 0 or index >= len(text):
        return True
    before, after = text[index - 1], text[index]
    if before == "\r" and after == "\n":
        return False
    if unicodedata.category(after) in ("Mn", "Mc", "Me") or after in _JOINERS:
        return False
    if before == _ZWJ:
        return False
    code = ord(after)
    if 0xFE00 <= code <= 0xFE0F or 0xE0100 <= code <= 0xE01EF:  # variation selectors
        return False
    if 0x1F3FB <= code <= 0x1F3FF or 0xE0020 <= code <= 0xE007F:  # skin tones, emoji tags
        return False
    if _is_regional(after) and _is_regional(before):
        run = 0  # flags are pairs of regional indicators: cut only between pairs
        for char in reversed(text[:index]):
            if not _is_regional(char):
                break
            run += 1
        return run % 2 == 0
    return True


def _is_regional(char: str) -> bool:
    return 0x1F1E6 <= ord(char) <= 0x1F1FF
